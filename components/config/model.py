"""The stack configuration as typed, validated models, loaded once per program run.

Every rule the architecture states about figures (replica counts, the singleton scheduler, memory
sizes, which optional services belong to which environment) is a validator, so a bad
``Pulumi.<stack>.yaml`` stops the program before a single resource is registered, with one error
that lists every bad key. This module is the whole stack's model and the rules across its
sections; the sections are sections.py and ingress.py beside it, the value types types.py.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from components.config.ingress import IngressSettings
from components.config.nodes import Placement, Storage
from components.config.rules import domain_rules, path_rules, prod_safety_rules
from components.config.secret_rules import (
    bad_age_identity,
    bad_age_recipients,
    short_secret_name_key,
    weak_password,
)
from components.config.sections import (
    AppServices,
    BackupSettings,
    CapacitySettings,
    DataProtection,
    FrappeSettings,
    HealthcheckSettings,
    Images,
    MariaDBSettings,
    RedisSettings,
    RegistrySettings,
    RestoreRequest,
    RolloutSettings,
)
from components.config.types import Hostname, ImageDigest, ImageTag, Model, Violation
from components.platform.catalogue import (
    APP_SERVICES,
    BACKUP,
    RESTORE_DRILL,
    STANDALONE_ENVIRONMENTS,
)

Environment = Literal["dev", "staging", "prod", "local"]
# The branch whose image each environment runs (architecture section 2). local has none: no
# pipeline deploys it, and its stack file names the image's tag (imageTag).
BRANCH_FOR_ENVIRONMENT = {"dev": "develop", "staging": "staging", "prod": "main"}


def image_series(image: str | None) -> str | None:
    """The MariaDB series an image tag names ("mariadb:11.4.5-noble" -> "11.4"), if any."""
    if image is None:
        return None
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if "/" in tag or not name:
        return None  # a registry port, not a tag
    match = re.match(r"(\d+)\.(\d+)(?![\d])", tag)
    return f"{match[1]}.{match[2]}" if match else None


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
    storage: Storage = Field(default_factory=Storage)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    restore: RestoreRequest | None = None
    db_root_password: SecretStr
    # Only during a root password rotation: the password MariaDB still has
    # (docs/secrets.md#rotating-a-secret).
    db_root_password_previous: SecretStr | None = None
    admin_password: SecretStr
    # Keys the fingerprint that ends every Docker secret's name (components/swarm/secrets.py).
    secret_name_key: SecretStr
    registry_password: SecretStr | None = None
    backup_offsite_secret: SecretStr | None = None
    # The public age recipients every off-site copy is encrypted to (docs/backups.md).
    backup_offsite_recipients: SecretStr | None = None
    # The private age identity that opens off-site copies: only during a restore from one
    # (restore.fromOffsite); otherwise it stays offline with the operator.
    backup_offsite_identity: SecretStr | None = None

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if len(set(self.domains)) != len(self.domains):
            broken.append(Violation("domains", self.domains, "each domain once"))
        broken += domain_rules(self.environment, self.domains)
        broken += prod_safety_rules(self)
        broken += path_rules(self)
        if self.db_root_password_previous is not None and (
            self.db_root_password_previous.get_secret_value()
            == self.db_root_password.get_secret_value()
        ):
            broken.append(
                Violation(
                    "dbRootPasswordPrevious",
                    "the same value as dbRootPassword (not shown)",
                    "the password MariaDB has now, different from dbRootPassword: a rotation "
                    "to the same password changes nothing; unset it when no rotation is under "
                    "way",
                )
            )
        broken += self._misplaced_services()
        broken += self._drill_rules()
        broken += self._missing_secrets()
        if self.image_tag is None and self.environment not in BRANCH_FOR_ENVIRONMENT:
            broken.append(
                Violation(
                    "imageTag",
                    None,
                    f"an image tag: no branch deploys {self.environment}, so no branch tag "
                    "stands in for it",
                )
            )
        if self.environment in STANDALONE_ENVIRONMENTS and not self.ingress.manage:
            broken.append(
                Violation(
                    "ingress.manage",
                    False,
                    f"true: {self.environment} is alone on its swarm, and no other stack runs "
                    "a Traefik there",
                )
            )
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
        series = image_series(self.images.mariadb)
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
        if self.data_protection.protect and self.placement.data_node_label is None:
            broken.append(
                Violation(
                    "placement.dataNodeLabel",
                    None,
                    "the label of the data node where dataProtection.protect is true (label it "
                    "with docker node update --label-add <label>=true <node>): on a swarm with "
                    "more than one node, only a label pins the data services to the node that "
                    "holds their volumes",
                )
            )
        return broken

    @field_validator("db_root_password", "admin_password")
    @classmethod
    def _strong_password(cls, password: SecretStr) -> SecretStr:
        if problem := weak_password(password.get_secret_value()):
            raise ValueError(problem)
        return password

    @field_validator("backup_offsite_recipients")
    @classmethod
    def _age_recipients(cls, recipients: SecretStr | None) -> SecretStr | None:
        problem = recipients and bad_age_recipients(recipients.get_secret_value())
        if problem:
            raise ValueError(problem)
        return recipients

    @field_validator("backup_offsite_identity")
    @classmethod
    def _age_identity(cls, identity: SecretStr | None) -> SecretStr | None:
        problem = identity and bad_age_identity(identity.get_secret_value())
        if problem:
            raise ValueError(problem)
        return identity

    @field_validator("secret_name_key")
    @classmethod
    def _long_random_key(cls, key: SecretStr) -> SecretStr:
        if problem := short_secret_name_key(key.get_secret_value()):
            raise ValueError(problem)
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

    def _drill_rules(self) -> list[Violation]:
        """The restore drill restores the backup service's backups, and runs exactly where it is
        enabled (its resources under services.restore-drill)."""
        enabled = self.backup.drill.enabled
        has_service = self.services.get(RESTORE_DRILL.name) is not None
        broken = []
        if enabled and self.services.get(BACKUP.name) is None:
            broken.append(
                Violation(
                    "backup.drill.enabled",
                    True,
                    f"false unless services.{BACKUP.name} is set: the drill restores the "
                    "backups that stack's backup service takes",
                )
            )
        if enabled and not has_service:
            broken.append(
                Violation(
                    f"services.{RESTORE_DRILL.name}",
                    None,
                    "its replicas, limits and reservations where backup.drill.enabled is true",
                )
            )
        if has_service and not enabled:
            broken.append(
                Violation(
                    f"services.{RESTORE_DRILL.name}",
                    "set",
                    "unset unless backup.drill.enabled is true (the drill runs only where it "
                    "is enabled)",
                )
            )
        return broken

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
                self.copies_offsite,
                "backup.offsite is set",
            ),
            (
                "backupOffsiteRecipients",
                self.backup_offsite_recipients,
                self.copies_offsite,
                "backup.offsite is set (the age recipients off-site copies are encrypted to)",
            ),
            (
                "backupOffsiteIdentity",
                self.backup_offsite_identity,
                self.restore is not None and self.restore.from_offsite,
                "restore.fromOffsite is true (the age identity that decrypts the copy)",
            ),
        )
        # The loader adds the `pulumi config set --secret` command, with the stack's name.
        missing = [
            Violation(key, None, f"a secret where {because}")
            for key, value, needed, because in conditional
            if needed and value is None
        ]
        if self.backup_offsite_identity is not None and not (
            self.restore is not None and self.restore.from_offsite
        ):
            missing.append(
                Violation(
                    "backupOffsiteIdentity",
                    "set (not shown)",
                    "unset unless restore.fromOffsite is true: the private identity opens every "
                    "off-site copy, and its place is offline with the operator "
                    "(docs/backups.md#the-off-site-key)",
                )
            )
        return missing

    @property
    def copies_offsite(self) -> bool:
        """A backup service runs and copies each backup off site."""
        return self.backup.offsite is not None and self.services.get(BACKUP.name) is not None

    @property
    def site_name(self) -> str:
        return self.frappe.site_name or self.domains[0]

    @property
    def app_tag(self) -> str:
        # Validated: an environment without a branch states its tag.
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
