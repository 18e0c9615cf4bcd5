# shellcheck shell=bash
# shellcheck disable=SC2317  # release_sites is reached through the EXIT trap
# Maintenance mode around a migrate or restore: hold_site puts a site in maintenance with its
# scheduler paused; release_sites_on_exit gives every held site its previous values back when
# the job ends, also on failure. Sourced (or inlined) after job-prelude.sh.
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
