#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Restore job ("restore as code"): restores one site from the newest backup set of one day of
# another (or the same) site's backups, then migrates it. The site is in maintenance mode with
# its scheduler paused meanwhile (lib/site-modes.sh): it gets its previous values back on
# success, and stays held when the restore or the migration fails. Touches only the site
# (bench restore), never the database server or volumes.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Frappe names a backup set after the site it was taken of (the source):
#   <YYYYMMDD_HHMMSS>-<source, dots as underscores>-database.sql.gz, -files.tar,
#   -private-files.tar and -site_config_backup.json (frappe/utils/backups.py)
# The last holds the source's site_config.json, its `encryption_key` included: the key Frappe
# encrypts stored passwords with (email accounts, integrations). With the key carried over the
# restored site can read them; without it they are unreadable. `bench restore` keeps the target
# site's own site_config.json (and key): the key is written into it here, by Python reading the
# backup file, never on a command line.
#
# Environment: SITE_NAME (the site restored into), SOURCE_SITE (whose backups; default
# SITE_NAME), BACKUP_DATE (YYYY-MM-DD), BACKUP_ROOT (/backups; the source's backups are in
# BACKUP_ROOT/SOURCE_SITE/<date>/), DB_ROOT_PASSWORD_FILE (docker secret file),
# USE_BACKUP_ENCRYPTION_KEY (true, false or auto; default auto: carried exactly when
# create-site made the site in the same deploy for this restore, that is when the site's marker
# records RESTORE_REQUEST), RESTORE_REQUEST (this request's id), OFFSITE_IDENTITY_FILE (docker
# secret file, only for restore.fromOffsite: the age identity that opens an off-site copy).
#
# An off-site copy (restore.fromOffsite) is fetched by hand into the day's directory as it was
# sent, each file <file>.age (docs/backups.md#restoring-an-off-site-copy). It is decrypted into
# the job's own scratch folder, as the backups are mounted read-only: that folder lives in the
# job's container, which goes away with the job, so no decrypted copy stays behind.
JOB=restore
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe/jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/config-files.sh
source "$SCRIPT_DIR/lib/config-files.sh"
# shellcheck source=lib/site-modes.sh
source "$SCRIPT_DIR/lib/site-modes.sh"
# shellcheck source=lib/site-marker.sh
source "$SCRIPT_DIR/lib/site-marker.sh"
# shellcheck source=lib/frappe-cli.sh
source "$SCRIPT_DIR/lib/frappe-cli.sh"

