#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Daily Frappe backup loop for the prod backup service (architecture section 7).
#
# Sleeps until BACKUP_TIME (UTC, so no daylight-saving shifts), backs up every site with its
# files into $BACKUP_ROOT/<site>/<YYYY-MM-DD>/, optionally copies that directory off-site,
# deletes dated directories older than BACKUP_RETENTION_DAYS, logs one line per outcome and
# one summary line per run, and goes back to sleep.
# BACKUP_ONCE=1 runs one backup immediately and exits (used by tests and by hand);
# `backup-loop.sh next-run-in EPOCH` prints the seconds from EPOCH to the next run.
#
# Stopping (the script is the container's PID 1, and Docker signals only PID 1): SIGTERM or
# SIGINT while the loop sleeps ends it at once (exit 0); during a backup it first finishes that
# run (every site, its copy and its pruning), then exits 0. A second signal changes nothing: a
# backup cut halfway is worse than a late stop, and only the end of the stop grace period (the
# service's, sized for a whole run) or a SIGKILL cuts it. Bash runs a trap only between
# commands, so whatever may take long (the sleep, the run) runs in the background and the script
# waits for it with `wait`, which a trapped signal interrupts at once.
# One loop at a time: the loop holds an exclusive lock on $BACKUP_ROOT/.backup-loop.lock for its
# whole life, and a second loop (a replacement task that Swarm started while the old one still
# finishes its run: Swarm waits at most a minute for the old task of a stop-first update) waits
# for it before it schedules anything, so a backup time never runs twice.
#
# Off-site copy, chosen by OFFSITE_KIND:
#   none   (default) local only.
#   s3     OFFSITE_S3_ENDPOINT, OFFSITE_S3_BUCKET, OFFSITE_S3_PREFIX (optional),
#          OFFSITE_S3_ACCESS_KEY_ID, OFFSITE_S3_SECRET_KEY_FILE (docker secret file),
#          OFFSITE_S3_REGION (optional); objects go to s3://bucket/prefix/<site>/<date>/<file>,
#          uploaded by the Python below (upload_to_s3) run with the bench's Python
#          (OFFSITE_PYTHON), which has boto3; the secret key is read from its file.
#   rsync  OFFSITE_RSYNC_TARGET (user@host:/path), OFFSITE_SSH_KEY_FILE (docker secret file),
#          OFFSITE_SSH_KNOWN_HOSTS_FILE (optional: pins the host key instead of trusting the
#          first one seen); the dated directory goes to TARGET/<site>/. Needs rsync and ssh.
# Either kind sends only copies encrypted here first, with age to the public recipients in
# OFFSITE_AGE_RECIPIENTS_FILE (docker secret file; one age1... per line): each file goes as
# <file>.age, and the data node never holds the private identity that opens them. The local
# backups stay as bench wrote them, so a local restore needs no key (docs/backups.md).
# A failed copy is its own logged outcome and fails the run; it never deletes local backups.
#
# No `set -e`: one site's failure must not stop the other sites or the loop, so every step's
# outcome is checked and logged instead.
set -uo pipefail
# From a checkout the library is sourced; the service's text has it inlined instead
# (components/frappe/processes.py), as the service has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]:-.}")" && pwd)
# shellcheck source=lib/loop-pause.sh
source "$SCRIPT_DIR/lib/loop-pause.sh"

: "${BACKUP_TIME:=02:00}"
: "${BACKUP_RETENTION_DAYS:=7}"
: "${BACKUP_ROOT:=/backups}"
: "${BENCH_DIR:=/home/frappe/frappe-bench}"
: "${OFFSITE_KIND:=none}"
: "${OFFSITE_PYTHON:=$BENCH_DIR/env/bin/python}"
# Where a site's encrypted copy is put together before it is sent, under BACKUP_ROOT: on the
# backup volume, which has room for a backup, and dotted, so no site's dated directories hold it.
OFFSITE_SEALED_DIR=.offsite-sealed

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

die() {
  log "ERROR: $*" >&2
  exit 2
}

require_env() {
  local name
  for name in "$@"; do
    [[ -n ${!name:-} ]] || die "OFFSITE_KIND=$OFFSITE_KIND needs $name"
  done
}

