#!/usr/bin/env bash
# Daily Frappe backup loop for the prod backup service (architecture section 7).
#
# Sleeps until BACKUP_TIME (UTC), backs up every site with its files into
# $BACKUP_ROOT/<site>/<YYYY-MM-DD>/, deletes dated directories older than
# BACKUP_RETENTION_DAYS, logs one line per outcome, and goes back to sleep.
# BACKUP_ONCE=1 runs one backup immediately and exits (used by tests and by hand);
# `backup-loop.sh next-run-in EPOCH` prints the seconds from EPOCH to the next run.
set -uo pipefail

: "${BACKUP_TIME:=02:00}"
: "${BACKUP_RETENTION_DAYS:=7}"
: "${BACKUP_ROOT:=/backups}"
: "${BENCH_DIR:=/home/frappe/frappe-bench}"

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

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

backup_all() {
  local stamp site target failures=0
  stamp=$(date -u +%F)
  for site in $(sites); do
    target="$BACKUP_ROOT/$site/$stamp"
    mkdir -p "$target"
    if (cd "$BENCH_DIR" && bench --site "$site" backup --with-files --backup-path "$target"); then
      log "ok site=$site path=$target"
    else
      log "FAILED site=$site path=$target"
      failures=$((failures + 1))
    fi
    prune "$BACKUP_ROOT/$site"
  done
  return "$failures"
}

if [[ ${1:-} == next-run-in ]]; then
  seconds_until_next_run "$2"
  exit 0
fi

if [[ ${BACKUP_ONCE:-0} == 1 ]]; then
  backup_all
  exit $?
fi

log "scheduled daily at $BACKUP_TIME UTC, keeping $BACKUP_RETENTION_DAYS days in $BACKUP_ROOT"
while true; do
  sleep "$(seconds_until_next_run "$(date -u +%s)")"
  backup_all || log "run finished with failures"
done
