#!/usr/bin/env bash
# Configurator job (every deploy): points the bench at this stack's MariaDB and Redis services.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: DB_HOST, DB_PORT, REDIS_CACHE, REDIS_QUEUE, REDIS_SOCKETIO (redis:// URLs),
# SOCKETIO_PORT, and optionally KEEP_BACKUPS_FOR_HOURS (how long bench's own backup runs keep
# files, so they never delete backups before the backup service's retention does).
JOB=configurator
# --- common prelude: identical in every in-container job script (a test keeps it so) ---
set -euo pipefail
log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$JOB" "$*"; }
die() {
  log "ERROR: $*" >&2
  exit 1
}
require_env() {
  local name missing=()
  for name in "$@"; do
    [[ -n ${!name:-} ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) || die "missing required environment variable(s): ${missing[*]}"
}
require_integer() {
  local name
  for name in "$@"; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
  done
}
# Prints a docker secret file's content; the value never reaches argv of this script or a log.
read_secret() {
  local file=$1 value
  [[ -r $file ]] || die "cannot read secret file $file"
  value=$(<"$file")
  [[ -n $value ]] || die "secret file $file is empty"
  printf '%s' "$value"
}
cd "${BENCH_DIR:-/home/frappe/frappe-bench}"
# --- end of common prelude ---

require_env DB_HOST DB_PORT REDIS_CACHE REDIS_QUEUE REDIS_SOCKETIO SOCKETIO_PORT
require_integer DB_PORT SOCKETIO_PORT

# One line per global setting: set-config flag, key, variable holding the value.
# -gp stores the value as JSON (a number), -g as a string.
settings=(
  "-g db_host DB_HOST"
  "-gp db_port DB_PORT"
  "-g redis_cache REDIS_CACHE"
  "-g redis_queue REDIS_QUEUE"
  "-g redis_socketio REDIS_SOCKETIO"
  "-gp socketio_port SOCKETIO_PORT"
)
if [[ -n ${KEEP_BACKUPS_FOR_HOURS:-} ]]; then
  require_integer KEEP_BACKUPS_FOR_HOURS
  settings+=("-gp keep_backups_for_hours KEEP_BACKUPS_FOR_HOURS")
fi

ls -1 apps >sites/apps.txt
log "apps: $(paste -sd ' ' sites/apps.txt)"
for setting in "${settings[@]}"; do
  read -r flag key variable <<<"$setting"
  # Values are not logged: a Redis URL may carry a password.
  log "set-config $flag $key"
  bench set-config "$flag" "$key" "${!variable}"
done
log "done"