require_readable() {
  local name
  for name in "$@"; do
    [[ -r ${!name} ]] || die "$name: cannot read ${!name}"
  done
}

require_commands() {
  local command
  for command in "$@"; do
    command -v "$command" >/dev/null ||
      die "OFFSITE_KIND=$OFFSITE_KIND needs $command, which is not installed in this image"
  done
}

# Bad settings stop the service at start, with the reason in its log, instead of at 02:00.
validate_settings() {
  [[ $BACKUP_TIME =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] ||
    die "BACKUP_TIME must be HH:MM in UTC (00:00 to 23:59), got '$BACKUP_TIME'"
  [[ $BACKUP_RETENTION_DAYS =~ ^[1-9][0-9]*$ ]] ||
    die "BACKUP_RETENTION_DAYS must be a positive whole number of days, got '$BACKUP_RETENTION_DAYS'"
  case $OFFSITE_KIND in
  none) ;;
  s3)
    require_env OFFSITE_S3_ENDPOINT OFFSITE_S3_BUCKET OFFSITE_S3_ACCESS_KEY_ID \
      OFFSITE_S3_SECRET_KEY_FILE
    require_readable OFFSITE_S3_SECRET_KEY_FILE
    # The config validates it too (components/config/grammar.py); here as well, so the
    # script run by hand never sends a backup in clear text.
    [[ $OFFSITE_S3_ENDPOINT == https://* ]] ||
      die "OFFSITE_S3_ENDPOINT must be an https:// URL, got '$OFFSITE_S3_ENDPOINT'"
    [[ -x $OFFSITE_PYTHON ]] || die "OFFSITE_PYTHON: $OFFSITE_PYTHON is not an executable"
    ;;
  rsync)
    require_env OFFSITE_RSYNC_TARGET OFFSITE_SSH_KEY_FILE
    # user@host:/path, none of them starting with '-': ssh would read '-o...' as an option.
    [[ $OFFSITE_RSYNC_TARGET =~ ^[a-z_][a-z0-9_.-]*@[A-Za-z0-9[][^@:/[:space:]]*:/[^[:space:]]*$ ]] ||
      die "OFFSITE_RSYNC_TARGET must be user@host:/absolute/path, got '$OFFSITE_RSYNC_TARGET'"
    require_readable OFFSITE_SSH_KEY_FILE
    if [[ -n ${OFFSITE_SSH_KNOWN_HOSTS_FILE:-} ]]; then
      require_readable OFFSITE_SSH_KNOWN_HOSTS_FILE
    fi
    require_commands rsync ssh
    ;;
  *) die "OFFSITE_KIND must be none, s3 or rsync, got '$OFFSITE_KIND'" ;;
  esac
  [[ $OFFSITE_KIND == none ]] || validate_encryption
}

# Nothing leaves in clear: without a recipient age accepts, the service stops at start.
validate_encryption() {
  local problem
  require_env OFFSITE_AGE_RECIPIENTS_FILE
  require_readable OFFSITE_AGE_RECIPIENTS_FILE
  require_commands age
  # Encrypting nothing parses the file as a real copy would; age's message names the line, never
  # its content.
  problem=$(age --encrypt --recipients-file "$OFFSITE_AGE_RECIPIENTS_FILE" </dev/null 2>&1 >/dev/null) ||
    die "OFFSITE_AGE_RECIPIENTS_FILE must hold age public recipients (age1..., one per line;" \
      "age-keygen -y prints the one of an identity): ${problem%%$'\n'*}"
}

