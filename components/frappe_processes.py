"""The application services of one environment, as a table the app layer walks.

All Frappe processes run the one custom image and differ only by command, networks, health check
and whether more than one may run at once; ``mailpit`` and ``backup`` are the two optional rows.
Commands and ports are frappe_docker's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.config import RsyncOffsite, S3Offsite, StackConfig
from components.docker_configs import ConfigRole
from components.health_checks import health_test
from components.swarm import tcp_probe

BENCH = "/home/frappe/frappe-bench"
# The process every other Frappe process waits for in a rollout (components/app_layer.py).
BACKEND = "backend"
SITES_PATH = f"{BENCH}/sites"
LOGS_PATH = f"{BENCH}/logs"
BACKUPS_PATH = "/backups"
# Docker secret files of the backup service's off-site copy (S3 secret key or SSH key).
OFFSITE_SECRET_FILE = "/run/secrets/backup-offsite"
OFFSITE_KNOWN_HOSTS_FILE = "/run/secrets/backup-offsite-known-hosts"
BACKUP_SCRIPT = (Path(__file__).parent / "scripts" / "backup-loop.sh").read_text()

# Which of the environment's networks a service joins:
#   internal - brandclub-{env}-network: Redis and every app service;
#   database - brandclub-{env}-mariadb: only the processes that talk SQL;
#   realtime - brandclub-{env}-realtime: the websocket and the frontend, which answers there to
#              the site's name (the realtime server checks sessions at http://<site>:8080);
#   public   - traefik-public: only what Traefik routes to.
NetworkRole = Literal["internal", "database", "realtime", "public"]

# Frappe v15's job timeout per queue, in seconds (frappe/utils/background_jobs.py,
# get_queues_timeout). A worker told to stop finishes the job in hand first.
QUEUE_TIMEOUTS: dict[str, int] = {"short": 300, "default": 300, "long": 1500}
# Beyond its longest job, the time a stopping worker gets to finish and deregister; bench's own
# supervisor config waits the long queue's 1500 s plus this (stopwaitsecs = 1560).
WORKER_STOP_MARGIN = 60


def _frontend_env(config: StackConfig) -> dict[str, str]:
    frappe = config.frappe
    return {
        "BACKEND": "backend:8000",
        "SOCKETIO": "websocket:9000",
        "FRAPPE_SITE_NAME_HEADER": config.site_name,
        "UPSTREAM_REAL_IP_ADDRESS": frappe.real_ip_from,
        "UPSTREAM_REAL_IP_HEADER": "X-Forwarded-For",
        # Traefik is the only hop that appends to X-Forwarded-For; recursion would let a client
        # forge its own address.
        "UPSTREAM_REAL_IP_RECURSIVE": "off",
        "PROXY_READ_TIMEOUT": str(frappe.proxy_read_timeout),
        "CLIENT_MAX_BODY_SIZE": frappe.client_max_body_size,
    }


def _backend_env(config: StackConfig) -> dict[str, str]:
    frappe = config.frappe
    return {
        "GUNICORN_WORKERS": str(frappe.gunicorn_workers),
        "GUNICORN_THREADS": str(frappe.gunicorn_threads),
        "GUNICORN_TIMEOUT": str(frappe.gunicorn_timeout),
        # gunicorn sets wsgi.url_scheme from nginx's X-Forwarded-Proto only for peers listed
        # here; without it Frappe sees http, and never marks the sid cookie Secure. Frappe v15
        # pins gunicorn 23.0.0 (frappe/gunicorn@bb554053), which accepts only single addresses
        # or "*" (each entry goes through ipaddress.ip_address; a CIDR stops gunicorn at start)
        # and nginx's address changes with every frontend task. "*" is safe here: port 8000 is
        # published nowhere and only the environment's own overlay networks reach it, and nginx
        # sets X-Forwarded-Proto on every request it passes on.
        "FORWARDED_ALLOW_IPS": "*",
    }


def _backup_env(config: StackConfig) -> dict[str, str]:
    return {
        "BACKUP_TIME": config.backup.time,
        "BACKUP_RETENTION_DAYS": str(config.backup.retention_days),
        "BACKUP_ROOT": BACKUPS_PATH,
        "BENCH_DIR": BENCH,
        **_offsite_env(config.backup.offsite),
    }


def _offsite_env(offsite: S3Offsite | RsyncOffsite | None) -> dict[str, str]:
    """The off-site target's settings; its credentials arrive as secret files, never here."""
    if offsite is None:
        return {"OFFSITE_KIND": "none"}
    if isinstance(offsite, S3Offsite):
        return {
            "OFFSITE_KIND": "s3",
            "OFFSITE_S3_ENDPOINT": offsite.endpoint,
            "OFFSITE_S3_BUCKET": offsite.bucket,
            "OFFSITE_S3_PREFIX": offsite.prefix,
            "OFFSITE_S3_ACCESS_KEY_ID": offsite.access_key_id,
            "OFFSITE_S3_SECRET_KEY_FILE": OFFSITE_SECRET_FILE,
        }
    known_hosts = {"OFFSITE_SSH_KNOWN_HOSTS_FILE": OFFSITE_KNOWN_HOSTS_FILE}
    return {
        "OFFSITE_KIND": "rsync",
        "OFFSITE_RSYNC_TARGET": offsite.target,
        "OFFSITE_SSH_KEY_FILE": OFFSITE_SECRET_FILE,
        **(known_hosts if offsite.known_hosts else {}),
    }


