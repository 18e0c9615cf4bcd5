"""The database stack of one environment: its networks, volumes, MariaDB and the two Redis.

It is built only from data-layer settings, never from application settings, so no change to the
app layer can alter, restart or replace anything here (architecture section 1.1). It also owns
the app's sites and logs volumes: the sites volume holds every site's config and uploaded files,
and the site jobs need it before any app service exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pulumi
import pulumi_docker as docker

from components.config.model import StackConfig
from components.config.nodes import LocalStorage, VolumeStorage, driver_options, storage_suffix
from components.config.sections import (
    DataProtection,
    HealthcheckSettings,
    MariaDBSettings,
    RedisSettings,
    RolloutSettings,
)
from components.platform.catalogue import (
    MARIADB,
    NETWORK_ROLES,
    REDIS_CACHE,
    REDIS_QUEUE,
    RETIRED_VOLUME_ENVIRONMENTS,
    RETIRED_VOLUMES,
    EnvironmentNames,
    NetworkRole,
    Service,
    layer_labels,
)
from components.platform.catalogue import service as catalogue_row
from components.platform.mariadb_series import MARIADB_HEALTHCHECK, SUPPORTED_SERIES
from components.swarm.secrets import named_secret
from components.swarm.services import (
    Attachment,
    Mount,
    SecretFile,
    ServiceSpec,
    label_list,
    overlay_network,
    swarm_service,
)

MARIADB_ROOT_PASSWORD_FILE = "/run/secrets/mariadb-root-password"
# The Docker secret's purpose (its name: brandclub-db-<env>-<purpose>).
MARIADB_INITIAL_ROOT_PASSWORD = "mariadb-initial-root-password"
# The inputs of the pinned root-password secret that no later deploy changes (_root_password).
PINNED_SECRET_INPUTS = ("name", "data")
REDIS_HEALTHCHECK = ("CMD", "redis-cli", "ping")
REDIS_EVICTION_POLICY = {
    REDIS_CACHE.name: "allkeys-lru",
    # A queue that evicts under memory pressure silently drops jobs.
    REDIS_QUEUE.name: "noeviction",
}
# Mounted by every Frappe process and site job at SITES_PATH and LOGS_PATH.
APP_VOLUMES = ("sites", "logs")
# Redis services that keep their data on a volume. The cache keeps nothing: bench's own cache
# config saves no snapshot (`save ""`) and frappe_docker gives it no volume; a snapshot fork can
# outgrow the memory limit, and a restart would reload stale entries.
PERSISTENT_REDIS = (REDIS_QUEUE.name,)
# The data layer's own timing, deliberately not the app's settings: a first MariaDB start
# initialises the data directory for minutes, and tuning app health checks must never touch
# (and so restart) a database.
DATA_HEALTHCHECK = HealthcheckSettings.model_validate(
    {"interval": "10s", "timeout": "5s", "retries": 5, "startPeriod": "300s"}
)
DATA_ROLLOUT = RolloutSettings.model_validate(
    {"parallelism": 1, "delay": "0s", "monitor": "60s", "convergeTimeout": "10m"}
)


@dataclass(frozen=True)
class DataLayerArgs:
    environment: str
    mariadb: MariaDBSettings
    redis_cache: RedisSettings
    redis_queue: RedisSettings
    # By digest (components/images.py).
    mariadb_image: pulumi.Input[str]
    redis_image: pulumi.Input[str]
    # Only what an empty data directory is initialised with (DataLayer._root_password).
    db_root_password: str
    protection: DataProtection
    placement: tuple[str, ...]
    endpoint_mode: str
    today: date | None = None
    # Where the sites volume lives: on the node (the default) or on storage every node mounts.
    sites_storage: VolumeStorage = field(default_factory=lambda: LocalStorage(kind="local"))

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        mariadb_image: pulumi.Input[str],
        redis_image: pulumi.Input[str],
    ) -> DataLayerArgs:
        """Only the data-layer keys: no application setting can reach the database."""
        return cls(
            environment=config.environment,
            mariadb=config.mariadb,
            redis_cache=config.redis_cache,
            redis_queue=config.redis_queue,
            mariadb_image=mariadb_image,
            redis_image=redis_image,
            db_root_password=config.db_root_password.get_secret_value(),
            protection=config.data_protection,
            placement=tuple(config.placement.data_constraints),
            endpoint_mode=config.endpoint_mode,
            sites_storage=config.storage.sites,
        )


class DataLayer(pulumi.ComponentResource):
    # The environment's networks by role (components/platform/catalogue.py): internal, database,
    # realtime.
    networks: dict[NetworkRole, docker.Network]

    def __init__(
        self, name: str, args: DataLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("brandclub:swarm:DataLayer", name, None, opts)
        self._args = args
        self._names = EnvironmentNames(args.environment)
        self.stack_name = self._names.data_stack
        child = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(protect=args.protection.protect, parent=self)
        )
        self.networks = self._networks(name, child)
        # What every mount of the sites volume carries, so each node creates the same volume.
        self.sites_driver_options = driver_options(args.sites_storage)
        self.volumes = self._volumes(name, child)
        self.root_password_secret = self._root_password(name, child)
        self._warn_if_end_of_life()
        self.services = self._services(name, child)
        self.service_names = pulumi.Output.all(*(s.name for s in self.services.values()))
        self.register_outputs(
            {
                **{f"{role}Network": n.name for role, n in self.networks.items()},
                "serviceNames": self.service_names,
            }
        )

    def _networks(
        self, name: str, opts: pulumi.ResourceOptions
    ) -> dict[NetworkRole, docker.Network]:
        labels = self._label_values()
        internal = overlay_network(
            f"{name}-internal-network",
            self._names.network("internal"),
            labels,
            opts,
            attachable=True,
        )
        # Internal: MariaDB never needs to reach anything outside the swarm, and nothing outside
        # may reach it; only services that talk SQL (backend, workers, scheduler, backup) join.
        database = overlay_network(
            f"{name}-database-network", self._names.network("database"), labels, opts, internal=True
        )
        # Internal: only the websocket and the frontend join, and the frontend answers there to
        # the site's name, so Frappe's realtime server reaches nginx for its session checks
        # without the public domain resolving inside the swarm. Owned here like the other
        # environment networks, so an app rollout never recreates it.
        realtime = overlay_network(
            f"{name}-realtime-network", self._names.network("realtime"), labels, opts, internal=True
        )
        return {"internal": internal, "database": database, "realtime": realtime}

    def _volumes(self, name: str, opts: pulumi.ResourceOptions) -> dict[str, docker.Volume]:
        kept = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(retain_on_delete=self._args.protection.retain_volumes)
        )
        volumes = {
            purpose: self._volume(name, purpose, kept)
            for purpose in (MARIADB.name, *PERSISTENT_REDIS, *APP_VOLUMES)
        }
        # Still declared, never mounted: prod's was created protected and Pulumi refuses to
        # delete a protected resource. Unprotecting it is a state-only change; retained on
        # delete, so dropping the declaration later leaves Docker alone. Its Docker labels stay
        # as they were (a label change replaces a volume); "-retired" in the Pulumi name, with
        # an alias to the old one, marks it in previews and state instead.
        retired = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(protect=False, retain_on_delete=True)
        )
        # An environment made after they retired (local) never had them.
        had_them = self._args.environment in RETIRED_VOLUME_ENVIRONMENTS
        for purpose in RETIRED_VOLUMES if had_them else ():
            volumes[purpose] = self._volume(
                name,
                purpose,
                pulumi.ResourceOptions.merge(
                    retired,
                    pulumi.ResourceOptions(aliases=[pulumi.Alias(name=f"{name}-{purpose}-volume")]),
                ),
                suffix="-retired",
            )
        return volumes

    def _volume(
        self, name: str, purpose: str, opts: pulumi.ResourceOptions, suffix: str = ""
    ) -> docker.Volume:
        # Only the sites volume can live on shared storage. Another storage is another Docker
        # volume name under the same resource: a replacement, which Pulumi refuses for a
        # protected volume until the operator has copied the files and unprotected it
        # (docs/multi-node.md#moving-sites-to-shared-storage); retained on delete, the old
        # volume stays on its node.
        storage = self._args.sites_storage if purpose == "sites" else LocalStorage(kind="local")
        options = driver_options(storage)
        return docker.Volume(
            f"{name}-{purpose}-volume{suffix}",
            name=self._names.volume(purpose) + storage_suffix(storage),
            labels=self._labels(docker.VolumeLabelArgs),
            driver="local" if options else None,
            driver_opts=options or None,
            opts=opts,
        )

    def _root_password(self, name: str, opts: pulumi.ResourceOptions) -> docker.Secret:
        """The root password an empty data directory is initialised with, pinned: nothing about
        the MariaDB service changes when the password is rotated, so Swarm never restarts it.

        The image reads MARIADB_ROOT_PASSWORD_FILE on every start (docker-entrypoint.sh's
        docker_setup_env: the file must exist) but uses it only to initialise an empty data
        directory (docker_verify_minimum_env and docker_setup_db run only without
        $DATADIR/mysql); the live tier's stand-in (tests/live/images/mariadb_entrypoint.py) does
        the same. A rotation is SET PASSWORD inside the database (the rotate-db-root-password
        job, with the jobs' own secret of the current password, components/site_jobs.py), so
        the secret keeps the value and the name it was created with: a name that carries no
        fingerprint (no value ever replaces it), and ignore_changes for a stack whose secret
        was created, before the pin, under the fingerprinted name of its value then. Only a data
        directory initialised after a rotation sees the old value; how to repair that:
        docs/secrets.md#rotating-a-secret.
        """
        # Never protected: it holds no data (the value is in the stack config).
        pinned = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(protect=False, ignore_changes=list(PINNED_SECRET_INPUTS))
        )
        return named_secret(
            f"{name}-mariadb-root-password",
            self._names.secret(MARIADB_INITIAL_ROOT_PASSWORD),
            self._args.db_root_password,
            self._label_values(),
            pinned,
        )

    def _services(self, name: str, opts: pulumi.ResourceOptions) -> dict[str, docker.Service]:
        redis = {REDIS_CACHE: self._args.redis_cache, REDIS_QUEUE: self._args.redis_queue}
        specs = {
            MARIADB.name: self._mariadb(),
            **{row.name: self._redis(row, settings) for row, settings in redis.items()},
        }
        return {
            service: swarm_service(f"{name}-{service}", spec, opts)
            for service, spec in specs.items()
        }

    def _label_values(self) -> dict[str, str]:
        return layer_labels("data", self._args.environment)

    def _labels(self, label_type: type) -> list:
        return label_list(self._label_values(), label_type)

    def _warn_if_end_of_life(self) -> None:
        series = SUPPORTED_SERIES[self._args.mariadb.version]
        warning = series.end_of_life_warning(self._args.today or date.today())
        if warning:
            pulumi.log.warn(warning, resource=self)

    def _spec(self, service: str, **fields) -> ServiceSpec:
        args = self._args
        # stop-first (the catalogue's update order for data rows): two tasks of a data service
        # would share one volume, and two mysqld on one data directory is a corruption risk.
        return ServiceSpec(
            name=EnvironmentNames.service(self._names.data_stack, service),
            stack=self._names.data_stack,
            replicas=1,
            constraints=args.placement,
            endpoint_mode=args.endpoint_mode,
            health_timing=DATA_HEALTHCHECK,
            rollout=DATA_ROLLOUT,
            update_order=catalogue_row(service).update_order,
            labels=self._label_values(),
            **fields,
        )

    def _mariadb(self) -> ServiceSpec:
        settings = self._args.mariadb
        volume, password = self.volumes[MARIADB.name], self.root_password_secret
        flags = list(SUPPORTED_SERIES[settings.version].server_flags)
        flags.append(f"--innodb-buffer-pool-size={settings.buffer_pool_size}")
        if settings.slow_query_log:
            flags += [
                "--slow-query-log=1",
                "--slow-query-log-file=/var/lib/mysql/mariadb-slow.log",
                f"--long-query-time={settings.long_query_time:g}",
            ]
        return self._spec(
            MARIADB.name,
            image=self._args.mariadb_image,
            args=flags,
            env={
                "MARIADB_ROOT_PASSWORD_FILE": MARIADB_ROOT_PASSWORD_FILE,
                "MARIADB_AUTO_UPGRADE": "1",
            },
            networks=self._attachments(MARIADB),
            mounts=[Mount("/var/lib/mysql", volume.name)],
            secrets=[SecretFile(password.id, password.name, MARIADB_ROOT_PASSWORD_FILE)],
            limits=settings.limits,
            reservations=settings.reservations,
            health_test=MARIADB_HEALTHCHECK,
            # InnoDB needs time to flush the buffer pool; a SIGKILL means crash recovery.
            stop_grace_period="120s",
        )

    def _attachments(self, row: Service) -> list[Attachment]:
        """The catalogue's networks of a data service, under its alias."""
        return [
            Attachment(self.networks[role].id, row.aliases)
            for role in NETWORK_ROLES
            if role in row.networks
        ]

    def _redis(self, row: Service, settings: RedisSettings) -> ServiceSpec:
        service = row.name
        persistent = service in PERSISTENT_REDIS
        args = [
            "redis-server",
            "--maxmemory",
            str(settings.maxmemory),
            "--maxmemory-policy",
            REDIS_EVICTION_POLICY[service],
            "--appendonly",
            # The config refuses redisCache.appendonly: true.
            "yes" if persistent and settings.appendonly else "no",
        ]
        if not persistent:
            args += ["--save", ""]  # no RDB snapshots either
        return self._spec(
            service,
            image=self._args.redis_image,
            args=args,
            networks=self._attachments(row),
            mounts=[Mount("/data", self.volumes[service].name)] if persistent else [],
            limits=settings.limits,
            reservations=settings.reservations,
            health_test=REDIS_HEALTHCHECK,
        )
