#!/usr/bin/env bash
# Restore job ("restore as code"): restores one site from the newest backup set of one day in
# the backup directory, then migrates it. The site is in maintenance mode with its scheduler
# paused meanwhile and gets its previous values back afterwards, also on failure. Touches only
# the site (bench restore), never the database server or volumes.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: SITE_NAME, BACKUP_DATE (YYYY-MM-DD), BACKUP_ROOT (/backups),
# DB_ROOT_PASSWORD_FILE (docker secret file).
JOB=restore
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

# --- site modes: identical in migrate.sh and restore.sh (a test keeps it so) ---
# Sites put in maintenance, with their previous "maintenance_mode pause_scheduler" values.
held_sites=()
held_modes=()

# Prints "<maintenance_mode> <pause_scheduler>" from site $1's config, 0 where unset.
site_modes() {
  python3 - "sites/$1/site_config.json" <<'PY'
import json
import sys

with open(sys.argv[1]) as config_file:
    config = json.load(config_file)


def flag(key):
    value = config.get(key, 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return int(bool(value))


print(flag("maintenance_mode"), flag("pause_scheduler"))
PY
}

hold_site() {
  local site=$1 modes
  modes=$(site_modes "$site")
  held_sites+=("$site")
  held_modes+=("$modes")
  log "site $site: maintenance_mode 1, pause_scheduler 1 (were: $modes)"
  bench --site "$site" set-config -p maintenance_mode 1
  bench --site "$site" set-config -p pause_scheduler 1
}

# EXIT trap: every held site gets its previous values back, also after a failure; a site that
# cannot be reset fails the job, since it would stay in maintenance.
# shellcheck disable=SC2317  # reached through the EXIT trap
release_sites() {
  local status=$? i site maintenance scheduler
  set +e
  for i in "${!held_sites[@]}"; do
    site=${held_sites[i]}
    read -r maintenance scheduler <<<"${held_modes[i]}"
    log "site $site: maintenance_mode $maintenance, pause_scheduler $scheduler (restored)"
    if ! bench --site "$site" set-config -p maintenance_mode "$maintenance" ||
      ! bench --site "$site" set-config -p pause_scheduler "$scheduler"; then
      log "ERROR: could not restore maintenance_mode/pause_scheduler of $site; set them by hand" >&2
      ((status != 0)) || status=1
    fi
  done
  exit "$status"
}

release_sites_on_exit() {
  trap release_sites EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
# --- end of site modes ---

require_env SITE_NAME BACKUP_DATE DB_ROOT_PASSWORD_FILE
: "${BACKUP_ROOT:=/backups}"
[[ $BACKUP_DATE =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] ||
  die "BACKUP_DATE must be YYYY-MM-DD, got '$BACKUP_DATE'"
[[ -f sites/$SITE_NAME/site_config.json ]] ||
  die "site $SITE_NAME does not exist on this bench: create it first (create-site job)"

site_backups=$BACKUP_ROOT/$SITE_NAME
backup_dir=$site_backups/$BACKUP_DATE

available_dates() {
  local dated dates=()
  for dated in "$site_backups"/????-??-??; do
    [[ -d $dated ]] && dates+=("${dated##*/}")
  done
  echo "${dates[*]:-none}"
}

[[ -d $backup_dir ]] ||
  die "no backups of $SITE_NAME for $BACKUP_DATE in $site_backups; dates available: $(available_dates)"

# Frappe names a backup set <YYYYMMDD_HHMMSS>-<site, dots as underscores>-<part>; the glob
# sorts by that timestamp, so the last database file is the newest set.
file_prefix=${SITE_NAME//./_}
databases=("$backup_dir"/*-"$file_prefix"-database.sql.gz)
database=${databases[-1]}
[[ -f $database ]] ||
  die "no database backup *-$file_prefix-database.sql.gz in $backup_dir; dates available: $(available_dates)"
set_stamp=${database##*/}
set_stamp=${set_stamp%%-*}

restore_args=("$database")
public_files=$backup_dir/$set_stamp-$file_prefix-files.tar
private_files=$backup_dir/$set_stamp-$file_prefix-private-files.tar
[[ -f $public_files ]] && restore_args+=(--with-public-files "$public_files")
[[ -f $private_files ]] && restore_args+=(--with-private-files "$private_files")

db_root_password=$(read_secret "$DB_ROOT_PASSWORD_FILE")

release_sites_on_exit
hold_site "$SITE_NAME"

log "restoring $SITE_NAME from set $set_stamp: ${restore_args[*]}"
# The command line carries the root password: it is never echoed.
bench --site "$SITE_NAME" restore "${restore_args[@]}" --db-root-username root \
  --db-root-password "$db_root_password" --force ||
  die "bench restore of $SITE_NAME failed; the site may be partly restored, run the job again"
log "migrating $SITE_NAME"
bench --site "$SITE_NAME" migrate || die "bench migrate of $SITE_NAME failed after the restore"
log "restored $SITE_NAME from $BACKUP_DATE (set $set_stamp)"
