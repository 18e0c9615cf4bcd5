"""How each app service of the catalogue runs: command, health check, environment, mounts.

All Frappe processes run the one custom image and differ only by command, networks, health check
and whether more than one may run at once (components/platform/catalogue.py says which services
exist and which networks they join). A worker row of the catalogue needs nothing here: every
worker runs ``bench worker`` for its queues. Commands and ports are frappe_docker's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.config.model import StackConfig
from components.config.nodes import Placement
from components.config.sections import (
    AppServices,
    BackupSettings,
    FrappeSettings,
    HealthcheckSettings,
    RolloutSettings,
    RsyncOffsite,
    S3Offsite,
)
from components.frappe.health_checks import health_test
from components.frappe.jobs import DB, REDIS_CACHE_URL, REDIS_QUEUE_URL, SECRET_FILES, job_script
from components.platform.catalogue import (
    APP_SERVICES,
    BACKEND,
    BACKUP,
    FRONTEND,
    MAILPIT,
    MARIADB,
    REDIS_QUEUE,
    RESTORE_DRILL,
    SCHEDULER,
    WEBSOCKET,
    Service,
)
from components.platform.drain import drain_command
from components.swarm.configs import ConfigRole
from components.swarm.services import tcp_probe

BENCH = "/home/frappe/frappe-bench"
SITES_PATH = f"{BENCH}/sites"
LOGS_PATH = f"{BENCH}/logs"
BACKUPS_PATH = "/backups"
# Docker secret files of the backup service's off-site copy (S3 secret key or SSH key).
OFFSITE_SECRET_FILE = "/run/secrets/backup-offsite"
OFFSITE_KNOWN_HOSTS_FILE = "/run/secrets/backup-offsite-known-hosts"
# The public age recipients every off-site copy is encrypted to before it leaves the node.
OFFSITE_RECIPIENTS_FILE = "/run/secrets/backup-offsite-recipients"
# With its library inlined, as the service has no checkout to source it from.
BACKUP_SCRIPT = job_script("backup-loop.sh")
# How long Swarm waits for the backup loop to stop before it kills it. A sleeping loop exits at
# once on SIGTERM; one in the middle of its daily run first finishes it (every site with its
# files, the off-site copy and the pruning: scripts/backup-loop.sh), and a backup cut short is
# lost. So this covers a whole run of a large site, and costs nothing the rest of the day.
BACKUP_STOP_GRACE_PERIOD = "3600s"
# The restore drill (scripts/restore-drill.sh) with its libraries and its Python half inlined:
# the service has no checkout to read them from.
_DRILL_PYTHON_LINE = 'RESTORE_DRILL_PY=$(<"$SCRIPT_DIR/restore_drill.py")'
_DRILL_PYTHON_END = "RESTORE_DRILL_PY_END"


def restore_drill_script() -> str:
    text = job_script("restore-drill.sh")
    python = (Path(__file__).parents[1] / "scripts" / "restore_drill.py").read_text()
    assert _DRILL_PYTHON_LINE in text and _DRILL_PYTHON_END not in python
    inlined = f"RESTORE_DRILL_PY=$(cat <<'{_DRILL_PYTHON_END}'\n{python}{_DRILL_PYTHON_END}\n)"
    return text.replace(_DRILL_PYTHON_LINE, inlined)


RESTORE_DRILL_SCRIPT = restore_drill_script()
# The drill's results in its container (a bind of backup.drill_state_path: they outlive it).
DRILL_STATE_PATH = "/restore-drill"
# How long Swarm waits for a stopping drill: it finishes the step in hand (a restore of a large
# site's dump, at worst) and drops its throwaway site and database before it exits; sleeping,
# it exits at once.
RESTORE_DRILL_STOP_GRACE_PERIOD = "3600s"
FRONTEND_SCRIPT = (Path(__file__).parents[1] / "scripts" / "frontend.sh").read_text()
# The backend's command where the program must name it (the drain wraps it): the image's
# start.sh (gunicorn). Otherwise the backend keeps the image's default command.
BACKEND_START_COMMAND = ("start.sh",)


# From this many replicas on, a service spreads its tasks over nodes (placement.spread) and
# runs at most placement.maxReplicasPerNode on one.
SPREAD_MIN_REPLICAS = 2


@dataclass(frozen=True)
class ServicePlacement:
    """A service's placement constraints, its spread preference and its most tasks per node."""

    constraints: tuple[str, ...]
    spread: str | None = None
    max_replicas: int | None = None


