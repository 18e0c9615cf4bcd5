#!/usr/bin/env bash
# One command from a fresh checkout to a deployed environment:
#   ./deploy.sh dev            set up .venv, then `pulumi up --stack dev`
#   ./deploy.sh prod preview   set up .venv, then `pulumi preview --stack prod`
# Further arguments go to pulumi (e.g. ./deploy.sh staging up --yes). Both run the policy pack
# (policy/) that CI enforces, so a local deploy passes the same guardrails.
set -euo pipefail
cd "$(dirname "$0")"

stack=${1:?usage: ./deploy.sh dev|staging|prod [up|preview] [pulumi arguments]}
action=${2:-up}
shift $(($# < 2 ? $# : 2))
case $stack in dev | staging | prod) ;; *)
  echo "deploy.sh: unknown stack '$stack' (dev, staging or prod)" >&2
  exit 2
  ;;
esac
case $action in up | preview) ;; *)
  echo "deploy.sh: unknown action '$action' (up or preview)" >&2
  exit 2
  ;;
esac
# The virtualenv first: it is all the tests and the stack export need, even without Pulumi.
./setup.sh
if ! command -v pulumi >/dev/null; then
  echo "deploy.sh: .venv is ready, but the Pulumi CLI is not installed; install it with:" >&2
  echo "  curl -fsSL https://get.pulumi.com | sh" >&2
  exit 1
fi
exec pulumi "$action" --stack "$stack" --policy-pack policy "$@"
