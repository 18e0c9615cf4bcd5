"""The stack configuration as typed, validated models, loaded once per program run.

Every rule the architecture states about figures (replica counts, the singleton scheduler, memory
sizes, which optional services belong to which environment) is a validator here, so a bad
``Pulumi.<stack>.yaml`` stops the program before a single resource is registered, with one error
that lists every bad key.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.catalogue import (
    APP_SERVICES,
    BACKUP,
    PING_PORT,
    WEBSOCKET,
    Service,
)
from components.config_formats import (
    LETS_ENCRYPT,
    acme_directory_url,
    cpus_bounds,
    host_path,
    is_lets_encrypt,
    logged_header,
    memory_bounds,
    nonzero_nginx_size,
    pem_certificates,
    private_network,
)
from components.mariadb_series import SUPPORTED_SERIES
from components.units import format_size, parse_duration, parse_size

NAMESPACE = "brandclub"
Environment = Literal["dev", "staging", "prod"]
# The branch whose image each environment runs (architecture section 2).
BRANCH_FOR_ENVIRONMENT = {"dev": "develop", "staging": "staging", "prod": "main"}
# brandclub:secretNameKey: long enough that nobody guesses it (openssl rand -hex 32 gives 64).
SECRET_NAME_KEY_MIN_LENGTH = 32
# dbRootPassword / adminPassword: length and character classes (README, "Secrets").
PASSWORD_MIN_LENGTH = 12
PASSWORD_MIN_CLASSES = 3
_CHARACTER_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")


class Violation(NamedTuple):
    """One broken architecture rule, keyed below the model whose validator found it."""

    key: str
    found: object
    expected: str


class RuleViolationError(ValueError):
    """Every rule a model's validator found broken, reported together."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.key}: expected {v.expected}" for v in violations))
        self.violations = violations


def _matching(pattern: str, expected: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise ValueError("expected a CIDR range such as 10.0.0.0/8") from None
    return value


ByteSize = Annotated[int, BeforeValidator(parse_size)]
MemorySize = Annotated[int, BeforeValidator(parse_size), AfterValidator(memory_bounds)]
CpuCount = Annotated[float, Field(allow_inf_nan=False), AfterValidator(cpus_bounds)]
Duration = Annotated[str, BeforeValidator(parse_duration)]
Hostname = Annotated[
    str,
    _matching(
        # The last label: letters, or an IDN top-level domain in punycode (shop.xn--p1ai).
        r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{0,58}[a-z0-9])",
        "a lower-case DNS name such as brandclub.com",
    ),
]
ImageTag = Annotated[
    str, _matching(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "a Docker image tag such as main")
]
_REPOSITORY = r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._-]|__|/)[a-z0-9]+)*"
ImageRepository = Annotated[
    str, _matching(_REPOSITORY, "an image repository without a tag, e.g. ghcr.io/org/app")
]
ImageReference = Annotated[
    str,
    _matching(
        _REPOSITORY + r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?",
        "an image reference such as redis:6.2-alpine",
    ),
]
ImageDigest = Annotated[
    str, _matching(r"sha256:[0-9a-f]{64}", "an image digest such as sha256:<64 hex digits>")
]
RegistryHost = Annotated[
    str, _matching(r"[a-z0-9.-]+(?::[0-9]+)?", "a registry host such as ghcr.io")
]
AppName = Annotated[str, _matching(r"[a-z][a-z0-9_]*", "a Frappe app name such as erpnext")]
# Absolute, normalised, outside system and Docker directories (components/config_formats.py).
NodePath = Annotated[str, AfterValidator(host_path)]


def _calendar_date(value: str) -> str:
    try:
        if len(value) == 10:
            date.fromisoformat(value)
            return value
    except ValueError:
        pass
    raise ValueError("expected a date such as 2026-11-20 (YYYY-MM-DD)")