@dataclass(frozen=True)
class AppSettings:
    """The application settings the app services are built from: no data-layer setting and no
    secret."""

    environment: str
    site_name: str
    services: AppServices
    frappe: FrappeSettings
    backup: BackupSettings
    healthcheck: HealthcheckSettings
    rollout: RolloutSettings
    placement: Placement
    endpoint_mode: str

    @classmethod
    def from_config(cls, config: StackConfig) -> AppSettings:
        return cls(
            environment=config.environment,
            site_name=config.site_name,
            services=config.services,
            frappe=config.frappe,
            backup=config.backup,
            healthcheck=config.healthcheck,
            rollout=config.rollout,
            placement=config.placement,
            endpoint_mode=config.endpoint_mode,
        )


@dataclass(frozen=True)
class OffsiteFiles:
    """The backup service's off-site credentials, the age recipients its copies are encrypted
    to (and pinned SSH host keys), by file path."""

    files: dict[str, str]

    @classmethod
    def from_config(cls, config: StackConfig) -> OffsiteFiles | None:
        """None where no backup service copies off site."""
        offsite = config.backup.offsite
        if not config.copies_offsite or offsite is None:
            return None
        # Both required by the config model where it copies off site.
        assert config.backup_offsite_secret is not None
        assert config.backup_offsite_recipients is not None
        files = {
            OFFSITE_SECRET_FILE: config.backup_offsite_secret.get_secret_value(),
            OFFSITE_RECIPIENTS_FILE: config.backup_offsite_recipients.get_secret_value(),
        }
        # Host keys are not secret, but a secret is the one way to hand a service a file.
        if isinstance(offsite, RsyncOffsite) and offsite.known_hosts:
            files[OFFSITE_KNOWN_HOSTS_FILE] = offsite.known_hosts
        return cls(files)


def _frontend_env(settings: AppSettings) -> dict[str, str]:
    frappe = settings.frappe
    return {
        "BACKEND": BACKEND.address,
        "SOCKETIO": WEBSOCKET.address,
        "FRAPPE_SITE_NAME_HEADER": settings.site_name,
        "UPSTREAM_REAL_IP_ADDRESS": frappe.real_ip_from,
        "UPSTREAM_REAL_IP_HEADER": "X-Forwarded-For",
        # Traefik is the only hop that appends to X-Forwarded-For; recursion would let a client
        # forge its own address.
        "UPSTREAM_REAL_IP_RECURSIVE": "off",
        "PROXY_READ_TIMEOUT": str(frappe.proxy_read_timeout),
        "CLIENT_MAX_BODY_SIZE": frappe.client_max_body_size,
    }


def _backend_env(settings: AppSettings) -> dict[str, str]:
    frappe = settings.frappe
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


def _backup_env(settings: AppSettings) -> dict[str, str]:
    return {
        "BACKUP_TIME": settings.backup.time,
        "BACKUP_RETENTION_DAYS": str(settings.backup.retention_days),
        "BACKUP_ROOT": BACKUPS_PATH,
        "BENCH_DIR": BENCH,
        **_offsite_env(settings.backup.offsite),
    }


def _drill_env(settings: AppSettings) -> dict[str, str]:
    drill = settings.backup.drill
    return {
        **DB,
        "REDIS_CACHE": REDIS_CACHE_URL,
        "REDIS_QUEUE": REDIS_QUEUE_URL,
        "BENCH_DIR": BENCH,
        "BACKUP_ROOT": BACKUPS_PATH,
        "DRILL_STATE_DIR": DRILL_STATE_PATH,
        "DRILL_SITES": settings.site_name,
        "DRILL_TIME": drill.time,
        "DRILL_INTERVAL_DAYS": str(drill.interval_days),
        "DRILL_DOCTYPES": ",".join(drill.doctypes),
        "DRILL_METRICS_PORT": str(drill.metrics_port),
        "DB_ROOT_PASSWORD_FILE": SECRET_FILES["db-root-password"],
    }


