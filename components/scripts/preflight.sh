#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Preflight job (after migrate, before any app service changes): starts the new image's
# processes once, inside this job's container, and checks them with the very checks the
# services use as their Docker health checks (lib/health-checks.sh):
#   - the backend (the image's start.sh: gunicorn) answers /api/method/ping for the site;
#   - a worker (bench worker) registers in the queue Redis for its queues;
#   - the socket.io server (socketio.js) completes an engine.io handshake.
# Any failure fails `pulumi up` before a single service moves, so the Frappe services never
# split across two images. Runs in the app image from the bench directory, as
# `bash -c "<this text>"`.
#
# Environment: SITE_NAME; PREFLIGHT_WORKER_QUEUES (the worker's queues, comma-separated:
# short); PREFLIGHT_WORKER_GRACE (seconds a stopping worker gets to finish a job it picked up,
# 360); PREFLIGHT_TIMEOUT (seconds each process gets to become healthy, 300);
# PREFLIGHT_INTERVAL (seconds between checks, 2).
JOB=preflight
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe_jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/health-checks.sh
source "$SCRIPT_DIR/lib/health-checks.sh"

require_env SITE_NAME
: "${PREFLIGHT_WORKER_QUEUES:=short}"
: "${PREFLIGHT_WORKER_GRACE:=360}"
: "${PREFLIGHT_TIMEOUT:=300}"
: "${PREFLIGHT_INTERVAL:=2}"
require_integer PREFLIGHT_WORKER_GRACE PREFLIGHT_TIMEOUT
[[ $PREFLIGHT_INTERVAL =~ ^[0-9]+([.][0-9]+)?$ ]] || die "PREFLIGHT_INTERVAL must be seconds"

logs=$(mktemp -d)
declare -A pid_of=()

# start <name> <command...>: runs the command in the background, its output in a log file.
start() {
  local name=$1
  shift
  log "starting $name: $*"
  "$@" >"$logs/$name.log" 2>&1 &
  pid_of[$name]=$!
}

show_log() {
  log "last lines of $1's output:"
  tail -n 40 "$logs/$1.log" | sed "s/^/  [$1] /" >&2
}

# stop <name> <grace seconds>: SIGTERM, then SIGKILL once the grace period is over. A worker
# finishes the job in hand before it exits (and deregisters), as it would in a rollout.
stop() {
  local name=$1 grace=$2 pid=${pid_of[$1]:-} deadline
  [[ -n $pid ]] || return 0
  unset "pid_of[$name]"
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "$name did not stop within ${grace}s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  stop websocket 10
  stop backend 30
  stop worker "$PREFLIGHT_WORKER_GRACE"
  rm -rf "$logs"
}
trap stop_all EXIT

# wait_healthy <name> <check> [args...]: polls the check until it passes; fails when the
# process exits first or the time is up, with the check's last word and the process's output.
wait_healthy() {
  local name=$1 output deadline=$((SECONDS + PREFLIGHT_TIMEOUT))
  shift
  until output=$("$@" 2>&1); do
    if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
      show_log "$name"
      die "$name exited before it became healthy; the new image would fail the same way" \
        "in the service (last check: ${output:-no output})"
    fi
    if ((SECONDS > deadline)); then
      show_log "$name"
      die "$name not healthy after ${PREFLIGHT_TIMEOUT}s: ${output:-no output}"
    fi
    sleep "$PREFLIGHT_INTERVAL"
  done
  log "$name healthy"
}

start backend start.sh
start worker bench worker --queue "$PREFLIGHT_WORKER_QUEUES"
start websocket node apps/frappe/socketio.js

wait_healthy backend backend_healthy "$SITE_NAME"
wait_healthy worker worker_registered "$PREFLIGHT_WORKER_QUEUES"
wait_healthy websocket websocket_healthy
log "the new image serves $SITE_NAME, runs a worker and a realtime server; rollout may proceed"
