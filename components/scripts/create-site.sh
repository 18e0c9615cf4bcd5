#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Create-site job: creates the site once, with its apps, and records that it did
# (lib/site-marker.sh). Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# What it finds decides what it does:
#   marker "created"        the site exists: nothing to do (apart from a scheduler switch-on a
#                           previous run could not finish).
#   marker "creating"       a run of this job started the site and did not finish: the site is
#                           half-made (Frappe writes site_config.json first, then creates the
#                           database user, the database and the apps, and rolls nothing back
#                           without a terminal). Its database and user are dropped as root, its
#                           folder moved to sites/.brandclub/half-made/, and the site made again.
#   no marker, no folder    a new site: marker "creating", `bench new-site` (with
#                           `--set-default` for the stack's primary site only), marker
#                           "created", then `bench --site <site> scheduler enable`
#                           (ENABLE_SCHEDULER=1). A failed new-site is cleaned up at once, as
#                           above, and fails the job.
#   no marker, a folder     a site this job did not start (made before the marker existed, or
#                           by hand): adopted (marker "created") when Frappe can open it
#                           (`bench --site <site> list-apps` lists frappe); otherwise the job
#                           fails and touches nothing.
# Passwords reach Frappe and MariaDB as file paths only (lib/frappe-cli.sh, lib/mariadb-root.sh).
#
# Environment: SITE_NAME, PRIMARY_SITE (the stack's own site, frappe.siteName: the only one made
# the bench's default_site), INSTALL_APPS (space-separated, may be empty), DB_HOST, DB_PORT,
# REDIS_CACHE, REDIS_QUEUE (redis:// URLs), ADMIN_PASSWORD_FILE, DB_ROOT_PASSWORD_FILE (docker
# secret files), ENABLE_SCHEDULER (1 or 0, default 1), RESTORE_REQUEST (the restore request this
# deploy also runs, recorded in the marker; optional), WAIT_TIMEOUT (seconds to wait for the
# database and Redis, 300), WAIT_INTERVAL (seconds between attempts, 2).
JOB=create-site
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe/jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/site-marker.sh
source "$SCRIPT_DIR/lib/site-marker.sh"
# shellcheck source=lib/frappe-cli.sh
source "$SCRIPT_DIR/lib/frappe-cli.sh"
# shellcheck source=lib/mariadb-root.sh
source "$SCRIPT_DIR/lib/mariadb-root.sh"

require_env SITE_NAME PRIMARY_SITE DB_HOST DB_PORT REDIS_CACHE REDIS_QUEUE \
  ADMIN_PASSWORD_FILE DB_ROOT_PASSWORD_FILE
: "${WAIT_TIMEOUT:=300}"
: "${WAIT_INTERVAL:=2}"
: "${ENABLE_SCHEDULER:=1}"
require_integer DB_PORT WAIT_TIMEOUT
[[ $WAIT_INTERVAL =~ ^[0-9]+([.][0-9]+)?$ ]] || die "WAIT_INTERVAL must be seconds"
[[ $ENABLE_SCHEDULER =~ ^[01]$ ]] || die "ENABLE_SCHEDULER must be 1 or 0, got '$ENABLE_SCHEDULER'"

site_dir=sites/$SITE_NAME
state=$(marker_get "$SITE_NAME" state)
case $state in
created | creating | "") ;;
*) die "unknown state '$state' in $SITE_MARKERS/$SITE_NAME.json" ;;
esac
if [[ $state == created && ! -f $site_dir/site_config.json ]]; then
  # Dropped by hand (bench drop-site moves the folder away): made again, as without a marker.
  log "the marker says $SITE_NAME was created, but $site_dir/site_config.json is gone:" \
    "creating the site again"
  marker_remove "$SITE_NAME"
  state=
fi
if [[ $state == created && $(marker_get "$SITE_NAME" scheduler) == pending ]] &&
  ((!ENABLE_SCHEDULER)); then
  # A switch-on that failed earlier, no longer wanted (frappe.enableScheduler: false since).
  marker_set "$SITE_NAME" scheduler ""
fi
if [[ $state == created && $(marker_get "$SITE_NAME" scheduler) != pending ]]; then
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

# SECONDS counts whole seconds: "<=" gives the services at least WAIT_TIMEOUT seconds.
deadline=$((SECONDS + WAIT_TIMEOUT))
wait_for() {
  local what=$1 host=$2 port=$3
  log "waiting for $what at $host:$port"
  # `timeout` bounds one attempt: a connect to a silent host can hang for minutes.
  # shellcheck disable=SC2016  # expanded by the inner bash, from its arguments
  until timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; do
    ((SECONDS <= deadline)) || die "$what at $host:$port not reachable after ${WAIT_TIMEOUT}s"
    sleep "$WAIT_INTERVAL"
  done
}

require_secret_file "$ADMIN_PASSWORD_FILE" "$DB_ROOT_PASSWORD_FILE"
wait_for database "$DB_HOST" "$DB_PORT"
# shellcheck disable=SC2046  # redis_address prints exactly two words: host and port
wait_for "cache Redis" $(redis_address "$REDIS_CACHE")
# shellcheck disable=SC2046
wait_for "queue Redis" $(redis_address "$REDIS_QUEUE")

