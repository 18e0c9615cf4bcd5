#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Migrate job (after every image change, and whenever the configured apps change): with every
# site in maintenance mode and its scheduler paused (lib/site-modes.sh), runs
# `bench --site all migrate`, then installs on SITE_NAME every app of INSTALL_APPS that
# `bench --site SITE_NAME list-apps` does not show (apps added to frappe.apps after the site was
# created), in the configured order. On success every site gets its previous modes back; when
# the migration or an installation fails, the sites stay in maintenance and the job fails.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: SITE_NAME and INSTALL_APPS (space-separated; both optional: without them no app
# is installed).
JOB=migrate
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe_jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/site-modes.sh
source "$SCRIPT_DIR/lib/site-modes.sh"

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

# Installs the configured apps site $1 lacks; list-apps prints one app per line, name first.
install_missing_apps() {
  local site=$1 listed app
  local -a wanted installed
  read -ra wanted <<<"${INSTALL_APPS:-}"
  listed=$(bench --site "$site" list-apps) || die "bench --site $site list-apps failed"
  mapfile -t installed < <(awk 'NF {print $1}' <<<"$listed")
  for app in ${wanted[@]+"${wanted[@]}"}; do
    if [[ " ${installed[*]} " != *" $app "* ]]; then
      log "installing $app on $site (configured, not installed yet)"
      bench --site "$site" install-app "$app" || die "bench --site $site install-app $app failed"
    fi
  done
}

log "running bench --site all migrate"
sites_stay_held_on_failure
status=0
bench --site all migrate || status=$?
if ((status != 0)); then
  log "ERROR: migration failed with status $status" >&2
  exit "$status"
fi
log "migration finished"
if [[ -n ${SITE_NAME:-} && -n ${INSTALL_APPS:-} && -f sites/$SITE_NAME/site_config.json ]]; then
  install_missing_apps "$SITE_NAME"
fi
