"""Stand-ins for what the health checks talk to: curl (per port), and a bench whose Python has
the stand-in redis client (tests/stand_ins/redis).

Used by the health-check library's tests and the boot-check job's tests (preflight.sh), which
run the same checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from fake_commands import COMMON_CONFIG, make_bench

SITE_DB, SITE_DB_PASSWORD = "_abc", "site-db-password"

# curl as the checks call it: answers FAKE_CURL_STATUS, else FAKE_STATUS_<port of the URL>,
# else 200; status 000 fails to connect. Honours --write-out '%{http_code}' and --fail.
FAKE_CURL = """
write_out='' fail=no url=''
while (($#)); do
  case $1 in
  --write-out) write_out=$2; shift ;;
  --fail) fail=yes ;;
  http://*) url=$1 ;;
  esac
  shift
done
port=${url#http://*:}
port=${port%%/*}
status_var=FAKE_STATUS_$port
status=${FAKE_CURL_STATUS:-${!status_var:-200}}
if [[ $status == 000 ]]; then
  [[ -n $write_out ]] && printf '000'
  exit 7
fi
[[ -n $write_out ]] && printf '%s' "$status"
if [[ $fail == yes ]] && ((status >= 400)); then exit 22; fi
exit 0
"""


def fake_health_bench(root: Path, site: str) -> Path:
    """A bench with ``site`` (its database ``SITE_DB``, password ``SITE_DB_PASSWORD``), the queue
    Redis URL in common_site_config.json, and make_bench's env/bin/python, whose ``redis`` is the
    stand-in client (tests/stand_ins/redis) over ``root/redis.json`` (``redis_env``)."""
    bench = make_bench(root, {site: {"db_name": SITE_DB, "db_password": SITE_DB_PASSWORD}})
    (bench / "sites" / "common_site_config.json").write_text(
        json.dumps({**COMMON_CONFIG, "redis_queue": "redis://redis-queue:6379"})
    )
    (root / "redis.json").write_text(json.dumps({"rq:workers": []}))
    return bench


def redis_env(root: Path) -> dict[str, str]:
    """The stand-in Redis's switches for a bench of fake_health_bench: its keys, and the log of
    the connections made to it."""
    return {"STANDIN_REDIS": str(root / "redis.json"), "STANDIN_REDIS_LOG": str(root / "redis-log")}
