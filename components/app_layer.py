"""The application stack of one environment: the Frappe processes.

It never creates a network or a volume. It joins the data layer's and the ingress's networks,
which it is handed by id, and mounts the data layer's volumes by name, so an app rollout can
never change the lifecycle of either. Its own resources are the services, their Docker configs
(the nginx template) and the backup's off-site secrets. It is handed application settings only,
and of the secrets only those its services mount.

The backend rolls out first: every other Frappe service waits until the backend's update has
converged. A release whose backend fails its health check is rolled back there, and Pulumi then
updates none of the others, so the Frappe services never end up split across two images by a
failed backend (the boot-check job has already started the new image's other processes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.config.model import StackConfig
from components.frappe.jobs import SECRET_FILES
from components.frappe.processes import (
    BACKUPS_PATH,
    DRILL_STATE_PATH,
    LOGS_PATH,
    SITES_PATH,
    AppProcess,
    AppSettings,
    OffsiteFiles,
    app_processes,
)
from components.platform.catalogue import (
    BACKEND,
    FRONTEND,
    NETWORK_ROLES,
    RESTORE_DRILL,
    SINGLETON_LABEL,
    EnvironmentNames,
    NetworkRole,
    layer_labels,
)
from components.swarm.configs import CONFIG_FILES, ConfigRole, fingerprinted_config
from components.swarm.secrets import rotating_secret
from components.swarm.services import (
    Attachment,
    ConfigFile,
    Mount,
    Networks,
    RegistryCredentials,
    SecretFile,
    ServiceSpec,
    swarm_service,
)
from components.traefik.routing import Routing


@dataclass(frozen=True)
class AppVolumes:
    sites: pulumi.Input[str]
    logs: pulumi.Input[str]
    # The sites volume's local-driver options where it lives on shared storage.
    sites_driver_options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppSecrets:
    """Of the stack's secrets, only those the app services use."""

    # Keys the fingerprint in Docker secret names (components/swarm/secrets.py).
    secret_name_key: str
    # The backup service's off-site credentials as files, where it copies off site.
    offsite: OffsiteFiles | None = None
    # Where the app image is private: what every node pulls it with.
    registry: RegistryCredentials | None = None
    # MariaDB's root password, where the restore drill runs (it creates and drops its
    # throwaway databases as root, as the site jobs do).
    drill_db_root_password: str | None = None

    @classmethod
    def from_config(cls, config: StackConfig) -> AppSecrets:
        registry = None
        if config.registry.username is not None and config.registry_password is not None:
            registry = RegistryCredentials(
                server=config.registry.server,
                username=config.registry.username,
                password=config.registry_password.get_secret_value(),
            )
        drill = config.services.get(RESTORE_DRILL.name) is not None
        return cls(
            secret_name_key=config.secret_name_key.get_secret_value(),
            offsite=OffsiteFiles.from_config(config),
            registry=registry,
            drill_db_root_password=config.db_root_password.get_secret_value() if drill else None,
        )


@dataclass(frozen=True)
class AppLayerArgs:
    """Application settings and secrets (``AppSettings.from_config``, ``AppSecrets.from_config``)
    and what the other layers hand over."""

    settings: AppSettings
    secrets: AppSecrets
    # The app image by digest (components/images.py).
    image: pulumi.Input[str]
    # By id, every role, traefik-public included.
    networks: Networks
    volumes: AppVolumes
    # What the ingress routes to, and how: Traefik's labels per service.
    routing: Routing
    # mailpit by digest, where services.mailpit is set.
    mailpit_image: pulumi.Input[str] | None = None


