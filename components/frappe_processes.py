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
from components.swarm import tcp_probe

BENCH = "/home/frappe/frappe-bench"
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
#   public   - traefik-public: only what Traefik routes to.
NetworkRole = Literal["internal", "database", "public"]


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


@dataclass(frozen=True)
class AppProcess:
    service: str
    # Replaces the image's CMD only; None keeps it (the backend's start.sh).
    command: tuple[str, ...] | None
    networks: frozenset[NetworkRole]
    health_test: tuple[str, ...]
    image: Literal["app", "mailpit"] = "app"
    port: int | None = None
    env: Callable[[StackConfig], Mapping[str, str]] = _no_env
    # A singleton must never have two tasks, not even for the seconds a start-first update
    # overlaps old and new: two schedulers enqueue every scheduled job twice.
    singleton: bool = False
    stop_grace_period: str = "30s"
    backups_mount: bool = False

    @property
    def runs_frappe(self) -> bool:
        return self.image == "app"


_QUEUE_REACHABLE = tcp_probe("redis-queue", 6379)
_WORKER_NETWORKS: frozenset[NetworkRole] = frozenset({"internal", "database"})


def _worker(service: str, queues: str) -> AppProcess:
    # Workers finish the job in hand on SIGTERM; give a long job time before Swarm kills it.
    return AppProcess(
        service,
        ("bench", "worker", "--queue", queues),
        _WORKER_NETWORKS,
        _QUEUE_REACHABLE,
        stop_grace_period="300s",
    )


APP_PROCESSES: tuple[AppProcess, ...] = (
    AppProcess(
        "backend",
        None,  # the image's default: gunicorn via start.sh
        frozenset({"internal", "database"}),
        tcp_probe("127.0.0.1", 8000),
        port=8000,
        env=_backend_env,
    ),
    AppProcess(
        "frontend",
        ("nginx-entrypoint.sh",),
        frozenset({"internal", "public"}),
        tcp_probe("127.0.0.1", 8080),
        port=8080,
        env=_frontend_env,
    ),
    AppProcess(
        "websocket",
        ("node", f"{BENCH}/apps/frappe/socketio.js"),
        frozenset({"internal"}),
        tcp_probe("127.0.0.1", 9000),
        port=9000,
    ),
    _worker("queue-default", "default"),
    _worker("queue-short", "short,default"),
    _worker("queue-long", "long,default,short"),
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
        tcp_probe("mariadb", 3306),
        env=_backup_env,
        singleton=True,
        stop_grace_period="600s",
        backups_mount=True,
    ),
    AppProcess(
        "mailpit",
        None,
        frozenset({"internal"}),
        ("CMD", "/mailpit", "readyz"),
        image="mailpit",
        port=8025,
    ),
)