# Seconds from epoch second $1 until the next BACKUP_TIME (UTC), never zero.
seconds_until_next_run() {
  local now=$1 hour minute today_start target
  hour=$((10#${BACKUP_TIME%%:*}))
  minute=$((10#${BACKUP_TIME##*:}))
  today_start=$((now - now % 86400))
  target=$((today_start + hour * 3600 + minute * 60))
  if ((target <= now)); then
    target=$((target + 86400))
  fi
  echo $((target - now))
}

sites() {
  local config
  for config in "$BENCH_DIR"/sites/*/site_config.json; do
    [[ -e $config ]] || continue
    basename "$(dirname "$config")"
  done
}

# Dated directories are compared by name, not mtime: writing into a directory changes its
# mtime, its name never does.
prune() {
  local site_dir=$1 cutoff dated
  cutoff=$(date -u -d "@$(($(date -u +%s) - BACKUP_RETENTION_DAYS * 86400))" +%F)
  for dated in "$site_dir"/????-??-??; do
    [[ -d $dated ]] || continue
    if [[ $(basename "$dated") < $cutoff ]]; then
      rm -rf -- "$dated" && log "pruned $dated"
    fi
  done
}

# Where site $1's copy of day $2 goes, for the log (the prefix trimmed as the uploader does).
offsite_target() {
  local prefix=${OFFSITE_S3_PREFIX:-}
  prefix=${prefix#/}
  prefix=${prefix%/}
  case $OFFSITE_KIND in
  s3) echo "s3://$OFFSITE_S3_BUCKET/${prefix:+$prefix/}$1/$2/" ;;
  rsync) echo "$OFFSITE_RSYNC_TARGET/$1/" ;;
  esac
}

# Uploads the files of directory $1 to s3://$OFFSITE_S3_BUCKET/[$OFFSITE_S3_PREFIX/]$2/<file>.
# The uploader is inline because the service runs this script as `bash -c "<text>"`: there is
# no file beside it in the container.
upload_to_s3() {
  "$OFFSITE_PYTHON" - "$1" "$2" <<'PY'
import os
import sys
from pathlib import Path

import boto3


def object_key(*parts):
    """Joins key parts with single slashes, skipping empty ones (an unset prefix)."""
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def upload(directory, key):
    files = sorted(path for path in directory.glob("*") if path.is_file())
    if not files:
        print(f"s3 upload: no files to upload in {directory}", file=sys.stderr)
        return 1
    bucket = os.environ["OFFSITE_S3_BUCKET"]
    try:
        client = boto3.client(
            "s3",
            endpoint_url=os.environ["OFFSITE_S3_ENDPOINT"],
            aws_access_key_id=os.environ["OFFSITE_S3_ACCESS_KEY_ID"],
            aws_secret_access_key=Path(os.environ["OFFSITE_S3_SECRET_KEY_FILE"]).read_text().strip(),
            region_name=os.environ.get("OFFSITE_S3_REGION") or None,
        )
        for path in files:
            target = object_key(os.environ.get("OFFSITE_S3_PREFIX", ""), key, path.name)
            client.upload_file(str(path), bucket, target)
            print(f"uploaded s3://{bucket}/{target}")
    except Exception as error:  # any boto3/botocore failure: one line for the backup log
        print(f"s3 upload to s3://{bucket} failed: {error}", file=sys.stderr)
        return 1
    return 0


sys.exit(upload(Path(sys.argv[1]), sys.argv[2]))
PY
}

# Encrypts each file of directory $1 into directory $2 (made anew) as <file>.age.
seal_for_offsite() {
  local dated=$1 sealed=$2 file
  rm -rf -- "$sealed" && mkdir -p -- "$sealed" || return 1
  for file in "$dated"/*; do
    [[ -f $file ]] || continue
    age --encrypt --recipients-file "$OFFSITE_AGE_RECIPIENTS_FILE" --output "$sealed/${file##*/}.age" \
      -- "$file" || return 1
  done
}

# Copies site $1's dated directory $2 (day $3) off-site, encrypted; secrets travel as file
# paths only.
copy_offsite() {
  local site=$1 dated=$2 day=$3 staging=$BACKUP_ROOT/$OFFSITE_SEALED_DIR status
  # Named after the day, as the dated directory is: rsync puts it at TARGET/<site>/<day>/.
  local sealed=$staging/$day
  if seal_for_offsite "$dated" "$sealed"; then
    send_offsite "$site" "$sealed" "$day"
    status=$?
  else
    log "ERROR: could not encrypt $dated for its off-site copy; nothing was sent" >&2
    status=1
  fi
  # Only the local backups are kept; a run killed before this leaves the folder to the next run.
  rm -rf -- "$staging"
  return "$status"
}

# Sends site $1's encrypted directory $2 (day $3) to the off-site target.
send_offsite() {
  local site=$1 dated=$2 day=$3 ssh_command
  case $OFFSITE_KIND in
  s3) upload_to_s3 "$dated" "$site/$day" ;;
  rsync)
    ssh_command="ssh -i $OFFSITE_SSH_KEY_FILE -o BatchMode=yes"
    if [[ -n ${OFFSITE_SSH_KNOWN_HOSTS_FILE:-} ]]; then
      ssh_command+=" -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$OFFSITE_SSH_KNOWN_HOSTS_FILE"
    else
      ssh_command+=" -o StrictHostKeyChecking=accept-new"
    fi
    # --protect-args: the remote path reaches the remote rsync as it is, never through the
    # remote shell (the default only from rsync 3.2.4); '--' ends the options.
    rsync -a --protect-args -e "$ssh_command" -- "$dated" "$OFFSITE_RSYNC_TARGET/$site/"
    ;;
  esac
}

# Backs up site $1 into its directory for day $2; fails when the backup or its copy fails.
backup_site() {
  local site=$1 day=$2 target
  target="$BACKUP_ROOT/$site/$day"
  mkdir -p "$target"
  if ! (cd "$BENCH_DIR" && bench --site "$site" backup --with-files --backup-path "$target"); then
    # Nothing is pruned after a failure: failing runs must not use up the last good backups.
    log "FAILED site=$site path=$target"
    return 1
  fi
  log "ok site=$site path=$target"
  prune "$BACKUP_ROOT/$site"
  [[ $OFFSITE_KIND != none ]] || return 0
  if copy_offsite "$site" "$target" "$day"; then
    log "offsite ok site=$site target=$(offsite_target "$site" "$day")"
  else
    log "offsite FAILED site=$site target=$(offsite_target "$site" "$day")"
    return 1
  fi
}

backup_all() {
  local day site ok=0 failed=0
  day=$(date -u +%F)
  for site in $(sites); do
    if backup_site "$site" "$day"; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
    fi
  done
  log "run finished: $ok ok, $failed failed"
  ((failed == 0))
}

validate_settings

if [[ ${1:-} == next-run-in ]]; then
  seconds_until_next_run "$2"
  exit 0
fi

if [[ ${BACKUP_ONCE:-0} == 1 ]]; then
  backup_all
  exit $?
fi

# Set by the SIGTERM/SIGINT trap: the loop stops where no backup is running.
stop_requested=0
# The running `sleep` of pause, which the trap ends.
sleeper=

on_stop_signal() {
  if ((stop_requested)); then
    log "SIG$1 again: still finishing the backup in progress, then stopping"
  else
    log "SIG$1: stopping (a backup in progress is finished first)"
  fi
  stop_requested=1
  # A signal that came just before pause's `wait` does not interrupt it: end the sleep here.
  if [[ -n $sleeper ]]; then kill "$sleeper" 2>/dev/null; fi
}
trap 'on_stop_signal TERM' TERM
trap 'on_stop_signal INT' INT

# The lock's file descriptor: every child gets it closed (`9>&-`), as a lock lives as long as
# any process holds its descriptor, and a leftover child must never keep the next loop waiting.
LOCK_FD=9
LOCK_FILE="$BACKUP_ROOT/.backup-loop.lock"

# One run of backup_all in the background, waited for to its end whatever signals arrive: a
# trapped signal ends `wait` early (status > 128) while the run goes on. Returns the run's status.
run_backups() {
  backup_all 9>&- &
  local run=$!
  while kill -0 "$run" 2>/dev/null; do
    wait "$run"
  done
  wait "$run"
}

mkdir -p "$BACKUP_ROOT" && exec 9>>"$LOCK_FILE" || die "cannot open the lock file $LOCK_FILE"
if ! flock --nonblock "$LOCK_FD"; then
  log "another backup loop holds $LOCK_FILE: waiting until it has stopped"
  until flock --nonblock "$LOCK_FD"; do
    pause 1 || {
      log "stopped before the other loop let go of the lock"
      exit 0
    }
  done
fi

log "scheduled daily at $BACKUP_TIME UTC, keeping $BACKUP_RETENTION_DAYS days in $BACKUP_ROOT," \
  "off-site copy: $OFFSITE_KIND"
while pause "$(seconds_until_next_run "$(date -u +%s)")"; do
  run_backups || true
done
log "stopped"
exit 0