def _no_env(config: StackConfig) -> dict[str, str]:
    return {}


def _fixed(test: tuple[str, ...]) -> Callable[[StackConfig], tuple[str, ...]]:
    return lambda config: test


@dataclass(frozen=True)
class AppProcess:
    service: str
    # Replaces the image's CMD only; None keeps it (the backend's start.sh).
    command: tuple[str, ...] | None
    networks: frozenset[NetworkRole]
    # The Docker health test, from the stack config (the backend's names the site).
    health: Callable[[StackConfig], tuple[str, ...]]
    image: Literal["app", "mailpit"] = "app"
    port: int | None = None
    env: Callable[[StackConfig], Mapping[str, str]] = _no_env
    # A singleton must never have two tasks, not even for the seconds a start-first update
    # overlaps old and new: two schedulers enqueue every scheduled job twice.
    singleton: bool = False
    stop_grace_period: str = "30s"
    backups_mount: bool = False
    # Docker configs mounted read-only (components/docker_configs.py).
    configs: tuple[ConfigRole, ...] = ()

    @property
    def runs_frappe(self) -> bool:
        return self.image == "app"


_QUEUE_REACHABLE = _fixed(tcp_probe("redis-queue", 6379))
_WORKER_NETWORKS: frozenset[NetworkRole] = frozenset({"internal", "database"})


def worker_stop_grace_seconds(queues: tuple[str, ...]) -> int:
    """The longest job timeout among ``queues`` plus the stop margin."""
    return max(QUEUE_TIMEOUTS[queue] for queue in queues) + WORKER_STOP_MARGIN


def _worker(service: str, *queues: str) -> AppProcess:
    # A worker finishes the job in hand on SIGTERM; Swarm kills it when the grace period ends,
    # so the period must outlast the longest job its queues may run.
    names = ",".join(queues)
    return AppProcess(
        service,
        ("bench", "worker", "--queue", names),
        _WORKER_NETWORKS,
        _fixed(health_test("worker_registered", names)),
        stop_grace_period=f"{worker_stop_grace_seconds(queues)}s",
        configs=("health-checks",),
    )


APP_PROCESSES: tuple[AppProcess, ...] = (
    AppProcess(
        "backend",
        None,  # the image's default: gunicorn via start.sh
        frozenset({"internal", "database"}),
        lambda config: health_test("backend_healthy", config.site_name),
        port=8000,
        env=_backend_env,
        configs=("health-checks",),
    ),
    AppProcess(
        "frontend",
        # The image's entrypoint renders our template (the config below) and starts nginx.
        ("nginx-entrypoint.sh",),
        frozenset({"internal", "realtime", "public"}),
        _fixed(health_test("frontend_healthy")),
        port=8080,
        env=_frontend_env,
        configs=("nginx-template", "health-checks"),
    ),
    AppProcess(
        "websocket",
        ("node", f"{BENCH}/apps/frappe/socketio.js"),
        frozenset({"internal", "realtime"}),
        _fixed(health_test("websocket_healthy")),
        port=9000,
        configs=("health-checks",),
    ),
    _worker("queue-default", "default"),
    _worker("queue-short", "short", "default"),
    _worker("queue-long", "long", "default", "short"),
    AppProcess(
        "scheduler",
        ("bench", "schedule"),
        _WORKER_NETWORKS,
        _QUEUE_REACHABLE,
        singleton=True,
    ),
    AppProcess(
        "backup",
        ("bash", "-c", BACKUP_SCRIPT),
        _WORKER_NETWORKS,
        # The loop sleeps most of the day; healthy means it can still reach the database.
        _fixed(tcp_probe("mariadb", 3306)),
        env=_backup_env,
        singleton=True,
        stop_grace_period="600s",
        backups_mount=True,
    ),
    AppProcess(
        "mailpit",
        None,
        frozenset({"internal"}),
        _fixed(("CMD", "/mailpit", "readyz")),
        image="mailpit",
        port=8025,
    ),
)
