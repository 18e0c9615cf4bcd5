#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Migrate job (after every image change): runs `bench --site all migrate` with every site in
# maintenance mode and its scheduler paused, then gives each site its previous values back,
# also when the migration fails. Exits with the migration's status.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
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

log "running bench --site all migrate"
status=0
bench --site all migrate || status=$?
if ((status == 0)); then
  log "migration finished"
else
  log "ERROR: migration failed with status $status" >&2
fi
exit "$status"