require_env SITE_NAME BACKUP_DATE DB_ROOT_PASSWORD_FILE
: "${SOURCE_SITE:=$SITE_NAME}"
: "${BACKUP_ROOT:=/backups}"
: "${USE_BACKUP_ENCRYPTION_KEY:=auto}"
[[ $BACKUP_DATE =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] ||
  die "BACKUP_DATE must be YYYY-MM-DD, got '$BACKUP_DATE'"
[[ $USE_BACKUP_ENCRYPTION_KEY =~ ^(true|false|auto)$ ]] ||
  die "USE_BACKUP_ENCRYPTION_KEY must be true, false or auto, got '$USE_BACKUP_ENCRYPTION_KEY'"
[[ -f sites/$SITE_NAME/site_config.json ]] ||
  die "site $SITE_NAME does not exist on this bench: create it first (create-site job)"

site_backups=$BACKUP_ROOT/$SOURCE_SITE
backup_dir=$site_backups/$BACKUP_DATE
file_prefix=${SOURCE_SITE//./_}

available_dates() {
  local dated dates=()
  for dated in "$site_backups"/????-??-??; do
    [[ -d $dated ]] && dates+=("${dated##*/}")
  done
  echo "${dates[*]:-none}"
}

# The database dumps in the day's directory, whoever's they are: said when none is the source's.
dumps_there() {
  local dump names=()
  for dump in "$backup_dir"/*-database*.sql.gz; do
    [[ -e $dump ]] && names+=("${dump##*/}")
  done
  echo "${names[*]:-none}"
}

[[ -d $backup_dir ]] ||
  die "no backups of $SOURCE_SITE for $BACKUP_DATE in $site_backups; dates available: $(available_dates)"

# The off-site copy's files, decrypted with the identity into a folder that then stands for the
# day's directory.
open_offsite_copy() {
  local sealed file name opened
  sealed=("$backup_dir"/*.age)
  [[ -f ${sealed[0]} ]] ||
    die "restore.fromOffsite is set, but $backup_dir holds no off-site copy (<file>.age): fetch" \
      "it there first (docs/backups.md#restoring-an-off-site-copy)"
  command -v age >/dev/null ||
    die "restoring an off-site copy needs age, which is not installed in this image"
  require_secret_file "$OFFSITE_IDENTITY_FILE"
  opened=$(mktemp -d) || die "could not make a scratch folder for the decrypted copy"
  for file in "${sealed[@]}"; do
    name=${file##*/}
    age --decrypt --identity "$OFFSITE_IDENTITY_FILE" --output "$opened/${name%.age}" -- "$file" ||
      die "could not decrypt $name with backupOffsiteIdentity: it must be the identity whose" \
        "public recipient (backupOffsiteRecipients) the copy was made for"
  done
  log "decrypted the off-site copy in $backup_dir (${#sealed[@]} files) into $opened"
  backup_dir=$opened
}

[[ -z ${OFFSITE_IDENTITY_FILE:-} ]] || open_offsite_copy

# A set is <stamp>-<prefix>-...; the glob sorts by that stamp, so the last dump is the newest
# set, encrypted ones (-database-enc.sql.gz) included.
databases=("$backup_dir"/????????_??????-"$file_prefix"-database{,-enc}.sql.gz)
newest=
for database in "${databases[@]}"; do
  [[ -f $database && ${database##*/} > ${newest##*/} ]] && newest=$database
done
sealed_there=("$backup_dir"/*-database*.sql.gz.age)
[[ -n $newest || ! -f ${sealed_there[0]} ]] ||
  die "$backup_dir holds an encrypted off-site copy (<file>.age): set restore.fromOffsite and" \
    "the secret backupOffsiteIdentity to restore it (docs/backups.md#restoring-an-off-site-copy)"
[[ -n $newest ]] ||
  die "no database backup <YYYYMMDD_HHMMSS>-$file_prefix-database.sql.gz of $SOURCE_SITE in" \
    "$backup_dir (database backups there: $(dumps_there))"
database=$newest
set_stamp=${database##*/}
set_stamp=${set_stamp%%-*}
if [[ $database == *-database-enc.sql.gz ]]; then
  # Frappe decrypts with `gpg --passphrase <key>`: the key would be on a command line.
  die "the newest backup set of $SOURCE_SITE on $BACKUP_DATE ($set_stamp) is encrypted" \
    "(System Settings: Encrypt Backups); this job does not restore encrypted sets. Restore" \
    "it by hand (docs/backups.md)"
fi

restore_args=("$database")
public_files=$backup_dir/$set_stamp-$file_prefix-files.tar
private_files=$backup_dir/$set_stamp-$file_prefix-private-files.tar
config_backup=$backup_dir/$set_stamp-$file_prefix-site_config_backup.json
[[ -f $public_files ]] && restore_args+=(--with-public-files "$public_files")
[[ -f $private_files ]] && restore_args+=(--with-private-files "$private_files")

case $USE_BACKUP_ENCRYPTION_KEY in
true) carry_key=1 ;;
false) carry_key=0 ;;
auto)
  carry_key=0
  if [[ -n ${RESTORE_REQUEST:-} && $(marker_get "$SITE_NAME" restoreRequest) == "$RESTORE_REQUEST" ]]; then
    carry_key=1
    log "$SITE_NAME was created for this restore: carrying the backup's encryption key over"
  fi
  ;;
esac
((carry_key == 0)) || [[ -f $config_backup ]] ||
  die "the set $set_stamp has no ${config_backup##*/}, so its encryption key cannot be carried" \
    "over; restore without it (restore.useBackupEncryptionKey: false) if that is what you want"

require_secret_file "$DB_ROOT_PASSWORD_FILE"

# encryption_key of the backup's site config into the site's own config (carry), or only
# compared with it (check); prints what it found, never a key.
encryption_key() {
  python3 - "$1" "$config_backup" "sites/$SITE_NAME/site_config.json" <<'PY'
import json
import sys
from pathlib import Path

action, backup, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
key = json.loads(backup.read_text()).get("encryption_key") if backup.is_file() else None
config = json.loads(target.read_text())
if key is None:
    print("none")
elif config.get("encryption_key") == key:
    print("same")
elif action == "check":
    print("different")
else:
    config["encryption_key"] = key
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(json.dumps(config, indent=1, sort_keys=True))
    partial.replace(target)
    print("carried")
PY
}

release_sites_on_exit
hold_site "$SITE_NAME"

log "restoring $SITE_NAME from $SOURCE_SITE's set $set_stamp: ${restore_args[*]}"
sites_stay_held_on_failure
frappe_cli --site "$SITE_NAME" restore "${restore_args[@]}" --db-root-username root \
  --db-root-password "@secret:$DB_ROOT_PASSWORD_FILE" --force ||
  die "bench restore of $SITE_NAME failed; the site may be partly restored, run the job again"
if ((carry_key)); then
  found=$(encryption_key carry) || die "could not write the backup's encryption key into $SITE_NAME"
  case $found in
  carried) log "encryption key: the backup's, written into sites/$SITE_NAME/site_config.json" ;;
  same) log "encryption key: the backup's and the site's are the same" ;;
  none) log "encryption key: the backup has none (the source never encrypted a value)" ;;
  esac
else
  found=$(encryption_key check) || found=unknown
  if [[ $found == different ]]; then
    log "WARNING: $SITE_NAME keeps its own encryption key, which is not the backup's: passwords" \
      "stored encrypted in the restored data (email accounts, integrations) cannot be read." \
      "Set brandclub:restore.useBackupEncryptionKey to true and restore again to carry it" >&2
  fi
fi
log "migrating $SITE_NAME"
bench --site "$SITE_NAME" migrate || die "bench migrate of $SITE_NAME failed after the restore"
log "restored $SITE_NAME from $SOURCE_SITE's backups of $BACKUP_DATE (set $set_stamp)"
