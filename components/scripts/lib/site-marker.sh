# shellcheck shell=bash
# The create-site job's record of each site it makes: sites/.brandclub/sites/<site>.json, with
# "state": "creating" before `bench new-site` starts and "created" once it succeeded. Frappe
# writes sites/<site>/site_config.json before it creates the site's database, so that file says
# nothing about a finished site; this marker does. A dot directory: Frappe and the jobs' globs
# over sites/*/site_config.json never take it for a site. Sourced (or inlined) after
# job-prelude.sh.
SITE_MARKERS=sites/.brandclub/sites

# Prints field $2 of site $1's marker, empty when there is no marker or no such field.
marker_get() {
  python3 - "$SITE_MARKERS/$1.json" "$2" <<'PY'
import json
import sys
from pathlib import Path

path = Path(sys.argv[1])
value = json.loads(path.read_text()).get(sys.argv[2]) if path.is_file() else None
if value is not None:
    print(value)
PY
}

# marker_set SITE KEY VALUE [KEY VALUE ...]: updates site $1's marker (created if missing); an
# empty VALUE removes the key. Written beside and renamed, so a killed job never leaves half a
# marker behind.
marker_set() {
  mkdir -p "$SITE_MARKERS"
  python3 - "$SITE_MARKERS/$1.json" "$1" "${@:2}" <<'PY'
import json
import sys
from pathlib import Path

path, site, pairs = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
marker = json.loads(path.read_text()) if path.is_file() else {"site": site}
for key, value in zip(pairs[::2], pairs[1::2], strict=True):
    if value:
        marker[key] = value
    else:
        marker.pop(key, None)
partial = path.with_name(f".{path.name}.partial")
partial.write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n")
partial.replace(path)
PY
}

marker_remove() { rm -f -- "$SITE_MARKERS/$1.json"; }

utc_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
