#!/usr/bin/env bash
# One command from a fresh checkout to a deployed environment:
#   ./deploy.sh local            the whole platform on this machine's Docker (docs/local.md)
#   ./deploy.sh local destroy    remove it again, volumes included
#   ./deploy.sh dev              set up .venv, then `pulumi up --stack dev`
#   ./deploy.sh prod preview     set up .venv, then `pulumi preview --stack prod`
# Further arguments go to pulumi (e.g. ./deploy.sh staging up --yes). Every up and preview runs the
# policy pack (policy/) that CI enforces, so a local deploy passes the same guardrails.
# `./deploy.sh local pulumi ARGS` runs any pulumi command against the local stack's state.
set -euo pipefail
cd "$(dirname "$0")"

usage="usage: ./deploy.sh local [up|preview|destroy|pulumi] | dev|staging|prod [up|preview]"
stack=${1:?$usage}
action=${2:-up}
shift $(($# < 2 ? $# : 2))
case $stack in dev | staging | prod | local) ;; *)
  echo "deploy.sh: unknown stack '$stack' (local, dev, staging or prod)" >&2
  exit 2
  ;;
esac
case $stack/$action in */up | */preview | local/destroy | local/pulumi) ;; *)
  echo "deploy.sh: unknown action '$action' for $stack ($usage)" >&2
  exit 2
  ;;
esac

say() { echo "deploy.sh: $*"; }

# The virtualenv first: it is all the tests and the stack export need, even without Pulumi.
[[ $stack == local ]] && say "setting up the virtualenv (.venv, ./setup.sh)"
./setup.sh
if ! command -v pulumi >/dev/null; then
  echo "deploy.sh: .venv is ready, but the Pulumi CLI is not installed; install it with:" >&2
  echo "  curl -fsSL https://get.pulumi.com | sh" >&2
  exit 1
fi
if [[ $stack != local ]]; then
  exec pulumi "$action" --stack "$stack" --policy-pack policy "$@"
fi

# ---- local: this machine's Docker engine, state and secrets in .pulumi-local/ -----------------
state=$PWD/.pulumi-local
config=$state/Pulumi.$stack.yaml
# Only this stack's: a file backend in the checkout (no login), a passphrase of its own.
export PULUMI_BACKEND_URL=file://$state
export PULUMI_CONFIG_PASSPHRASE_FILE=$state/passphrase
unset PULUMI_CONFIG_PASSPHRASE
local_stack() { .venv/bin/python -m stacktools.local_stack "$@"; }
# Every pulumi command of this stack that reads settings reads them from the file written below
# (only up, preview, destroy, refresh and config take --config-file; others refuse the flag).
pulumi_local() { pulumi "$@" --stack "$stack" --config-file "$config"; }

if [[ $action == pulumi ]]; then
  [[ -d $state ]] && local_stack prepare "$state"
  case ${1:-} in up | preview | destroy | refresh | config) exec pulumi "$@" --config-file "$config" ;; esac
  exec pulumi "$@"
fi

if [[ $action == destroy ]]; then
  if [[ ! -d $state ]]; then
    say "nothing to destroy: no local stack here ($state does not exist)"
    exit 0
  fi
  say "destroying the local stack: every service, network, secret and volume it created"
  local_stack prepare "$state"
  # Swarm keeps the exited containers of the site jobs after their services are gone, and they
  # still hold the sites and logs volumes that the destroy removes: this stack's go first.
  docker ps --all --filter status=exited --filter label=com.docker.swarm.service.name \
    --format '{{.ID}} {{.Label "com.docker.swarm.service.name"}}' |
    while read -r container service; do
      if [[ $service == brandclub-$stack-job-* ]]; then docker rm "$container" >/dev/null; fi
    done
  # Pulumi asks before it deletes anything (--yes to skip: ./deploy.sh local destroy --yes).
  pulumi_local destroy "$@"
  # --preserve-config: without it Pulumi deletes ./Pulumi.local.yaml, the tracked settings (it
  # ignores --config-file there); the config file of its own goes with $state below.
  pulumi stack rm "$stack" --yes --preserve-config --non-interactive
  if [[ -e $state/swarm-initialised ]]; then
    if [[ -z $(docker service ls --quiet) ]]; then
      say "leaving the swarm ./deploy.sh local initialised (nothing else runs on it)"
      docker swarm leave --force
    else
      say "keeping the swarm ./deploy.sh local initialised: other services run on it" \
        "(docker service ls; leave it with: docker swarm leave --force)"
    fi
  fi
  say "removing the local stack's state, passphrase and secrets ($state)"
  rm -rf "$state"
  exit 0
fi

say "state of the local stack in $state (a file backend: no login)"
mkdir -p "$state"
chmod 700 "$state"
# The passphrase on first use; the config file: Pulumi.local.yaml's settings plus this
# machine's salt and secrets (docs/local.md#secrets).
local_stack prepare "$state"
say "selecting the stack '$stack' (created on first use)"
local_stack create "$state"
# Each secret the stack lacks, from the OS's CSPRNG into pulumi config set --secret's STDIN.
local_stack secrets "$state"

if ! swarm=$(docker info --format '{{.Swarm.LocalNodeState}}'); then
  echo "deploy.sh: no Docker engine answers on this machine; start Docker and run again" >&2
  exit 1
fi
if [[ $swarm != active ]]; then
  # 127.0.0.1: a laptop often has several addresses (Wi-Fi, VPN, docker0), and swarm init
  # refuses to pick one; a single-node swarm needs none that others can reach.
  say "this Docker engine is not in swarm mode ($swarm): docker swarm init --advertise-addr 127.0.0.1"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  touch "$state/swarm-initialised"
fi

if [[ $action == preview ]]; then
  say "pulumi preview of the local stack (with the policy pack)"
  pulumi_local preview --policy-pack policy "$@"
  exit 0
fi
say "pulumi up: the local stack (with the policy pack)"
pulumi_local up --yes --policy-pack policy "$@"
site=$(pulumi stack output siteUrl --stack "$stack")
say "done: open $site (Traefik's self-signed certificate: accept it once; http:// redirects there)"
say "log in as Administrator; the password: ./deploy.sh local pulumi config get" \
  "brandclub:adminPassword --show-secrets --stack local"
say "remove it all (volumes included): ./deploy.sh local destroy"