def _drill_health(settings: AppSettings) -> tuple[str, ...]:
    # Only that the metrics server answers, never the drill's outcome: Swarm replaces an
    # unhealthy task, which would kill a drill halfway (its leftovers are the next run's to
    # drop, but the drill would never finish). The outcome is the metrics' to tell.
    url = f"http://127.0.0.1:{settings.backup.drill.metrics_port}/metrics"
    return ("CMD", "curl", "--fail", "--silent", "--output", "/dev/null", "--max-time", "5", url)


def _offsite_env(offsite: S3Offsite | RsyncOffsite | None) -> dict[str, str]:
    """The off-site target's settings; its credentials and the recipients arrive as secret
    files, never here."""
    if offsite is None:
        return {"OFFSITE_KIND": "none"}
    sealed = {"OFFSITE_AGE_RECIPIENTS_FILE": OFFSITE_RECIPIENTS_FILE}
    if isinstance(offsite, S3Offsite):
        return {
            **sealed,
            "OFFSITE_KIND": "s3",
            "OFFSITE_S3_ENDPOINT": offsite.endpoint,
            "OFFSITE_S3_BUCKET": offsite.bucket,
            "OFFSITE_S3_PREFIX": offsite.prefix,
            "OFFSITE_S3_ACCESS_KEY_ID": offsite.access_key_id,
            "OFFSITE_S3_SECRET_KEY_FILE": OFFSITE_SECRET_FILE,
        }
    known_hosts = {"OFFSITE_SSH_KNOWN_HOSTS_FILE": OFFSITE_KNOWN_HOSTS_FILE}
    return {
        **sealed,
        "OFFSITE_KIND": "rsync",
        "OFFSITE_RSYNC_TARGET": offsite.target,
        "OFFSITE_SSH_KEY_FILE": OFFSITE_SECRET_FILE,
        **(known_hosts if offsite.known_hosts else {}),
    }


def _no_env(settings: AppSettings) -> dict[str, str]:
    return {}


def _fixed(test: tuple[str, ...]) -> Callable[[AppSettings], tuple[str, ...]]:
    return lambda settings: test


@dataclass(frozen=True)
class AppProcess:
    row: Service
    # Replaces the image's CMD only; None keeps it (the backend's start.sh).
    command: tuple[str, ...] | None
    # The Docker health test (the backend's names the site).
    health: Callable[[AppSettings], tuple[str, ...]]
    image: Literal["app", "mailpit"] = "app"
    env: Callable[[AppSettings], Mapping[str, str]] = _no_env
    stop_grace_period: str = "30s"
    backups_mount: bool = False
    # The restore drill: the backups read-only, its state folder, the root password; no sites
    # or logs volume (its throwaway sites stay in its own container).
    drill: bool = False
    # Docker configs mounted read-only (components/swarm/configs.py).
    configs: tuple[ConfigRole, ...] = ()
    # Traefik or nginx routes requests to it through a cache of its task addresses, so a
    # stopping task drains first (components/platform/drain.py).
    routed: bool = False
    # Run under Docker's init (components/swarm/services.py): its process installs no SIGTERM
    # handler, so as its container's PID 1 it would ignore Swarm's stop until the grace period
    # ran out.
    init: bool = False

    @property
    def service(self) -> str:
        return self.row.name

    @property
    def runs_frappe(self) -> bool:
        return self.image == "app"

    @property
    def mounts_sites(self) -> bool:
        """The sites and logs volumes: every Frappe process but the drill."""
        return self.runs_frappe and not self.drill

    @property
    def on_data_node(self) -> bool:
        """Placed with the data node's constraints: it reads or writes the backups there."""
        return self.backups_mount or self.drill

    def drains(self, settings: AppSettings) -> bool:
        return self.routed and settings.rollout.drain_seconds > 0

    def service_command(self, settings: AppSettings) -> tuple[str, ...] | None:
        """The service's CMD: its own command, run under the drain where it has one."""
        if not self.drains(settings):
            return self.command
        own = self.command if self.command is not None else BACKEND_START_COMMAND
        return drain_command(settings.rollout.drain_seconds, own)

    def config_roles(self, settings: AppSettings) -> tuple[ConfigRole, ...]:
        return (*self.configs, "drain") if self.drains(settings) else self.configs

    def placement(self, settings: AppSettings, replicas: int) -> ServicePlacement:
        """Where its ``replicas`` tasks may run: the data node's constraints where it writes
        backups (they go next to the database volume), the app's elsewhere; two or more spread
        over nodes, so one node's loss never takes them all."""
        placement = settings.placement
        constraints = placement.data_constraints if self.on_data_node else placement.app
        if replicas < SPREAD_MIN_REPLICAS:
            return ServicePlacement(tuple(constraints))
        return ServicePlacement(
            tuple(constraints), placement.spread, placement.max_replicas_per_node
        )

    def service_stop_grace_period(self, settings: AppSettings) -> str:
        """Its own grace period, plus the drain, during which Swarm must not kill it."""
        if not self.drains(settings):
            return self.stop_grace_period
        own = int(self.stop_grace_period.removesuffix("s"))
        return f"{own + settings.rollout.drain_seconds}s"


