#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The restore drill (the restore-drill service, where backup.drill.enabled): proves that the
# backups restore. Every DRILL_INTERVAL_DAYS, at DRILL_TIME (UTC), for every site it:
#   1. takes the newest local backup set, $BACKUP_ROOT/<site>/<YYYY-MM-DD>/<stamp>-<site>-*;
#   2. restores its dump into a throwaway site drill-<hex>.localhost with its own database and
#      user drill_<hex> on the stack's MariaDB (bench restore --db-name, as root);
#   3. checks, each timed: the rows of DRILL_DOCTYPES in the restored database equal those the
#      dump itself holds (counted first, before anything writes), migrate is a no-op (the
#      restored `tabPatch Log` has as many rows after as before), login works (a random
#      Administrator password, the image's backend started in this container, POST
#      /api/method/login answers 200 with a sid cookie), and the files archives unpack;
#   4. drops the throwaway site, database and user, whatever happened;
#   5. writes its result to $DRILL_STATE_DIR/sites/<site>/ (last-run.json, last-success.json,
#      history.jsonl).
# A metrics server (restore_drill.py serve) answers on DRILL_METRICS_PORT all the while.
#
# What it may touch, by construction: it runs without the sites volume, so the throwaway site
# lives in this container's own sites folder (which no scheduler or backend of the stack reads),
# it never reads a live site's site_config.json or its database credentials, and it drops only
# names matching ^drill_[0-9a-f]+$ (restore_drill.py checks every name it drops). A drill killed
# halfway (SIGKILL) leaves a database, a user and a site folder: every run starts by dropping
# every drill_<hex> database and user MariaDB has and every drill site folder here; the names are
# also written to $DRILL_STATE_DIR/ledger before they are created.
#
# `restore-drill.sh once` (or RESTORE_DRILL_ONCE=1) runs one drill now and exits (tests, and an
# operator: docker exec <task> bash /tmp/restore-drill.sh once; the service writes its own text
# there at start). `restore-drill.sh next-run-in EPOCH` prints the seconds until the next drill.
# A drill (the loop's or a `once`) holds $DRILL_STATE_DIR/.drill.lock: a second one refuses.
#
# Stopping (the script is the container's PID 1): SIGTERM or SIGINT while the loop sleeps ends
# it within a second (exit 0); during a drill the step in progress finishes, the remaining checks
# are skipped, the throwaway site and database are dropped, then it exits 0. The service's stop
# grace period covers a step and the cleanup.
#
# Environment: BENCH_DIR, BACKUP_ROOT (/backups, read-only), DRILL_STATE_DIR (writable),
# DRILL_SITES (the stack's sites; every site with backups is drilled too), DRILL_TIME (HH:MM,
# UTC), DRILL_INTERVAL_DAYS, DRILL_DOCTYPES (comma-separated), DRILL_METRICS_PORT, DB_HOST,
# DB_PORT, REDIS_CACHE, REDIS_QUEUE, DB_ROOT_PASSWORD_FILE (docker secret file),
# DRILL_BACKEND_PORT (where the image's start.sh listens, 8000), DRILL_BACKEND_TIMEOUT (seconds,
# 300), DRILL_PYTHON (the bench's Python).
#
# No `set -e`: a failing check must not stop the drill before its cleanup.
set -uo pipefail

: "${BENCH_DIR:=/home/frappe/frappe-bench}"
: "${BACKUP_ROOT:=/backups}"
: "${DRILL_STATE_DIR:=/restore-drill}"
: "${DRILL_SITES:=}"
: "${DRILL_TIME:=04:00}"
: "${DRILL_INTERVAL_DAYS:=7}"
: "${DRILL_DOCTYPES:=User,ToDo}"
: "${DRILL_METRICS_PORT:=9150}"
: "${DB_HOST:=mariadb}"
: "${DB_PORT:=3306}"
: "${REDIS_CACHE:=redis://redis-cache:6379}"
: "${REDIS_QUEUE:=redis://redis-queue:6379}"
: "${DB_ROOT_PASSWORD_FILE:=/run/secrets/db-root-password}"
: "${DRILL_BACKEND_PORT:=8000}"
: "${DRILL_BACKEND_TIMEOUT:=300}"
: "${DRILL_PYTHON:=$BENCH_DIR/env/bin/python}"
export BACKUP_ROOT DRILL_STATE_DIR DRILL_SITES DRILL_TIME DRILL_INTERVAL_DAYS \
  DRILL_METRICS_PORT DB_HOST DB_PORT DB_ROOT_PASSWORD_FILE
