#!/usr/bin/env bash
# Migrate job (after every image change): runs `bench --site all migrate` with every site in
# maintenance mode and its scheduler paused, then gives each site its previous values back,
# also when the migration fails. Exits with the migration's status.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
JOB=migrate
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

sites=()
for config in sites/*/site_config.json; do
  [[ -e $config ]] || continue
  site=${config#sites/}
  sites+=("${site%/site_config.json}")
done
if ((${#sites[@]} == 0)); then
  log "no sites on this bench, nothing to migrate"
  exit 0
fi

release_sites_on_exit
for site in "${sites[@]}"; do
  hold_site "$site"
done

log "running bench --site all migrate"
status=0
bench --site all migrate || status=$?
if ((status == 0)); then
  log "migration finished"
else
  log "ERROR: migration failed with status $status" >&2
fi
exit "$status"
