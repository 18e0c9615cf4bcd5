# shellcheck shell=bash
# The health checks of the Frappe processes, in one place for two users:
#   - every health-checked app service mounts this file (a Docker config) and its Docker health
#     check runs `bash <this file> <check> <args>` (components/frappe/health_checks.py builds it);
#   - the boot-check job (preflight.sh) sources this file and runs the same checks against the new image's
#     processes before any service changes.
# Each check prints why it failed and returns non-zero; it needs only what the Frappe image has
# (bash, curl, python3, the bench's Python).
#
# Ports are the processes' own: gunicorn 8000 (start.sh), nginx 8080 (the template), socket.io
# 9000 (socketio_port, written by the configurator).

health_bench_dir() { printf '%s' "${BENCH_DIR:-/home/frappe/frappe-bench}"; }

# backend_healthy <site>: Frappe answers /api/method/ping for the site (200). A 503 is healthy
# only while the site is in maintenance mode: a migration in progress must not get the running
# backends killed and rolled back.
backend_healthy() {
  local site=$1 status
  status=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 \
    --header "Host: $site" http://127.0.0.1:8000/api/method/ping) || {
    echo "backend: no answer on 127.0.0.1:8000 (curl exit $?)"
    return 1
  }
  case $status in
  200) return 0 ;;
  503)
    if site_in_maintenance "$site"; then
      return 0
    fi
    echo "backend: /api/method/ping answered 503 and $site is not in maintenance mode"
    return 1
    ;;
  esac
  echo "backend: /api/method/ping answered $status"
  return 1
}

# site_in_maintenance <site>: maintenance_mode is on in the site's config, as Frappe reads it
# (the site's own value wins over the bench-wide one).
site_in_maintenance() {
  python3 - "$(health_bench_dir)/sites" "$1" <<'PY'
import json
import sys
from pathlib import Path

sites, site = Path(sys.argv[1]), sys.argv[2]
merged = {}
for path in (sites / "common_site_config.json", sites / site / "site_config.json"):
    try:
        merged.update(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
sys.exit(0 if str(merged.get("maintenance_mode", 0)) == "1" else 1)
PY
}

# frontend_healthy: nginx answers its own health location (no backend involved), so a frontend
# is judged on nginx alone; whether Frappe works is the backend's check.
frontend_healthy() {
  curl --silent --fail --output /dev/null --max-time 5 \
    http://127.0.0.1:8080/.brandclub/nginx-health || {
    echo "frontend: nginx health location did not answer 200 (curl exit $?)"
    return 1
  }
}

# websocket_healthy: the socket.io server completes an engine.io handshake (long-polling, the
# first request every browser makes). Namespaces and their authentication come after it.
websocket_healthy() {
  curl --silent --fail --output /dev/null --max-time 5 \
    'http://127.0.0.1:9000/socket.io/?EIO=4&transport=polling' || {
    echo "websocket: no engine.io handshake on 127.0.0.1:9000 (curl exit $?)"
    return 1
  }
}

# worker_registered <queue,queue,...>: a worker of this container is registered in the queue
# Redis for at least these queues. RQ keeps the set `rq:workers` of keys `rq:worker:<name>`, each
# a hash whose field `hostname` is the worker's host (socket.gethostname(), the container) and
# whose field `queues` lists its queue names joined by commas (rq/worker.py, register_birth).
# The name says nothing: Frappe v15's start_worker (frappe/utils/background_jobs.py) creates
# `Worker(queues, connection=...)` without a name, and RQ then names it with a bare
# uuid4().hex. Frappe prefixes each queue name with its bench id (`<bench id>:long`). The Redis
# URL is the bench's `redis_queue`.
worker_registered() {
  "$(health_bench_dir)/env/bin/python" - "$(health_bench_dir)/sites" "$1" <<'PY'
import json
import socket
import sys
from pathlib import Path

import redis

sites, wanted = Path(sys.argv[1]), set(sys.argv[2].split(","))
url = json.loads((sites / "common_site_config.json").read_text())["redis_queue"]
connection = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
host = socket.gethostname()
for key in connection.smembers("rq:workers"):
    hostname, queues = connection.hmget(key, ["hostname", "queues"])
    if hostname != host or not queues:
        continue
    if wanted <= {name.rsplit(":", 1)[-1] for name in queues.split(",")}:
        sys.exit(0)
print(f"worker: no worker of {host} registered for {sorted(wanted)}")
sys.exit(1)
PY
}

# Run as a file (a service's health check), not sourced: run the named check. Only the checks
# above may be named, so the health test cannot be turned into another command.
if [[ ${BASH_SOURCE[0]:-} == "$0" ]]; then
  case ${1:-} in
  backend_healthy | frontend_healthy | websocket_healthy | worker_registered) "$@" ;;
  *)
    echo "health-checks: unknown check '${1:-}'" >&2
    exit 2
    ;;
  esac
fi