# Where the service's text is written for `docker exec <task> bash /tmp/restore-drill.sh once`.
DRILL_SCRIPT_COPY=/tmp/restore-drill.sh
# The throwaway sites' folders: drill-<hex>.localhost in this container's own sites folder.
DRILL_SITE_GLOB='drill-*.localhost'

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]:-.}")" && pwd)
# shellcheck source=lib/config-files.sh
source "$SCRIPT_DIR/lib/config-files.sh"
# shellcheck source=lib/frappe-cli.sh
source "$SCRIPT_DIR/lib/frappe-cli.sh"
# shellcheck source=lib/loop-pause.sh
source "$SCRIPT_DIR/lib/loop-pause.sh"
# The Python half; the service's text has it inlined here (components/frappe/processes.py).
RESTORE_DRILL_PY=$(<"$SCRIPT_DIR/restore_drill.py")

log() { printf '%s restore-drill: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() {
  log "ERROR: $*" >&2
  exit 2
}
helper() { "$DRILL_PYTHON" -c "$RESTORE_DRILL_PY" "$@"; }

validate_settings() {
  [[ $DRILL_TIME =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] ||
    die "DRILL_TIME must be HH:MM in UTC (00:00 to 23:59), got '$DRILL_TIME'"
  [[ $DRILL_INTERVAL_DAYS =~ ^[1-9][0-9]*$ ]] ||
    die "DRILL_INTERVAL_DAYS must be a positive whole number of days, got '$DRILL_INTERVAL_DAYS'"
  # Doctype names become table names in SQL: letters, digits, spaces, _ and - only.
  [[ $DRILL_DOCTYPES =~ ^[A-Za-z][A-Za-z0-9\ _-]*(,[A-Za-z][A-Za-z0-9\ _-]*)*$ ]] ||
    die "DRILL_DOCTYPES must be doctype names separated by commas, got '$DRILL_DOCTYPES'"
  [[ $DRILL_METRICS_PORT =~ ^[1-9][0-9]*$ ]] ||
    die "DRILL_METRICS_PORT must be a port number, got '$DRILL_METRICS_PORT'"
  [[ -r $DB_ROOT_PASSWORD_FILE ]] || die "cannot read the secret file $DB_ROOT_PASSWORD_FILE"
  [[ -x $DRILL_PYTHON ]] || die "DRILL_PYTHON: $DRILL_PYTHON is not an executable"
  [[ -d $BENCH_DIR/apps/frappe ]] || die "BENCH_DIR: $BENCH_DIR holds no bench"
  mkdir -p "$DRILL_STATE_DIR/sites" || die "cannot write to DRILL_STATE_DIR $DRILL_STATE_DIR"
}

# The bench this container's drill sites live in: its own common_site_config.json (the stack's
# MariaDB and Redis) and apps.txt, never the live sites volume's.
prepare_bench() {
  local apps
  apps=$(ls -1 apps) || return 1
  printf '%s\n' "$apps" | replace_file_if_changed sites/apps.txt >/dev/null || return 1
  config_update sites/common_site_config.json string db_host "$DB_HOST" json db_port "$DB_PORT" \
    string redis_cache "$REDIS_CACHE" string redis_queue "$REDIS_QUEUE" \
    string redis_socketio "$REDIS_QUEUE" >/dev/null
}

# Drops what any earlier drill left: every drill_<hex> database and user, every drill site
# folder, the ledger.
clean_leftovers() {
  local dropped folder
  dropped=$(helper cleanup) || {
    log "ERROR: could not drop the leftovers of earlier drills"
    return 1
  }
  [[ -z $dropped ]] || log "dropped leftovers of an earlier drill: $dropped"
  for folder in sites/$DRILL_SITE_GLOB; do
    [[ -e $folder ]] || continue
    rm -rf -- "$folder" && log "removed the leftover site folder $folder"
  done
  rm -f -- "$DRILL_STATE_DIR/ledger"
}

# The sites drilled: the stack's, and every one with backups.
drill_sites() {
  local folder
  {
    # shellcheck disable=SC2086  # a space-separated list of host names
    printf '%s\n' $DRILL_SITES
    for folder in "$BACKUP_ROOT"/*/; do
      folder=${folder%/}
      [[ -d $folder && ${folder##*/} != .* ]] && printf '%s\n' "${folder##*/}"
    done
  } | sort -u | sed '/^$/d'
}

