# shellcheck shell=bash
# shellcheck disable=SC2317,SC2329  # release_sites is reached through the EXIT trap
# Maintenance mode around a migrate or restore. Sourced (or inlined) after job-prelude.sh and
# config-files.sh: the running backends read each site's config on every request, so the modes
# are written with config_update (whole, renamed into place), not with `bench set-config`.
#
# hold_site puts a site in maintenance with its scheduler paused, after recording the values it
# had in sites/.brandclub/held/<site>.json, unless that record exists already: then a run that
# was killed while holding the site wrote it, and it still holds the operator's own choice
# (the site's config now says 1/1 only because of that run). The record is deleted only when the
# values are back.
#
# When the job ends (EXIT trap):
#   success, or a failure before the step that changes the database
#       every site gets its recorded values back (a site whose record an earlier, unfinished run
#       left behind stays held on failure: that run may have changed the database);
#   a failure from sites_stay_held_on_failure on (migrate, restore)
#       every held site stays in maintenance with its scheduler paused, since the database may
#       be partly migrated or restored and the old release must not serve it; the job says so
#       loudly and fails. The next successful run gives the recorded values back.
HELD_RECORDS=sites/.brandclub/held
held_sites=()
# Per held site: 1 when this run wrote its record, 0 when an earlier run had.
held_own=()
stay_held_on_failure=0

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

# Prints "<maintenance_mode> <pause_scheduler> <held by> <since>" from site $1's record.
held_record() {
  python3 - "$HELD_RECORDS/$1.json" <<'PY'
import json
import sys

with open(sys.argv[1]) as record_file:
    record = json.load(record_file)
print(record["maintenance_mode"], record["pause_scheduler"], record["heldBy"], record["since"])
PY
}

# Writes site $1's record: modes "$2" ("<maintenance_mode> <pause_scheduler>"), beside and
# renamed, so a killed job never leaves half a record.
write_held_record() {
  mkdir -p "$HELD_RECORDS"
  python3 - "$HELD_RECORDS/$1.json" "$2" "$JOB" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" <<'PY'
import json
import sys
from pathlib import Path

path, modes, job, since = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3], sys.argv[4]
record = {
    "maintenance_mode": int(modes[0]),
    "pause_scheduler": int(modes[1]),
    "heldBy": job,
    "since": since,
}
partial = path.with_name(f".{path.name}.partial")
partial.write_text(json.dumps(record, indent=1) + "\n")
partial.replace(path)
PY
}

hold_site() {
  local site=$1 maintenance scheduler by since
  if [[ -f $HELD_RECORDS/$site.json ]]; then
    read -r maintenance scheduler by since < <(held_record "$site")
    held_own+=(0)
    log "site $site: maintenance_mode 1, pause_scheduler 1 (were: $maintenance $scheduler," \
      "as recorded by a $by run of $since that did not finish)"
  else
    read -r maintenance scheduler < <(site_modes "$site")
    write_held_record "$site" "$maintenance $scheduler"
    held_own+=(1)
    log "site $site: maintenance_mode 1, pause_scheduler 1 (were: $maintenance $scheduler)"
  fi
  held_sites+=("$site")
  set_site_modes "$site" 1 1 >/dev/null
}

# set_site_modes SITE MAINTENANCE_MODE PAUSE_SCHEDULER: both in one write of the site's config.
set_site_modes() {
  config_update "sites/$1/site_config.json" json maintenance_mode "$2" json pause_scheduler "$3"
}

# Called right before the step that changes the database (bench migrate, bench restore): from
# now on a failure keeps every held site in maintenance.
sites_stay_held_on_failure() { stay_held_on_failure=1; }

# Gives site $1 its recorded values back and deletes the record; non-zero when it cannot.
release_site() {
  local site=$1 maintenance scheduler by since
  read -r maintenance scheduler by since < <(held_record "$site") || return 1
  log "site $site: maintenance_mode $maintenance, pause_scheduler $scheduler (restored)"
  set_site_modes "$site" "$maintenance" "$scheduler" >/dev/null &&
    rm -f -- "$HELD_RECORDS/$site.json"
}

# EXIT trap: see the top of this file.
release_sites() {
  local status=$? i site kept=()
  local job_status=$status
  set +e
  for i in "${!held_sites[@]}"; do
    site=${held_sites[i]}
    if ((job_status != 0 && (stay_held_on_failure || !held_own[i]))); then
      kept+=("$site")
    elif ! release_site "$site"; then
      log "ERROR: could not restore maintenance_mode/pause_scheduler of $site; set them by hand" \
        "to the values in $HELD_RECORDS/$site.json, then delete that file" >&2
      ((status != 0)) || status=1
    fi
  done
  if ((${#kept[@]})); then
    log "ERROR: $JOB failed; site(s) ${kept[*]} stay in maintenance mode with the scheduler" \
      "paused, because the database may be partly changed and the running release must not" \
      "serve it. Their previous values are kept in $HELD_RECORDS/. Fix the cause and deploy" \
      "again: the next successful $JOB gives them back (docs/operations.md: Runbook: a failed migrate)" >&2
  fi
  exit "$status"
}

release_sites_on_exit() {
  trap release_sites EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