# New sites keep Frappe's System Settings "enable_scheduler" off until someone completes the
# setup wizard, so no scheduled job would ever run; `scheduler enable` switches it on.
enable_scheduler() {
  log "enabling the scheduler of $SITE_NAME"
  bench --site "$SITE_NAME" scheduler enable ||
    die "site $SITE_NAME exists, but enabling its scheduler failed; the next run tries again"
  marker_set "$SITE_NAME" scheduler enabled
}

if [[ $state == created ]]; then
  enable_scheduler
  log "site $SITE_NAME exists, nothing else to do"
  exit 0
fi

# Drops the half-made site's database and user as root and moves its folder aside (kept for
# its logs). Returns non-zero, and leaves the marker as it is, when any step fails: the next
# run tries again. (errexit is off inside a function called as a condition: every step is
# checked by hand.)
clear_half_made_site() {
  local names db_name db_user aside
  if [[ -f $site_dir/site_config.json ]]; then
    names=$(python3 - "$site_dir/site_config.json" <<'PY'
import json
import sys

config = json.load(open(sys.argv[1]))
name = config.get("db_name") or ""
print(name, config.get("db_user") or name)
PY
    ) || return 1
    read -r db_name db_user <<<"$names"
    # Frappe names them _<16 hex>; anything else is not quoted into SQL.
    if [[ ! $db_name =~ ^[A-Za-z0-9_]+$ || ! $db_user =~ ^[A-Za-z0-9_]+$ ]]; then
      log "ERROR: $site_dir/site_config.json names database '$db_name' and user '$db_user';" \
        "not dropping those: clean the site up by hand (docs/operations.md: Runbook: a half-made site)" >&2
      return 1
    fi
    log "dropping database $db_name and user $db_user of the half-made site $SITE_NAME"
    mariadb_with_password_file "$DB_ROOT_PASSWORD_FILE" --host="$DB_HOST" --port="$DB_PORT" \
      --user=root <<SQL || return 1
DROP DATABASE IF EXISTS \`$db_name\`;
DROP USER IF EXISTS '$db_user'@'%';
DROP USER IF EXISTS '$db_user'@'localhost';
SQL
  fi
  if [[ -e $site_dir ]]; then
    aside=sites/.brandclub/half-made/$SITE_NAME-$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p sites/.brandclub/half-made && mv -- "$site_dir" "$aside" || return 1
    log "moved the half-made site's folder to $aside"
  fi
  marker_remove "$SITE_NAME"
}

# The site's first word of each `list-apps` line is an app; frappe among them means Frappe
# could open the site's database with the credentials in its site_config.json.
frappe_opens_site() {
  local apps
  apps=$(bench --site "$SITE_NAME" list-apps) || return 1
  awk '{print $1}' <<<"$apps" | grep -qx frappe
}

if [[ $state == creating ]]; then
  log "site $SITE_NAME is half-made: a previous run of this job did not finish creating it"
  clear_half_made_site ||
    die "could not clean up the half-made site $SITE_NAME (see above); the next run tries again"
elif [[ -e $site_dir ]]; then
  if [[ -f $site_dir/site_config.json ]] && frappe_opens_site; then
    marker_set "$SITE_NAME" state created adoptedAt "$(utc_now)"
    log "site $SITE_NAME exists (made before this job recorded its sites), recorded as created"
    exit 0
  fi
  die "$site_dir exists, but this job did not create it (no $SITE_MARKERS/$SITE_NAME.json)" \
    "and Frappe cannot open it: it is left untouched. Inspect it, then remove it or make it" \
    "work by hand (docs/operations.md: Runbook: a half-made site) and run the deploy again"
fi

new_site_args=(
  "$SITE_NAME"
  --mariadb-user-host-login-scope=%
  --admin-password "@secret:$ADMIN_PASSWORD_FILE"
  --db-root-username=root
  --db-root-password "@secret:$DB_ROOT_PASSWORD_FILE"
)
read -ra apps <<<"${INSTALL_APPS:-}"
for app in ${apps[@]+"${apps[@]}"}; do
  new_site_args+=(--install-app "$app")
done
# `--set-default` writes default_site into common_site_config.json, shared by the whole bench:
# the site bench commands without --site act on, and the one Frappe's realtime server gives a
# localhost connection. Only the stack's primary site may take it, never a second site made
# beside it.
if [[ $SITE_NAME == "$PRIMARY_SITE" ]]; then
  new_site_args+=(--set-default)
fi

marker_set "$SITE_NAME" state creating startedAt "$(utc_now)" \
  restoreRequest "${RESTORE_REQUEST:-}"
log "creating site $SITE_NAME with apps: ${INSTALL_APPS:-(frappe only)}"
if ! frappe_cli new-site "${new_site_args[@]}"; then
  log "ERROR: bench new-site $SITE_NAME failed (see above); cleaning up the half-made site" >&2
  clear_half_made_site ||
    die "bench new-site $SITE_NAME failed, and so did its clean-up; the next run cleans up"
  die "bench new-site $SITE_NAME failed; the half-made site was removed: fix the cause" \
    "shown above and run the deploy again"
fi
if ((ENABLE_SCHEDULER)); then
  marker_set "$SITE_NAME" state created createdAt "$(utc_now)" scheduler pending
  log "site $SITE_NAME created"
  enable_scheduler
else
  marker_set "$SITE_NAME" state created createdAt "$(utc_now)"
  log "site $SITE_NAME created (scheduler left as Frappe sets it: disabled)"
fi