CalendarDate = Annotated[str, AfterValidator(_calendar_date)]
# It becomes part of a Traefik command-line argument: a plain address, nothing that could
# carry another option (a@b.c,--api.insecure=true).
Email = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9._%+-]+@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
        r"([A-Za-z]{2,63}|xn--[A-Za-z0-9-]{0,58}[A-Za-z0-9])",
        "an e-mail address such as ops@brandclub.com",
    ),
]
# Free text that ends up in a header or a label: no CR, LF or other control character.
HeaderText = Annotated[
    str, _matching(r"[^\x00-\x1f\x7f]*", "text without control characters (CR, LF, tab, ...)")
]
ClockTime = Annotated[
    str, _matching(r"([01][0-9]|2[0-3]):[0-5][0-9]", "a 24-hour UTC time such as 02:00")
]
NginxSize = Annotated[
    str,
    _matching(r"[0-9]+[kKmMgG]?", "an nginx size such as 50m"),
    AfterValidator(nonzero_nginx_size),
]
Cidr = Annotated[str, AfterValidator(_network)]
PrivateCidr = Annotated[str, AfterValidator(_network), AfterValidator(private_network)]
# One constraint per entry: it becomes one `--constraint` (a newline would split it) and one
# Compose list item; ',' and '=' have no place in a label value.
PlacementConstraint = Annotated[
    str,
    _matching(
        r"(node|engine)\.[A-Za-z0-9_.-]+ *(==|!=) *[A-Za-z0-9_.:/@+-]+",
        "a Swarm placement constraint such as node.role == manager (one per entry; the value "
        "letters, digits and . _ : / @ + - only)",
    ),
]


def _image_series(image: str | None) -> str | None:
    """The MariaDB series an image tag names ("mariadb:11.4.5-noble" -> "11.4"), if any."""
    if image is None:
        return None
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if "/" in tag or not name:
        return None  # a registry port, not a tag
    match = re.match(r"(\d+)\.(\d+)(?![\d])", tag)
    return f"{match[1]}.{match[2]}" if match else None


class Model(BaseModel):
    # Aliases are the camelCase keys written in Pulumi.<stack>.yaml; strict mode refuses
    # "2" for a replica count or "yes" for a boolean instead of guessing.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )

    def _broken_rules(self) -> list[Violation]:
        """Cross-field rules; subclasses extend the list so every broken rule is reported."""
        return []

    @model_validator(mode="after")
    def _check_rules(self) -> Model:
        broken = self._broken_rules()
        if broken:
            raise RuleViolationError(broken)
        return self


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


class ServiceSettings(Sized):
    replicas: int = Field(ge=1, le=32)


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
    long_query_time: float = Field(default=2.0, gt=0)

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
    apps: list[AppName] = Field(default_factory=lambda: ["erpnext"], min_length=1)
    gunicorn_workers: int = Field(default=2, ge=1, le=64)
    gunicorn_threads: int = Field(default=4, ge=1, le=64)
    gunicorn_timeout: int = Field(default=120, ge=1)
    client_max_body_size: NginxSize = "50m"
    proxy_read_timeout: int = Field(default=120, ge=1)
    # Traefik reaches nginx over an overlay network; trust X-Forwarded-For only from there.
    real_ip_from: PrivateCidr = "10.0.0.0/8"
    # Frappe creates sites with the scheduler off until the setup wizard is completed; the
    # create-site job switches it on for the site it creates (once, at creation).
    enable_scheduler: bool = True


class HealthcheckSettings(Model):
    interval: Duration = "30s"
    timeout: Duration = "10s"
    retries: int = Field(default=3, ge=1, le=20)
    start_period: Duration = "60s"


class RolloutSettings(Model):
    parallelism: int = Field(default=1, ge=1)
    delay: Duration = "10s"
    monitor: Duration = "30s"
    max_failure_ratio: float = Field(default=0.0, ge=0, le=1)
    converge_timeout: Duration = "10m"

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
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


class HstsSettings(Model):
    enabled: bool = False
    max_age: int = Field(default=63072000, ge=0)
    include_subdomains: bool = True
    preload: bool = False


class AccessLogSettings(Model):
    # This environment's requests in Traefik's access log (its routers' observability); in the
    # stack that runs Traefik, also whether Traefik writes an access log at all.
    enabled: bool = True
    format: Literal["json", "common"] = "json"
    # Request headers written with each line; every other header is dropped.
    headers: list[Annotated[str, AfterValidator(logged_header)]] = Field(
        default_factory=lambda: ["User-Agent"]
    )


