#!/usr/bin/env bash
# Runs one site job (prepare-backup-dir, configurator, create-site, migrate, ...) as a Swarm one-shot
# service and waits for it, from the machine that runs `pulumi up` (DOCKER_HOST points at the
# swarm). Prints the job's log, exits non-zero when the job fails or times out, and always
# removes the service again.
#
# Environment:
#   JOB_NAME          service name, e.g. brandclub-dev-job-migrate          (required)
#   JOB_IMAGE         image to run                                          (required)
#   JOB_SCRIPT        bash text run in the container as `bash -c "$JOB_SCRIPT"` (required)
#   JOB_NETWORKS      space-separated network names
#   JOB_MOUNTS        newline-separated `--mount` values
#   JOB_SECRETS       newline-separated `--secret` values (names only, never values)
#   JOB_ENV           newline-separated KEY=VALUE pairs (non-secret)
#   JOB_CONSTRAINTS   newline-separated placement constraints
#   JOB_USER          user[:group] the job runs as (`--user`); empty: the image's user
#   JOB_TIMEOUT       seconds to wait for the job (1800)
#   JOB_LOG_TAIL      log lines shown (100)
#   JOB_POLL_INTERVAL seconds between state checks (0.5: a job that ends waits at most that long
#                     to be seen; each check is one `docker service ps`)
set -euo pipefail

: "${JOB_TIMEOUT:=1800}"
: "${JOB_LOG_TAIL:=100}"
: "${JOB_POLL_INTERVAL:=0.5}"

fail() {
  echo "run-swarm-job: $*" >&2
  exit 2
}

for required in JOB_NAME JOB_IMAGE JOB_SCRIPT; do
  [[ -n ${!required:-} ]] || fail "$required is required"
done
[[ $JOB_TIMEOUT =~ ^[1-9][0-9]*$ ]] || fail "JOB_TIMEOUT must be a positive number of seconds"
[[ $JOB_LOG_TAIL =~ ^[0-9]+$ ]] || fail "JOB_LOG_TAIL must be a number of lines"
[[ $JOB_POLL_INTERVAL =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "JOB_POLL_INTERVAL must be seconds"
# A service name and an image reference (the program validates both): nothing docker could
# read as an option.
[[ $JOB_NAME =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
  fail "JOB_NAME must be a service name, got '$JOB_NAME'"
[[ $JOB_IMAGE =~ ^[A-Za-z0-9[][^[:space:]]*$ ]] ||
  fail "JOB_IMAGE must be an image reference, got '$JOB_IMAGE'"
[[ -z ${JOB_USER:-} || $JOB_USER =~ ^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$ ]] ||
  fail "JOB_USER must be user[:group], got '$JOB_USER'"

# Docker 20.10 leaves a job's exited container behind when the service is removed; the label
# lets an operator clear them: docker container prune --filter label=brandclub.site-job
create_args=(
  --detach --mode replicated-job --restart-condition none --name "$JOB_NAME"
  --container-label "brandclub.site-job=$JOB_NAME"
)

# Appends `FLAG VALUE` for every non-empty line of a newline-separated list.
add_each_line() {
  local flag=$1 list=$2 line
  while IFS= read -r line; do
    if [[ -n $line ]]; then create_args+=("$flag" "$line"); fi
  done <<<"$list"
}

read -ra networks <<<"${JOB_NETWORKS:-}"
for network in ${networks[@]+"${networks[@]}"}; do
  create_args+=(--network "$network")
done
add_each_line --mount "${JOB_MOUNTS:-}"
add_each_line --secret "${JOB_SECRETS:-}"
add_each_line --env "${JOB_ENV:-}"
add_each_line --constraint "${JOB_CONSTRAINTS:-}"
if [[ -n ${JOB_USER:-} ]]; then create_args+=(--user "$JOB_USER"); fi
# '--': everything after it is the image and its command, never an option.
create_args+=(--with-registry-auth -- "$JOB_IMAGE" bash -c "$JOB_SCRIPT")

service_exists() { docker service inspect "$JOB_NAME" >/dev/null 2>&1; }

# shellcheck disable=SC2317,SC2329  # reached through the EXIT trap
remove_service() {
  if service_exists; then
    docker service rm "$JOB_NAME" >/dev/null || echo "run-swarm-job: could not remove $JOB_NAME" >&2
  fi
}

# A leftover from an interrupted run would make `service create` fail on the name.
if service_exists; then
  echo "removing leftover service $JOB_NAME"
  docker service rm "$JOB_NAME" >/dev/null
fi

trap remove_service EXIT
# Pulumi cancels with SIGINT/SIGTERM; exiting runs the EXIT trap so no job is left behind.
trap 'exit 130' INT
trap 'exit 143' TERM

echo "starting job $JOB_NAME ($JOB_IMAGE)"
if ! docker service create "${create_args[@]}" >/dev/null; then
  echo "job $JOB_NAME failed: could not create the service" >&2
  exit 1
fi

# The task's state is the first word of CurrentState ("Running 3 seconds ago").
state=unknown
error=
deadline=$((SECONDS + JOB_TIMEOUT))
while true; do
  if tasks=$(docker service ps --no-trunc --format '{{.CurrentState}}|{{.Error}}' "$JOB_NAME" \
    2>/dev/null) && [[ -n $tasks ]]; then
    line=${tasks%%$'\n'*}
    state=${line%%|*}
    state=${state%% *}
    error=${line#*|}
  fi
  case $state in
  Complete | Failed | Rejected | Shutdown | Orphaned | Remove) break ;;
  esac
  # ">": SECONDS counts whole seconds, so the job gets at least JOB_TIMEOUT seconds.
  if ((SECONDS > deadline)); then
    state="timed out after ${JOB_TIMEOUT}s (last state: $state)"
    break
  fi
  sleep "$JOB_POLL_INTERVAL"
done

show_log() {
  docker service logs --raw --no-task-ids --tail "$JOB_LOG_TAIL" "$JOB_NAME" 2>&1 ||
    echo "(no log available for $JOB_NAME)"
}

if [[ $state == Complete ]]; then
  show_log
  echo "job $JOB_NAME completed"
  exit 0
fi
{
  show_log
  echo "job $JOB_NAME failed: $state${error:+ $error}"
} >&2
exit 1