# --- one site's drill -----------------------------------------------------------------------

# record NAME OK MESSAGE...: one check's outcome, timed from $check_started.
record() {
  local seconds message="${*:3}"
  seconds=$(awk -v a="$check_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$seconds" "${message//$'\n'/ }" >>"$checks"
  if [[ $2 == 1 ]]; then
    log "ok site=$drill_of check=$1 (${seconds}s): $message"
  else
    log "FAILED site=$drill_of check=$1 (${seconds}s): $message"
  fi
}
begin() { check_started=$EPOCHREALTIME; }
# The last lines of a command's output, on one line, for a check's message.
tail_of() { tail -n 5 "$1" | tr '\n' ' ' | cut -c1-400; }

# The newest set: the last dated folder with a dump, its last dump by name (the stamp).
find_backup() {
  local dated dump
  backup_dump= backup_date=
  for dated in "$BACKUP_ROOT/$drill_of"/????-??-??; do
    for dump in "$dated"/????????_??????-*-database.sql.gz; do
      [[ -f $dump ]] && backup_dump=$dump backup_date=${dated##*/}
    done
  done
  [[ -n $backup_dump ]]
}

patch_log_rows() {
  helper count-rows "$drill_db" 'tabPatch Log' | python3 -c '
import json, sys
count = json.load(sys.stdin)["tabPatch Log"]
sys.exit("the restored database has no tabPatch Log") if count is None else print(count)'
}

check_migrate() {
  local before after output=$work/migrate.log
  begin
  before=$(patch_log_rows 2>"$output") || {
    record migrate 0 "could not count tabPatch Log before migrate: $(tail_of "$output")"
    return
  }
  if ! bench --site "$drill_site" migrate >"$output" 2>&1; then
    record migrate 0 "bench migrate failed: $(tail_of "$output")"
    return
  fi
  after=$(patch_log_rows 2>"$output") || {
    record migrate 0 "could not count tabPatch Log after migrate: $(tail_of "$output")"
    return
  }
  if ((after == before)); then
    record migrate 1 "no patch ran ($before rows in tabPatch Log before and after)"
  else
    record migrate 0 "migrate ran $((after - before)) patches the backup had not run" \
      "($before rows in tabPatch Log before, $after after): the image is newer than the backup"
  fi
}

check_login() {
  local password=$work/admin-password backend status headers=$work/login.headers deadline
  begin
  # No line break after it: curl would send it as part of the password.
  (umask 077 && helper new-password >"$password") || {
    record login 0 "could not make a password"
    return
  }
  if ! frappe_cli --site "$drill_site" set-admin-password "@secret:$password" \
    >"$work/password.log" 2>&1; then
    record login 0 "bench set-admin-password failed: $(tail_of "$work/password.log")"
    return
  fi
  start.sh >"$work/backend.log" 2>&1 &
  backend=$!
  deadline=$((EPOCHSECONDS + DRILL_BACKEND_TIMEOUT))
  status=000
  while ((EPOCHSECONDS < deadline)) && kill -0 "$backend" 2>/dev/null && ((!aborting)); do
    # The password from its file (@file): never on a command line.
    status=$(curl --silent --max-time 10 --output /dev/null --dump-header "$headers" \
      --write-out '%{http_code}' --header "Host: $drill_site" \
      --data-urlencode usr=Administrator --data-urlencode "pwd@$password" \
      "http://127.0.0.1:$DRILL_BACKEND_PORT/api/method/login") && break
    status=000
    sleep 0.5
  done
  kill -TERM "$backend" 2>/dev/null
  wait "$backend" 2>/dev/null
  if [[ $status == 000 ]] && ((aborting)); then
    record login 0 "stopped (SIGTERM) while waiting for the backend"
  elif [[ $status == 000 ]]; then
    record login 0 "the backend never answered on 127.0.0.1:$DRILL_BACKEND_PORT within" \
      "${DRILL_BACKEND_TIMEOUT}s: $(tail_of "$work/backend.log")"
  elif [[ $status != 200 ]]; then
    record login 0 "POST /api/method/login answered $status, not 200"
  elif ! grep -qiE '^set-cookie: sid=[^;G]' "$headers"; then
    record login 0 "POST /api/method/login answered 200 without a sid cookie"
  else
    record login 1 "Administrator logged in (200, sid cookie)"
  fi
}

check_rows() {
  local expected actual message
  begin
  IFS=, read -ra doctypes <<<"$DRILL_DOCTYPES"
  expected=$(helper count-dump "$backup_dump" "${doctypes[@]}" 2>"$work/rows.log") || {
    record rows 0 "could not read the dump: $(tail_of "$work/rows.log")"
    return
  }
  local tables=()
  for doctype in "${doctypes[@]}"; do tables+=("tab$doctype"); done
  actual=$(helper count-rows "$drill_db" "${tables[@]}" 2>"$work/rows.log") || {
    record rows 0 "could not count the restored rows: $(tail_of "$work/rows.log")"
    return
  }
  message=$(python3 -c '
import json, sys
expected, actual = json.loads(sys.argv[1]), json.loads(sys.argv[2])
parts, ok = [], True
for doctype, want in expected.items():
    have = actual["tab" + doctype]
    if want is None:
        ok = False
        parts.append(f"{doctype}: not in the dump")
    elif have != want:
        ok = False
        parts.append(f"{doctype}: {have} restored, {want} in the dump")
    else:
        parts.append(f"{doctype}: {have}")
print(int(ok), "; ".join(parts))' "$expected" "$actual")
  record rows "${message%% *}" "${message#* }"
}

check_files() {
  local set_prefix=${backup_dump%-database.sql.gz} part archive folder count messages=() ok=1
  begin
  for part in files private-files; do
    archive=$set_prefix-$part.tar
    if [[ ! -f $archive ]]; then
      ok=0 messages+=("no ${archive##*/} in the set")
      continue
    fi
    folder=$work/$part
    mkdir -p "$folder"
    if tar -xf "$archive" -C "$folder" 2>"$work/tar.log"; then
      count=$(find "$folder" -type f | wc -l)
      messages+=("${archive##*/}: $count files")
    else
      ok=0 messages+=("${archive##*/} does not unpack: $(tail_of "$work/tar.log")")
    fi
    rm -rf -- "$folder"
  done
  local joined
  joined=$(printf '%s; ' "${messages[@]}")
  record files "$ok" "${joined%; }"
}

# Drops this drill's database, user and site folder.
drop_drill() {
  [[ -n ${drill_db:-} ]] || return 0
  helper drop "$drill_db" >/dev/null || log "ERROR: could not drop $drill_db (the next run will)"
  rm -rf -- "sites/$drill_site"
  sed -i "/ $drill_db\$/d" "$DRILL_STATE_DIR/ledger" 2>/dev/null
  log "dropped $drill_db and sites/$drill_site"
  drill_db=
}

drill_one() {
  drill_of=$1
  local started hex
  started=$EPOCHSECONDS
  checks=$(mktemp) work=$(mktemp -d)
  drill_db= backup_dump= backup_date=
  log "drill of $drill_of"
  begin
  if ! find_backup; then
    record backup 0 "no backup <stamp>-*-database.sql.gz of $drill_of in $BACKUP_ROOT/$drill_of"
  else
    record backup 1 "$backup_dump"
    hex=$("$DRILL_PYTHON" -c 'import secrets; print(secrets.token_hex(6))')
    drill_db=drill_$hex drill_site=drill-$hex.localhost
    # Written before they exist: what a killed drill leaves is named here too.
    printf '%s %s\n' "$drill_site" "$drill_db" >>"$DRILL_STATE_DIR/ledger"
    begin
    if frappe_cli --site "$drill_site" restore "$backup_dump" --db-name "$drill_db" --force \
      --db-root-password "@secret:$DB_ROOT_PASSWORD_FILE" >"$work/restore.log" 2>&1; then
      record restore 1 "restored into $drill_site (database $drill_db)"
      local check
      # Rows first: migrate and the login write to the database (a patch's data, Frappe's
      # access and activity logs), so the restored rows are counted before anything else runs.
      for check in check_rows check_migrate check_login check_files; do
        if ((aborting)); then
          check_started=$EPOCHREALTIME
          record "${check#check_}" 0 "skipped: the drill was stopped (SIGTERM)"
          continue
        fi
        "$check"
      done
    else
      record restore 0 "bench restore failed: $(tail_of "$work/restore.log")"
    fi
  fi
  drop_drill
  DRILL_SITE=$drill_of DRILL_STARTED=$started DRILL_ENDED=$EPOCHSECONDS \
    DRILL_BACKUP_PATH=$backup_dump DRILL_BACKUP_DATE=$backup_date \
    helper result "$checks" >/dev/null || log "ERROR: could not write the result of $drill_of"
  if grep -q $'^[^\t]*\t0\t' "$checks"; then
    log "drill of $drill_of FAILED"
    rm -rf -- "$checks" "$work"
    return 1
  fi
  log "drill of $drill_of ok"
  rm -rf -- "$checks" "$work"
}

# Set by SIGTERM/SIGINT inside a drill: the remaining checks are skipped, the cleanup still runs.
aborting=0
drill_db=

drill_all() {
  trap 'aborting=1; log "stop requested: finishing the step in progress, then cleaning up"' TERM INT
  # Whatever ends this run (an error of its own included), the throwaway site goes.
  trap 'drop_drill' EXIT
  local site ok=0 failed=0
  exec 8>>"$DRILL_STATE_DIR/.drill.lock" && flock --nonblock 8 || {
    log "another drill is running (it holds $DRILL_STATE_DIR/.drill.lock): not starting one"
    return 3
  }
  printf '%s\n' "$EPOCHSECONDS" >"$DRILL_STATE_DIR/last-run"
  if ! prepare_bench || ! clean_leftovers; then
    log "ERROR: could not prepare the drill's bench or drop earlier leftovers: no drill"
    return 1
  fi
  for site in $(drill_sites); do
    ((aborting)) && break
    if drill_one "$site"; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
    fi
  done
  log "run finished: $ok ok, $failed failed"
  ((failed == 0))
}

validate_settings
cd "$BENCH_DIR" || die "cannot enter $BENCH_DIR"

if [[ ${1:-} == next-run-in ]]; then
  helper next-run-in "$2"
  exit $?
fi

if [[ ${1:-} == once || ${RESTORE_DRILL_ONCE:-0} == 1 ]]; then
  drill_all
  exit $?
fi

# The service's own text, for an operator's `once`.
if [[ -n ${BASH_EXECUTION_STRING:-} ]]; then
  printf '%s' "$BASH_EXECUTION_STRING" >"$DRILL_SCRIPT_COPY"
fi

stop_requested=0
sleeper=
metrics_server=
run=
on_stop_signal() {
  log "SIG$1: stopping (a drill in progress drops its throwaway site first)"
  stop_requested=1
  if [[ -n $run ]]; then kill -TERM "$run" 2>/dev/null; fi
  if [[ -n $sleeper ]]; then kill "$sleeper" 2>/dev/null; fi
}
trap 'on_stop_signal TERM' TERM
trap 'on_stop_signal INT' INT

# The drill in the background, waited for to its end: a signal ends `wait` early, the handler
# passes it on, and the drill finishes its step and its cleanup.
run_drill() {
  drill_all &
  run=$!
  while kill -0 "$run" 2>/dev/null; do
    wait "$run"
  done
  wait "$run"
  run=
}

# Started straight, not through `helper` (a function: its subshell would be the pid killed).
"$DRILL_PYTHON" -c "$RESTORE_DRILL_PY" serve &
metrics_server=$!
log "metrics on :$DRILL_METRICS_PORT; a drill every $DRILL_INTERVAL_DAYS days at $DRILL_TIME UTC"
while pause "$(helper next-run-in "$EPOCHSECONDS")"; do
  run_drill || true
done
kill "$metrics_server" 2>/dev/null
wait "$metrics_server" 2>/dev/null
log "stopped"
exit 0
