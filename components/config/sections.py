"""The sections of the stack configuration (``services``, ``mariadb``, ``backup``, ...), one model
each; components/config/model.py assembles them into the stack's configuration and its cross-section
rules, components/config/ingress.py holds the ingress section.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    create_model,
    field_validator,
)

from components.config.drill import DRILL_STATE_FOLDER, DrillSettings
from components.config.grammar import rsync_target, s3_endpoint
from components.config.types import (
    AppName,
    ByteSize,
    CalendarDate,
    ClockTime,
    CpuCount,
    Duration,
    Hostname,
    ImageReference,
    ImageRepository,
    MemorySize,
    Model,
    NginxSize,
    NodePath,
    PositiveDuration,
    PrivateCidr,
    RegistryHost,
    Violation,
    matching,
)
from components.config.units import DURATION_MIN_NS, duration_ns, format_size
from components.platform.catalogue import APP_SERVICES, Service
from components.platform.drain import DRAIN_SECONDS, DRAIN_SECONDS_MIN
from components.platform.mariadb_series import SUPPORTED_SERIES


class Resources(Model):
    cpus: CpuCount
    memory: MemorySize


class Sized(Model):
    limits: Resources
    reservations: Resources

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if self.reservations.memory > self.limits.memory:
            broken.append(
                Violation(
                    "reservations.memory",
                    format_size(self.reservations.memory),
                    f"at most limits.memory ({format_size(self.limits.memory)})",
                )
            )
        if self.reservations.cpus > self.limits.cpus:
            broken.append(
                Violation(
                    "reservations.cpus",
                    self.reservations.cpus,
                    f"at most limits.cpus ({self.limits.cpus})",
                )
            )
        return broken


# An hour: a request, a query or a worker that takes longer is stuck, not slow.
TIMEOUT_MAX_SECONDS = 3600
# No app service needs more on a swarm this size; a typo (320) would exhaust every node.
REPLICAS_MAX = 32


class ServiceSettings(Sized):
    replicas: int = Field(ge=1, le=REPLICAS_MAX)


class SingletonSettings(ServiceSettings):
    """A service that must run exactly once."""

    @field_validator("replicas")
    @classmethod
    def _exactly_one(cls, replicas: int) -> int:
        if replicas != 1:
            raise ValueError(
                "exactly 1: a second replica would run every scheduled job or backup twice"
            )
        return replicas


class _Services(Model):
    def get(self, service: str) -> ServiceSettings | None:
        """Settings of a service by its swarm name (``queue-long``), None when it is disabled."""
        return getattr(self, _field_name(service))


def _field_name(service: str) -> str:
    return service.replace("-", "_")


def _service_field(row: Service) -> tuple[object, object]:
    settings = SingletonSettings if row.singleton else ServiceSettings
    if row.optional:
        return settings | None, Field(default=None, alias=row.name)
    return settings, Field(alias=row.name)


def app_services_model() -> type[_Services]:
    """``services.*``: one key per app row of the catalogue, as it stands when called."""
    fields: dict[str, Any] = {_field_name(row.name): _service_field(row) for row in APP_SERVICES}
    return create_model("AppServices", __base__=_Services, **fields)


AppServices = app_services_model()


class Images(Model):
    app: ImageRepository = "ghcr.io/brand-club/brandclub"
    # None means the official image of the configured MariaDB series.
    mariadb: ImageReference | None = None
    redis: ImageReference = "redis:6.2-alpine"
    traefik: ImageReference = "traefik:v3.5"
    mailpit: ImageReference = "axllent/mailpit:v1.27"


class MariaDBSettings(Sized):
    # frappe_docker's series for new environments; a stack created on an older series states
    # it in its Pulumi.<stack>.yaml, so a new default never upgrades a database silently.
    version: str = "11.8"
    buffer_pool_size: ByteSize
    slow_query_log: bool = False
    long_query_time: float = Field(default=2.0, gt=0, le=TIMEOUT_MAX_SECONDS, allow_inf_nan=False)

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if self.version not in SUPPORTED_SERIES:
            broken.append(
                Violation(
                    "version", self.version, f"one of {', '.join(map(repr, SUPPORTED_SERIES))}"
                )
            )
        if self.buffer_pool_size >= self.limits.memory:
            broken.append(
                Violation(
                    "bufferPoolSize",
                    format_size(self.buffer_pool_size),
                    f"less than limits.memory ({format_size(self.limits.memory)}): MariaDB needs "
                    "memory beyond the buffer pool and is killed when it reaches the limit",
                )
            )
        return broken


class RedisSettings(Sized):
    maxmemory: ByteSize
    appendonly: bool = False

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if self.maxmemory >= self.limits.memory:
            broken.append(
                Violation(
                    "maxmemory",
                    format_size(self.maxmemory),
                    f"less than limits.memory ({format_size(self.limits.memory)}): Redis forks to "
                    "persist and needs headroom above maxmemory",
                )
            )
        return broken


class FrappeSettings(Model):
    site_name: Hostname | None = None
    # Installed by the create-site job, in this order, when the site is first created.
    apps: list[AppName] = Field(default_factory=lambda: ["erpnext"], min_length=1, max_length=32)
    gunicorn_workers: int = Field(default=2, ge=1, le=64)
    gunicorn_threads: int = Field(default=4, ge=1, le=64)
    gunicorn_timeout: int = Field(default=120, ge=1, le=TIMEOUT_MAX_SECONDS)
    client_max_body_size: NginxSize = "50m"
    proxy_read_timeout: int = Field(default=120, ge=1, le=TIMEOUT_MAX_SECONDS)
    # Traefik reaches nginx over an overlay network; trust X-Forwarded-For only from there.
    real_ip_from: PrivateCidr = "10.0.0.0/8"
    # Frappe creates sites with the scheduler off until the setup wizard is completed; the
    # create-site job switches it on for the site it creates (once, at creation).
    enable_scheduler: bool = True


class HealthcheckSettings(Model):
    interval: PositiveDuration = "30s"
    timeout: PositiveDuration = "10s"
    retries: int = Field(default=3, ge=1, le=20)
    # 0: no start period.
    start_period: Duration = "60s"

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if 0 < duration_ns(self.start_period) < DURATION_MIN_NS:
            broken.append(
                Violation("startPeriod", self.start_period, "0 or at least 1ms (Docker's minimum)")
            )
        return broken


class RolloutSettings(Model):
    # At most the most replicas a service may run: more updates nothing more at once.
    parallelism: int = Field(default=1, ge=1, le=REPLICAS_MAX)
    # 0: no pause between batches.
    delay: Duration = "10s"
    monitor: PositiveDuration = "30s"
    max_failure_ratio: float = Field(default=0.0, ge=0, le=1)
    converge_timeout: PositiveDuration = "10m"
    # Seconds a stopping task of a routed service (backend, frontend, websocket) keeps serving
    # after Swarm signals it, before its process is told to stop: longer than what routes to it
    # caches the task's address (nginx's resolver, Traefik's Swarm provider). 0 switches the
    # drain off (components/platform/drain.py, components/scripts/drain.sh).
    drain_seconds: int = Field(default=DRAIN_SECONDS, ge=0, le=300)

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if 0 < self.drain_seconds < DRAIN_SECONDS_MIN:
            broken.append(
                Violation(
                    "drainSeconds",
                    self.drain_seconds,
                    f"0 (no drain) or at least {DRAIN_SECONDS_MIN}: a shorter drain ends before "
                    "Traefik's Swarm provider and nginx's resolver have let go of the task, so "
                    "requests still fail",
                )
            )
        if round(self.max_failure_ratio, 1) != self.max_failure_ratio:
            broken.append(
                Violation(
                    "maxFailureRatio",
                    self.max_failure_ratio,
                    "a multiple of 0.1: the swarm keeps one decimal, so any other value "
                    "would show as drift on every refresh",
                )
            )
        return broken


class S3Offsite(Model):
    kind: Literal["s3"]
    endpoint: Annotated[str, AfterValidator(s3_endpoint)]
    # S3's bucket naming rules: no '..', not shaped like an IP address.
    bucket: Annotated[
        str,
        matching(
            r"(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
            "an S3 bucket name (3-63 lower-case letters, digits, '.' and '-'; no '..', not an "
            "IP address)",
        ),
    ]
    # S3 keys are at most 1024 bytes: the prefix leaves room for <site>/<date>/<file>.
    prefix: Annotated[
        str,
        matching(
            r"[A-Za-z0-9!_.*'()/-]{0,512}",
            "an S3 key prefix (letters, digits, !_.*'()/-; at most 512)",
        ),
    ] = ""
    access_key_id: Annotated[
        str, matching(r"[!-~]{1,128}", "an access key id (1 to 128 printable characters)")
    ]


class RsyncOffsite(Model):
    kind: Literal["rsync"]
    target: Annotated[str, AfterValidator(rsync_target)]
    # The target's SSH host key lines; without them the first connection is trusted.
    known_hosts: (
        Annotated[
            str,
            matching(
                r"[^\x00-\x09\x0b-\x1f\x7f]{1,65536}",
                "host key lines (no control characters but line breaks; at most 64 KiB)",
            ),
        ]
        | None
    ) = None


class BackupSettings(Model):
    time: ClockTime = "02:00"
    retention_days: int = Field(default=7, ge=1, le=366)
    host_path: NodePath = "/opt/brand-club/backups"
    offsite: Annotated[S3Offsite | RsyncOffsite, Field(discriminator="kind")] | None = None
    drill: DrillSettings = Field(default_factory=DrillSettings)

    @property
    def drill_state_path(self) -> str:
        """The restore drill's results on the data node: beside the sites' backup folders,
        dotted so that neither the backup loop nor the drill takes it for a site."""
        return f"{self.host_path.rstrip('/')}/{DRILL_STATE_FOLDER}"


class RegistrySettings(Model):
    # Where the app image lives and who may read it; the password is the secret
    # brandclub:registryPassword.
    server: RegistryHost = "ghcr.io"
    username: (
        Annotated[
            str,
            matching(
                r"[!-9;-~]{1,255}",
                "a registry user name: 1 to 255 printable characters, no space or ':'",
            ),
        ]
        | None
    ) = None
    # Deploy repo:tag@sha256:... so a new push under the same branch tag rolls out. Off only
    # for images that exist on the swarm node alone (the live test tier).
    resolve_digest: bool = True


class RestoreRequest(Model):
    """Restore one dated backup into a site; applied once per distinct request."""

    # Named explicitly, never defaulted: restoring overwrites this site's database.
    site: Hostname
    date: CalendarDate
    # Whose backups to restore, e.g. prod's into staging; defaults to the site itself.
    from_site: Hostname | None = None
    # Where those backups are on the data node; defaults to backup.hostPath.
    host_path: NodePath | None = None
    # Write the backup's encryption_key into the site's config. None: only when create-site
    # made the site in the same deploy for this request (a disaster recovery).
    use_backup_encryption_key: bool | None = None
    # The day's directory holds an off-site copy fetched by hand (<file>.age): decrypted with
    # the secret backupOffsiteIdentity before the restore (docs/backups.md).
    from_offsite: bool = False

    @property
    def source_site(self) -> str:
        return self.from_site or self.site

    @property
    def request_id(self) -> str:
        """The same for create-site and restore in one deploy; another date or source is
        another request."""
        return f"{self.source_site}@{self.date}"


class CapacitySettings(Model):
    # The capacity preflight (components/capacity_preflight.py): every preview and up first
    # checks that the swarm's nodes hold every stack's reservations plus this deploy's
    # start-first surge. false skips it, with a warning on every run: for an operator who knows
    # better than the check (docs/capacity.md#turning-the-check-off).
    check: bool = True


class DataProtection(Model):
    protect: bool = True
    retain_volumes: bool = True
    # prod only: lifts prod's safety rules (protect, retainVolumes, two replicas) on purpose,
    # for taking prod down (docs/operations.md#decommissioning-prod).
    decommission: bool = False