class MetricsSettings(Model):
    # This environment's routers in Traefik's Prometheus metrics; in the stack that runs
    # Traefik, also whether Traefik serves /metrics at all.
    enabled: bool = True
    # Traefik's own entrypoint for /metrics: reachable on traefik-public, published nowhere.
    port: int = Field(default=8082, ge=1024, le=65535)

    @field_validator("port")
    @classmethod
    def _free_port(cls, port: int) -> int:
        if port == PING_PORT:
            raise ValueError(f"a port other than {PING_PORT}, where Traefik answers /ping")
        return port


# Traefik's static configuration: read only from the stack that runs it (ingress.manage).
TRAEFIK_ONLY_KEYS = (
    "acmeCaServer",
    "acmeCaCertificate",
    "accessLog.format",
    "accessLog.headers",
    "metrics.port",
)


class IngressSettings(Model):
    # True in exactly one stack per swarm: that stack runs Traefik and creates traefik-public
    # and shared-services; the others look the two networks up by name.
    manage: bool = False
    acme_email: Email | None = None
    # The ACME directory Traefik's resolver orders certificates from (README, "Traefik
    # observability and private CAs").
    acme_ca_server: Annotated[str, AfterValidator(acme_directory_url)] = LETS_ENCRYPT
    # A private ACME CA's root (PEM): the only roots the resolver then trusts for that server.
    acme_ca_certificate: Annotated[str, AfterValidator(pem_certificates)] | None = None
    constraint_label: Annotated[
        str, _matching(r"[a-z0-9][a-z0-9-]*", "lower-case letters, digits and dashes")
    ] = "traefik-public"
    websocket_direct: bool = False
    hsts: HstsSettings = Field(default_factory=HstsSettings)
    noindex: bool = False
    content_security_policy: HeaderText | None = None
    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = "INFO"
    access_log: AccessLogSettings = Field(default_factory=AccessLogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if self.manage and self.acme_email is None:
            broken.append(
                Violation(
                    "acmeEmail",
                    None,
                    "the Let's Encrypt account e-mail, required where ingress.manage is true",
                )
            )
        if not self.manage:
            broken += [
                Violation(
                    key,
                    _value(self, key),
                    "unset where ingress.manage is false: it is Traefik's static configuration, "
                    "read only from the stack that runs Traefik; set it there",
                )
                for key in TRAEFIK_ONLY_KEYS
                if _is_set(self, key)
            ]
        if self.acme_ca_certificate is not None and is_lets_encrypt(self.acme_ca_server):
            broken.append(
                Violation(
                    "acmeCaCertificate",
                    self.acme_ca_certificate,
                    f"unset while acmeCaServer is Let's Encrypt ({self.acme_ca_server}): the "
                    "certificate replaces the system roots Traefik trusts Let's Encrypt with; "
                    "it is for a private CA's acmeCaServer",
                )
            )
        return broken


def _is_set(model: BaseModel, dotted_key: str) -> bool:
    """Whether the stack file states ``dotted_key`` (camelCase) below ``model``."""
    *parents, key = dotted_key.split(".")
    for parent in parents:
        model = getattr(model, _snake(parent))
    return _snake(key) in model.model_fields_set


def _value(model: BaseModel, dotted_key: str) -> object:
    for key in dotted_key.split("."):
        model = getattr(model, _snake(key))
    return model


def _snake(key: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), key)


