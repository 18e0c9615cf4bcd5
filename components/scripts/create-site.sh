#!/usr/bin/env bash
# Create-site job: creates the site once, with its apps; a later run finds the site and exits 0.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: SITE_NAME, INSTALL_APPS (space-separated, may be empty), DB_HOST, DB_PORT,
# REDIS_CACHE, REDIS_QUEUE (redis:// URLs), ADMIN_PASSWORD_FILE, DB_ROOT_PASSWORD_FILE (docker
# secret files), WAIT_TIMEOUT (seconds to wait for the database and Redis, 300),
# WAIT_INTERVAL (seconds between attempts, 2).
JOB=create-site
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

require_env SITE_NAME DB_HOST DB_PORT REDIS_CACHE REDIS_QUEUE ADMIN_PASSWORD_FILE \
  DB_ROOT_PASSWORD_FILE
: "${WAIT_TIMEOUT:=300}"
: "${WAIT_INTERVAL:=2}"
require_integer DB_PORT WAIT_TIMEOUT
[[ $WAIT_INTERVAL =~ ^[0-9]+([.][0-9]+)?$ ]] || die "WAIT_INTERVAL must be seconds"

if [[ -f sites/$SITE_NAME/site_config.json ]]; then
  log "site $SITE_NAME exists, nothing to do"
  exit 0
fi

# "host port" of a redis://[user:password@]host[:port][/db] URL.
redis_address() {
  local rest=${1#*://}
  rest=${rest##*@}
  rest=${rest%%/*}
  if [[ $rest == *:* ]]; then
    echo "${rest%:*} ${rest##*:}"
  else
    echo "$rest 6379"
  fi
}

deadline=$((SECONDS + WAIT_TIMEOUT))
wait_for() {
  local what=$1 host=$2 port=$3
  log "waiting for $what at $host:$port"
  # `timeout` bounds one attempt: a connect to a silent host can hang for minutes.
  until timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; do
    ((SECONDS < deadline)) || die "$what at $host:$port not reachable after ${WAIT_TIMEOUT}s"
    sleep "$WAIT_INTERVAL"
  done
}

admin_password=$(read_secret "$ADMIN_PASSWORD_FILE")
db_root_password=$(read_secret "$DB_ROOT_PASSWORD_FILE")

wait_for database "$DB_HOST" "$DB_PORT"
# shellcheck disable=SC2046  # redis_address prints exactly two words: host and port
wait_for "cache Redis" $(redis_address "$REDIS_CACHE")
# shellcheck disable=SC2046
wait_for "queue Redis" $(redis_address "$REDIS_QUEUE")

new_site_args=(
  "$SITE_NAME"
  --mariadb-user-host-login-scope=%
  --admin-password "$admin_password"
  --db-root-username=root
  --db-root-password "$db_root_password"
)
read -ra apps <<<"${INSTALL_APPS:-}"
for app in ${apps[@]+"${apps[@]}"}; do
  new_site_args+=(--install-app "$app")
done
new_site_args+=(--set-default)

# The command line carries both passwords: it is never echoed.
log "creating site $SITE_NAME with apps: ${INSTALL_APPS:-(frappe only)}"
bench new-site "${new_site_args[@]}"
log "site $SITE_NAME created"
