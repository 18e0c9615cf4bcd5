#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Preflight of a new image, run by the boot-check job before migrate: the image is checked with
# the very checks the services use as their Docker health checks (lib/health-checks.sh), its
# processes started once inside this job's container. Nothing here needs the new schema, so a
# release that cannot start is refused before it touches the database:
#   - every app of the image imports, with its hooks (as every request imports them);
#   - the site's database answers as the site's own user (bench list-apps);
#   - both Redis answer;
#   - a worker (bench worker) registers in the queue Redis for its queues;
#   - the socket.io server (socketio.js) completes an engine.io handshake.
# Any failure fails `pulumi up` before migrate and before a single service moves. Whether the
# new backend serves the migrated site is the backend's own start-first update, after migrate
# and before every other service (components/frappe/jobs.py). Runs in the app image from the
# bench directory, as `bash -c "<this text>"`.
#
# Environment: SITE_NAME; PREFLIGHT_WORKER_QUEUES (the worker's queues, comma-separated:
# short); PREFLIGHT_WORKER_GRACE (seconds a stopping worker gets to finish a job it picked up,
# 360); PREFLIGHT_TIMEOUT (seconds each process gets to become healthy, 300); PREFLIGHT_INTERVAL
# (seconds between checks, 1).
JOB=preflight
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe/jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/health-checks.sh
source "$SCRIPT_DIR/lib/health-checks.sh"

require_env SITE_NAME
: "${PREFLIGHT_WORKER_QUEUES:=short}"
: "${PREFLIGHT_WORKER_GRACE:=360}"
: "${PREFLIGHT_TIMEOUT:=300}"
: "${PREFLIGHT_INTERVAL:=1}"
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

# The image's apps import, each with its hooks module where it has one: Frappe imports every
# app's hooks on each request (frappe.get_hooks), so an app that fails here fails every request.
apps_import() {
  local output
  output=$(ls -1 apps | env/bin/python -c '
import importlib
import importlib.util
import sys

for app in sys.stdin.read().split():
    importlib.import_module(app)
    if importlib.util.find_spec(f"{app}.hooks"):
        importlib.import_module(f"{app}.hooks")
    print(app)
' 2>&1) || {
    printf '%s\n' "$output" | tail -n 20 | sed 's/^/  [imports] /' >&2
    die "the new image's apps do not import (above); every request would fail the same way"
  }
  log "apps import: $(paste -sd ' ' <<<"$output")"
}

# The site's database answers the site's own user (its credentials in site_config.json).
database_answers() {
  local output
  output=$(bench --site "$SITE_NAME" list-apps 2>&1) || {
    printf '%s\n' "$output" | tail -n 20 | sed 's/^/  [list-apps] /' >&2
    die "the new image cannot open $SITE_NAME's database as the site's user (above)"
  }
  log "database of $SITE_NAME answers"
}

# Both Redis of the bench's config answer a PING.
redis_answers() {
  env/bin/python - sites/common_site_config.json <<'PY' || die "a Redis does not answer (above)"
import json
import sys

import redis

config = json.load(open(sys.argv[1]))
for key in ("redis_cache", "redis_queue"):
    try:
        redis.Redis.from_url(config[key], socket_timeout=5).ping()
    except Exception as error:  # the check reports any failure, whatever its type
        sys.exit(f"{key}: {error}")
PY
  log "redis_cache and redis_queue answer"
}

apps_import
database_answers
redis_answers
start worker bench worker --queue "$PREFLIGHT_WORKER_QUEUES"
start websocket node apps/frappe/socketio.js
wait_healthy worker worker_registered "$PREFLIGHT_WORKER_QUEUES"
wait_healthy websocket websocket_healthy
log "the new image boots, reaches the database and Redis, runs a worker and a realtime" \
  "server; migrate may proceed"

