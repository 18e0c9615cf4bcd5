#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Migrate job (after every image change, and whenever the configured apps change): with every
# finished site in maintenance mode and its scheduler paused (lib/site-modes.sh), runs
# `bench --site <site> migrate` for each, one by one, then installs on SITE_NAME every app of
# INSTALL_APPS that `bench --site SITE_NAME list-apps` does not show (apps added to frappe.apps
# after the site was created), in the configured order. On success every site gets its previous
# modes back; when a migration or an installation fails, the job stops there, the sites stay in
# maintenance and the job fails.
#
# A site whose create-site marker says "creating" (lib/site-marker.sh) is half-made: Frappe
# wrote its site_config.json but perhaps not its database user or database. It is skipped, not
# held, and named loudly in the log. Frappe's `--site all` takes every folder holding a
# site_config.json, and its migrate stops at the first site that fails, so one half-made site
# would fail the migration of all of them and keep the healthy ones in maintenance (503); hence
# one `bench --site <site> migrate` per finished site. A skip does not fail the job: create-site
# owns that site (its next run cleans it up and makes it again, docs/operations.md: Runbook: a
# half-made site), and failing here would block every rollout of the healthy sites until then.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: SITE_NAME and INSTALL_APPS (space-separated; both optional: without them no app
# is installed).
JOB=migrate
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe/jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/site-marker.sh
source "$SCRIPT_DIR/lib/site-marker.sh"
# shellcheck source=lib/config-files.sh
source "$SCRIPT_DIR/lib/config-files.sh"
# shellcheck source=lib/site-modes.sh
source "$SCRIPT_DIR/lib/site-modes.sh"

sites=()
skipped=0
for config in sites/*/site_config.json; do
  [[ -e $config ]] || continue
  site=${config#sites/}
  site=${site%/site_config.json}
  state=$(marker_get "$site" state) || die "cannot read $SITE_MARKERS/$site.json (see above)"
  if [[ $state == creating ]]; then
    since=$(marker_get "$site" startedAt) || since=
    log "WARNING: skipping site $site: it is half-made (create-site started it at" \
      "${since:-an unknown time} and did not finish; marker $SITE_MARKERS/$site.json says" \
      "creating). It is neither migrated nor put in maintenance; the next create-site run" \
      "cleans it up and creates it again (docs/operations.md: Runbook: a half-made site)" >&2
    skipped=$((skipped + 1))
    continue
  fi
  sites+=("$site")
done
if ((${#sites[@]} == 0)); then
  if ((skipped)); then
    log "no finished sites on this bench, nothing to migrate"
  else
    log "no sites on this bench, nothing to migrate"
  fi
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

sites_stay_held_on_failure
for site in "${sites[@]}"; do
  log "running bench --site $site migrate"
  status=0
  bench --site "$site" migrate || status=$?
  if ((status != 0)); then
    # Stop here: a failed migrate fails the deploy, so this release is never served, and
    # migrating more databases with it would only change more schemas it will not run. The
    # sites not migrated yet stay held with the others; the next run migrates them all.
    log "ERROR: migration failed with status $status on site $site" >&2
    exit "$status"
  fi
done
if ((skipped)); then
  log "migration finished for ${#sites[@]} site(s); $skipped half-made site(s) skipped (see above)"
else
  log "migration finished"
fi
if [[ -n ${SITE_NAME:-} && -n ${INSTALL_APPS:-} ]]; then
  for site in "${sites[@]}"; do
    if [[ $site == "$SITE_NAME" ]]; then
      install_missing_apps "$SITE_NAME"
    fi
  done
fi
