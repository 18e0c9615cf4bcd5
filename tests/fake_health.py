"""Stand-ins for what the health checks talk to: curl (per port) and the bench's redis client.

Used by the health-check library's tests and the preflight job's tests, which run the same
checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from fake_commands import make_bench

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

# The redis client as worker_registered uses it, backed by a JSON file: {"rq:workers": [keys],
# "<key>": {"hostname": "...", "queues": "..."}} (RQ's worker hash).
FAKE_REDIS = """
import json
import os


class Redis:
    @classmethod
    def from_url(cls, url, **options):
        with open(os.environ["FAKE_REDIS_LOG"], "a") as log:
            log.write(json.dumps({"url": url, **options}) + "\\n")
        redis = cls()
        redis.url = url
        return redis

    def ping(self):
        # FAKE_REDIS_DOWN: the URL of a Redis that refuses connections.
        if os.environ.get("FAKE_REDIS_DOWN") == self.url:
            raise ConnectionError("Connection refused")
        return True

    def _data(self):
        with open(os.environ["FAKE_REDIS"]) as data:
            return json.load(data)

    def smembers(self, key):
        return set(self._data().get(key, []))

    def hmget(self, key, fields):
        worker = self._data().get(key, {})
        return [worker.get(field) for field in fields]
"""


def fake_health_bench(root: Path, site: str) -> Path:
    """A bench with ``site``, the queue Redis URL in common_site_config.json, make_bench's
    env/bin/python and the stand-in redis client in ``root/fake-modules`` (PYTHONPATH)."""
    bench = make_bench(root, {site: {"db_name": "_abc"}})
    (bench / "sites" / "common_site_config.json").write_text(
        json.dumps({"redis_queue": "redis://redis-queue:6379"})
    )
    modules = root / "fake-modules" / "redis"
    modules.mkdir(parents=True)
    (modules / "__init__.py").write_text(FAKE_REDIS)
    return bench
