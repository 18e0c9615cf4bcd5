#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Restore job ("restore as code"): restores one site from the newest backup set of one day in
# the backup directory, then migrates it. The site is in maintenance mode with its scheduler
# paused meanwhile and gets its previous values back afterwards, also on failure. Touches only
# the site (bench restore), never the database server or volumes.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: SITE_NAME, BACKUP_DATE (YYYY-MM-DD), BACKUP_ROOT (/backups),
# DB_ROOT_PASSWORD_FILE (docker secret file).
JOB=restore
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe_jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/site-modes.sh
source "$SCRIPT_DIR/lib/site-modes.sh"

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
databases=("$backup_dir"/????????_??????-"$file_prefix"-database.sql.gz)
database=${databases[-1]}
[[ -f $database ]] ||
  die "no database backup <YYYYMMDD_HHMMSS>-$file_prefix-database.sql.gz in $backup_dir; dates available: $(available_dates)"
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
sites_stay_held_on_failure
# The command line carries the root password: it is never echoed.
bench --site "$SITE_NAME" restore "${restore_args[@]}" --db-root-username root \
  --db-root-password "$db_root_password" --force ||
  die "bench restore of $SITE_NAME failed; the site may be partly restored, run the job again"
log "migrating $SITE_NAME"
bench --site "$SITE_NAME" migrate || die "bench migrate of $SITE_NAME failed after the restore"
log "restored $SITE_NAME from $BACKUP_DATE (set $set_stamp)"