class S3Offsite(Model):
    kind: Literal["s3"]
    endpoint: Annotated[str, _matching(r"https?://\S+", "an http(s) URL")]
    bucket: Annotated[str, _matching(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name")]
    prefix: Annotated[
        str, _matching(r"[A-Za-z0-9!_.*'()/-]*", "an S3 key prefix (letters, digits, !_.*'()/-)")
    ] = ""
    access_key_id: Annotated[str, _matching(r"\S+", "an access key id")]


class RsyncOffsite(Model):
    kind: Literal["rsync"]
    target: Annotated[str, _matching(r"[^\s:]+@[^\s:]+:/\S*", "user@host:/absolute/path")]
    # The target's SSH host key lines; without them the first connection is trusted.
    known_hosts: (
        Annotated[
            str,
            _matching(
                r"[^\x00-\x09\x0b-\x1f\x7f]*",
                "host key lines (no control characters but line breaks)",
            ),
        ]
        | None
    ) = None


class BackupSettings(Model):
    time: ClockTime = "02:00"
    retention_days: int = Field(default=7, ge=1, le=366)
    host_path: NodePath = "/opt/brand-club/backups"
    offsite: Annotated[S3Offsite | RsyncOffsite, Field(discriminator="kind")] | None = None


class RegistrySettings(Model):
    # Where the app image lives and who may read it; the password is the secret
    # brandclub:registryPassword.
    server: RegistryHost = "ghcr.io"
    username: (
        Annotated[
            str,
            _matching(
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

    @property
    def source_site(self) -> str:
        return self.from_site or self.site

    @property
    def request_id(self) -> str:
        """The same for create-site and restore in one deploy; another date or source is
        another request."""
        return f"{self.source_site}@{self.date}"


class DataProtection(Model):
    protect: bool = True
    retain_volumes: bool = True


class Placement(Model):
    # Local volumes live on one node: pin the data services there or a rescheduled MariaDB
    # starts on an empty volume elsewhere.
    data: list[PlacementConstraint] = Field(default_factory=lambda: ["node.role == manager"])
    app: list[PlacementConstraint] = Field(default_factory=list)


class StackConfig(Model):
    environment: Environment
    # Defaults to the environment's branch; a pipeline sets just this key to roll out.
    image_tag: ImageTag | None = None
    # Pins the app image to this digest instead of resolving the tag at deploy time.
    image_digest: ImageDigest | None = None
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    domains: list[Hostname] = Field(min_length=1)
    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    images: Images = Field(default_factory=Images)
    mariadb: MariaDBSettings
    redis_cache: RedisSettings
    redis_queue: RedisSettings
    services: AppServices
    frappe: FrappeSettings = Field(default_factory=FrappeSettings)
    healthcheck: HealthcheckSettings = Field(default_factory=HealthcheckSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    ingress: IngressSettings = Field(default_factory=IngressSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    data_protection: DataProtection = Field(default_factory=DataProtection)
    placement: Placement = Field(default_factory=Placement)
    restore: RestoreRequest | None = None
    db_root_password: SecretStr
    # Only during a root password rotation: the password MariaDB still has (README, "Secrets").
    db_root_password_previous: SecretStr | None = None
    admin_password: SecretStr
    # Keys the fingerprint that ends every Docker secret's name (components/swarm_secrets.py).
    secret_name_key: SecretStr
    registry_password: SecretStr | None = None
    backup_offsite_secret: SecretStr | None = None

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if len(set(self.domains)) != len(self.domains):
            broken.append(Violation("domains", self.domains, "each domain once"))
        broken += self._misplaced_services()
        websocket = self.services.get(WEBSOCKET.name)
        if websocket is not None and websocket.replicas > 1 and not self.ingress.websocket_direct:
            broken.append(
                Violation(
                    "ingress.websocketDirect",
                    False,
                    "true when services.websocket.replicas > 1: socket.io polling needs sticky "
                    "routing, which only Traefik straight to the websocket service gives",
                )
            )
        broken += self._missing_secrets()
        registry = self.registry
        if registry.username is not None and not self.images.app.startswith(f"{registry.server}/"):
            broken.append(
                Violation(
                    "registry.server",
                    registry.server,
                    f"the registry of images.app ({self.images.app.split('/', 1)[0]}): the "
                    "credentials are for the registry the app image is pulled from",
                )
            )
        if self.frappe.site_name is not None and self.frappe.site_name not in self.domains:
            broken.append(
                Violation(
                    "frappe.siteName",
                    self.frappe.site_name,
                    f"one of domains ({', '.join(self.domains)}): every other domain redirects "
                    "to the site's, and Frappe's realtime server accepts no other host",
                )
            )
        if self.redis_cache.appendonly:
            broken.append(
                Violation(
                    "redisCache.appendonly",
                    True,
                    "false: the cache is never persisted (a restart must not reload stale "
                    "entries, and a rewrite fork can exceed its memory limit)",
                )
            )
        if self.restore is not None and self.restore.site != self.site_name:
            broken.append(
                Violation(
                    "restore.site",
                    self.restore.site,
                    f"this stack's site {self.site_name!r}: name the site you mean to overwrite",
                )
            )
        series = _image_series(self.images.mariadb)
        if self.images.mariadb is not None and series != self.mariadb.version:
            # The server flags depend on the series: a tag that names none ("latest", "lts",
            # no tag) could start any series with flags it refuses, or upgrade in place.
            broken.append(
                Violation(
                    "images.mariadb",
                    self.images.mariadb,
                    f"an image of the {self.mariadb.version} series set in mariadb.version, its "
                    f"tag starting with the series (mariadb:{self.mariadb.version} or "
                    f"mariadb:{self.mariadb.version}.<patch>-<os>)",
                )
            )
        if self.data_protection.protect and not self.placement.data:
            broken.append(
                Violation(
                    "placement.data",
                    [],
                    "at least one constraint where dataProtection.protect is true: the data "
                    "volumes live on one node, and MariaDB rescheduled elsewhere starts on an "
                    "empty volume",
                )
            )
        return broken

    @field_validator("db_root_password", "admin_password")
    @classmethod
    def _strong_password(cls, password: SecretStr) -> SecretStr:
        # The message must never contain the password: it ends up in CI logs.
        text = password.get_secret_value()
        classes = sum(bool(re.search(pattern, text)) for pattern in _CHARACTER_CLASSES)
        if len(text) < PASSWORD_MIN_LENGTH or classes < PASSWORD_MIN_CLASSES:
            raise ValueError(
                f"a strong password: at least {PASSWORD_MIN_LENGTH} characters and "
                f"{PASSWORD_MIN_CLASSES} of the 4 character classes (lower case, upper case, "
                "digits, other characters); generate one with: openssl rand -base64 24"
            )
        return password

    @field_validator("secret_name_key")
    @classmethod
    def _long_random_key(cls, key: SecretStr) -> SecretStr:
        if len(key.get_secret_value()) < SECRET_NAME_KEY_MIN_LENGTH:
            raise ValueError(
                f"at least {SECRET_NAME_KEY_MIN_LENGTH} characters of random data, e.g. "
                "openssl rand -hex 32"
            )
        return key

    def _misplaced_services(self) -> list[Violation]:
        """Optional services where the catalogue does not let them run, or missing where it
        requires them."""
        rows = [row for row in APP_SERVICES if row.optional]
        enabled = {row.name for row in rows if self.services.get(row.name) is not None}
        outside = [
            Violation(
                f"services.{row.name}",
                "enabled",
                f"no {row.name} outside {', '.join(row.environments)}: {row.because}",
            )
            for row in rows
            if row.name in enabled and self.environment not in row.environments
        ]
        missing = [
            Violation(
                f"services.{row.name}",
                None,
                f"a {row.name} service in {self.environment} ({row.because})",
            )
            for row in rows
            if row.name not in enabled and self.environment in row.required_in
        ]
        return outside + missing

    def _missing_secrets(self) -> list[Violation]:
        # Secrets that only some settings need: (key, value, needed, because).
        conditional = (
            (
                "registryPassword",
                self.registry_password,
                self.registry.username is not None,
                "registry.username is set",
            ),
            (
                "backupOffsiteSecret",
                self.backup_offsite_secret,
                self.backup.offsite is not None and self.services.get(BACKUP.name) is not None,
                "backup.offsite is set",
            ),
        )
        # The loader adds the `pulumi config set --secret` command, with the stack's name.
        return [
            Violation(key, None, f"a secret where {because}")
            for key, value, needed, because in conditional
            if needed and value is None
        ]

    @property
    def site_name(self) -> str:
        return self.frappe.site_name or self.domains[0]

    @property
    def app_tag(self) -> str:
        return self.image_tag or BRANCH_FOR_ENVIRONMENT[self.environment]

    @property
    def app_image(self) -> str:
        """The app image by tag; the program deploys it by digest (components/images.py)."""
        return f"{self.images.app}:{self.app_tag}"

    @property
    def mariadb_image(self) -> str:
        return self.images.mariadb or f"mariadb:{self.mariadb.version}"

    @property
    def site_url(self) -> str:
        # Every other domain redirects here (components/traefik_ingress.py).
        return f"https://{self.site_name}"