class AppLayer(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: AppLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("brandclub:swarm:AppLayer", name, None, opts)
        self._args = args
        self._names = EnvironmentNames(args.settings.environment)
        self.stack_name = self._names.app_stack
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self))
        services = args.settings.services
        enabled = [p for p in app_processes() if services.get(p.service) is not None]
        self._backup_secrets = self._offsite_secrets(name, child)
        self._drill_secrets = self._drill_root_password(name, child)
        self._configs = self._docker_configs(name, enabled, child)
        self.services = {}
        backend = next(p for p in enabled if p.service == BACKEND.name)
        self.services[BACKEND.name] = swarm_service(
            f"{name}-{BACKEND.name}", self._spec(backend), child
        )
        after_backend = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[self.services[BACKEND.name]])
        )
        for process in enabled:
            if process.service == BACKEND.name:
                continue
            # Waiting for the backend is for Frappe processes; mailpit runs another image.
            opts_for = after_backend if process.runs_frappe else child
            self.services[process.service] = swarm_service(
                f"{name}-{process.service}", self._spec(process), opts_for
            )
        self.service_names = pulumi.Output.all(*(s.name for s in self.services.values()))
        self.register_outputs({"serviceNames": self.service_names})

    def _labels(self) -> dict[str, str]:
        return layer_labels("app", self._args.settings.environment)

    def _offsite_secrets(self, name: str, opts: pulumi.ResourceOptions) -> list[SecretFile]:
        """The backup service's off-site credentials (and pinned SSH host keys) as secret files."""
        offsite = self._args.secrets.offsite
        if offsite is None:
            return []
        return [
            self._secret_file(name, path.rsplit("/", 1)[1], value, path, opts)
            for path, value in offsite.files.items()
        ]

    def _drill_root_password(self, name: str, opts: pulumi.ResourceOptions) -> list[SecretFile]:
        """The root password as the restore drill's secret file, at the site jobs' path. Its own
        Docker secret: the site jobs' one is theirs (a name Docker holds once)."""
        value = self._args.secrets.drill_db_root_password
        if value is None:
            return []
        purpose = f"{RESTORE_DRILL.name}-db-root-password"
        path = SECRET_FILES["db-root-password"]
        return [self._secret_file(name, purpose, value, path, opts)]

    def _secret_file(
        self, name: str, purpose: str, value: str, path: str, opts: pulumi.ResourceOptions
    ) -> SecretFile:
        """A Docker secret of this stack named after ``purpose`` (and its value's fingerprint),
        mounted at ``path``."""
        secret = rotating_secret(
            f"{name}-{purpose}",
            f"{self.stack_name}-{purpose}",
            value,
            self._labels(),
            opts,
            name_key=self._args.secrets.secret_name_key,
        )
        return SecretFile(secret.id, secret.name, path)

    def _docker_configs(
        self, name: str, enabled: list[AppProcess], opts: pulumi.ResourceOptions
    ) -> dict[ConfigRole, ConfigFile]:
        """The Docker configs the enabled processes mount, one per role."""
        configs = {}
        roles = {role for process in enabled for role in process.config_roles(self._args.settings)}
        for role in sorted(roles):
            file = CONFIG_FILES[role]
            config = fingerprinted_config(
                f"{name}-{role}", f"{self.stack_name}-{role}", file.content, self._labels(), opts
            )
            configs[role] = ConfigFile(config.id, config.name, file.target)
        return configs

    def _network_roles(self, process: AppProcess) -> frozenset[NetworkRole]:
        routed: frozenset[NetworkRole] = frozenset({"public"})
        return process.row.networks | (routed if process.service in self._args.routing else set())

    def _dns_names(self, process: AppProcess, role: NetworkRole) -> tuple[str, ...]:
        # The short alias ("backend", "redis-queue") is the name Frappe's config and nginx use.
        # It is given only on the environment's own networks: on traefik-public every
        # environment's frontend would answer to "frontend".
        if role in ("internal", "database"):
            return process.row.aliases
        # On the realtime network the frontend answers to the site's name, so the realtime
        # server's session check (http://<site>:8080/...) reaches nginx. Only the websocket
        # shares this network: the backend and workers still resolve the site's name to the
        # public site, as links they build must.
        if role == "realtime" and process.row == FRONTEND:
            return (self._args.settings.site_name,)
        return ()

    def _attachments(self, process: AppProcess) -> list[Attachment]:
        roles = self._network_roles(process)
        return [
            Attachment(self._args.networks[role], self._dns_names(process, role))
            for role in NETWORK_ROLES
            if role in roles
        ]

    def _mounts(self, process: AppProcess) -> list[Mount]:
        mounts = []
        if process.mounts_sites:
            mounts += [
                Mount(
                    SITES_PATH,
                    self._args.volumes.sites,
                    driver_options=self._args.volumes.sites_driver_options,
                ),
                Mount(LOGS_PATH, self._args.volumes.logs),
            ]
        backup = self._args.settings.backup
        if process.backups_mount:
            mounts.append(Mount(BACKUPS_PATH, backup.host_path, type="bind"))
        if process.drill:
            # It reads the backups and never writes there; its results go to its own folder.
            mounts.append(Mount(BACKUPS_PATH, backup.host_path, type="bind", read_only=True))
            mounts.append(Mount(DRILL_STATE_PATH, backup.drill_state_path, type="bind"))
        return mounts

    def _secrets(self, process: AppProcess) -> list[SecretFile]:
        if process.backups_mount:
            return self._backup_secrets
        return self._drill_secrets if process.drill else []

    def _spec(self, process: AppProcess) -> ServiceSpec:
        args = self._args
        settings = args.settings.services.get(process.service)
        assert settings is not None
        image = args.image if process.runs_frappe else args.mailpit_image
        assert image is not None, f"{process.service}: no image resolved"
        placement = process.placement(args.settings, settings.replicas)
        labels = self._labels() | ({SINGLETON_LABEL: "true"} if process.row.singleton else {})
        return ServiceSpec(
            name=EnvironmentNames.service(self._names.app_stack, process.service),
            stack=self._names.app_stack,
            image=image,
            args=process.service_command(args.settings),
            env=dict(process.env(args.settings)),
            replicas=settings.replicas,
            limits=settings.limits,
            reservations=settings.reservations,
            networks=self._attachments(process),
            mounts=self._mounts(process),
            secrets=self._secrets(process),
            configs=[self._configs[role] for role in process.config_roles(args.settings)],
            health_test=process.health(args.settings),
            health_timing=args.settings.healthcheck,
            rollout=args.settings.rollout,
            update_order=process.row.update_order,
            endpoint_mode=args.settings.endpoint_mode,
            labels={**labels, **args.routing.get(process.service, {})},
            constraints=placement.constraints,
            spread=placement.spread,
            max_replicas=placement.max_replicas,
            stop_grace_period=process.service_stop_grace_period(args.settings),
            registry=args.secrets.registry if process.runs_frappe else None,
            init=process.init,
        )