def _worker(row: Service) -> AppProcess:
    names = ",".join(row.queues)
    return AppProcess(
        row,
        ("bench", "worker", "--queue", names),
        _fixed(health_test("worker_registered", names)),
        stop_grace_period=f"{row.stop_grace_seconds}s",
        configs=("health-checks",),
    )


# How the catalogue's app services that are not workers run, by name.
_PROCESSES: dict[str, Callable[[Service], AppProcess]] = {
    BACKEND.name: lambda row: AppProcess(
        row,
        None,  # the image's default: gunicorn via start.sh
        lambda settings: health_test("backend_healthy", settings.site_name),
        env=_backend_env,
        configs=("health-checks",),
        routed=True,
    ),
    FRONTEND.name: lambda row: AppProcess(
        row,
        # Keeps the websocket upstream's task list current (scripts/frontend.sh says why), then
        # runs the image's entrypoint, which renders our template (the config below) and
        # starts nginx.
        ("bash", "-c", FRONTEND_SCRIPT),
        _fixed(health_test("frontend_healthy")),
        env=_frontend_env,
        configs=("nginx-template", "health-checks"),
        routed=True,
    ),
    WEBSOCKET.name: lambda row: AppProcess(
        row,
        ("node", f"{BENCH}/apps/frappe/socketio.js"),
        _fixed(health_test("websocket_healthy")),
        configs=("health-checks",),
        routed=True,
    ),
    SCHEDULER.name: lambda row: AppProcess(
        row,
        ("bench", "schedule"),
        _fixed(tcp_probe(REDIS_QUEUE.name, REDIS_QUEUE.port)),
        # Frappe's start_scheduler sets no signal handler (frappe/utils/scheduler.py) and bench
        # execs it, so it would be PID 1: every stop-first update of this singleton would wait
        # out the 30 s grace period before the new scheduler could start.
        init=True,
    ),
    BACKUP.name: lambda row: AppProcess(
        row,
        ("bash", "-c", BACKUP_SCRIPT),
        # The loop sleeps most of the day; healthy means it can still reach the database.
        _fixed(tcp_probe(MARIADB.name, MARIADB.port)),
        env=_backup_env,
        stop_grace_period=BACKUP_STOP_GRACE_PERIOD,
        backups_mount=True,
    ),
    RESTORE_DRILL.name: lambda row: AppProcess(
        row,
        ("bash", "-c", RESTORE_DRILL_SCRIPT),
        _drill_health,
        env=_drill_env,
        stop_grace_period=RESTORE_DRILL_STOP_GRACE_PERIOD,
        drill=True,
    ),
    MAILPIT.name: lambda row: AppProcess(
        row, None, _fixed(("CMD", "/mailpit", "readyz")), image="mailpit"
    ),
}


def app_processes() -> tuple[AppProcess, ...]:
    """One process per app row of the catalogue, in its order."""
    return tuple(_worker(row) if row.queues else _PROCESSES[row.name](row) for row in APP_SERVICES)
