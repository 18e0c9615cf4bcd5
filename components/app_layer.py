"""The application stack of one environment: the Frappe processes.

It never creates a network or a volume. It joins the data layer's and the ingress's networks,
which it is handed by id, and mounts the data layer's volumes by name, so an app rollout can
never change the lifecycle of either. Its own resources are the services, their Docker configs
(the nginx template) and the backup's off-site secrets.

The backend rolls out first: every other Frappe service waits until the backend's update has
converged. A release whose backend fails its health check is rolled back there, and Pulumi then
updates none of the others, so the Frappe services never end up split across two images by a
failed backend (the preflight job has already run the same checks against the new image).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.config import RsyncOffsite, StackConfig
from components.docker_configs import CONFIG_FILES, ConfigRole, fingerprinted_config
from components.frappe_processes import (
    APP_PROCESSES,
    BACKEND,
    BACKUPS_PATH,
    LOGS_PATH,
    OFFSITE_KNOWN_HOSTS_FILE,
    OFFSITE_SECRET_FILE,
    SITES_PATH,
    AppProcess,
    NetworkRole,
)
from components.naming import EnvironmentNames
from components.swarm import (
    Attachment,
    ConfigFile,
    Mount,
    RegistryCredentials,
    SecretFile,
    ServiceSpec,
    swarm_service,
)
from components.swarm_secrets import rotating_secret


@dataclass(frozen=True)
class AppNetworks:
    internal: pulumi.Input[str]
    database: pulumi.Input[str]
    realtime: pulumi.Input[str]
    public: pulumi.Input[str]


@dataclass(frozen=True)
class AppVolumes:
    sites: pulumi.Input[str]
    logs: pulumi.Input[str]


@dataclass(frozen=True)
class AppLayerArgs:
    config: StackConfig
    # The app image by digest (components/images.py).
    image: pulumi.Input[str]
    networks: AppNetworks
    volumes: AppVolumes
    # Traefik's service-level labels per service name, from the ingress.
    routing_labels: Mapping[str, Mapping[str, str]]
    # mailpit by digest, where services.mailpit is set.
    mailpit_image: pulumi.Input[str] | None = None


class AppLayer(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: AppLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("brandclub:swarm:AppLayer", name, None, opts)
        self._args = args
        self._names = EnvironmentNames(args.config.environment)
        self.stack_name = self._names.app_stack
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self))
        self._backup_secrets = self._offsite_secrets(name, child)
        self._configs = self._docker_configs(name, child)
        enabled = [p for p in APP_PROCESSES if args.config.services.get(p.service) is not None]
        self.services = {}
        backend = next(p for p in enabled if p.service == BACKEND)
        self.services[BACKEND] = swarm_service(f"{name}-{BACKEND}", self._spec(backend), child)
        after_backend = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[self.services[BACKEND]])
        )
        for process in enabled:
            if process.service == BACKEND:
                continue
            # Waiting for the backend is for Frappe processes; mailpit runs another image.
            opts_for = after_backend if process.runs_frappe else child
            self.services[process.service] = swarm_service(
                f"{name}-{process.service}", self._spec(process), opts_for
            )
        self.service_names = pulumi.Output.all(*(s.name for s in self.services.values()))
        self.register_outputs({"serviceNames": self.service_names})

    def _labels(self) -> dict[str, str]:
        return {"brandclub.environment": self._args.config.environment, "brandclub.layer": "app"}

    def _offsite_secrets(self, name: str, opts: pulumi.ResourceOptions) -> list[SecretFile]:
        """The backup service's off-site credentials (and pinned SSH host keys) as secret files."""
        config = self._args.config
        offsite = config.backup.offsite
        if config.services.backup is None or offsite is None:
            return []
        assert config.backup_offsite_secret is not None  # required by the config model
        files = {OFFSITE_SECRET_FILE: config.backup_offsite_secret.get_secret_value()}
        # Host keys are not secret, but a secret is the one way to hand a service a file.
        if isinstance(offsite, RsyncOffsite) and offsite.known_hosts:
            files[OFFSITE_KNOWN_HOSTS_FILE] = offsite.known_hosts
        secrets = []
        for path, value in files.items():
            purpose = path.rsplit("/", 1)[1]
            secret = rotating_secret(
                f"{name}-{purpose}",
                f"{self.stack_name}-{purpose}",
                value,
                self._labels(),
                opts,
                name_key=config.secret_name_key.get_secret_value(),
            )
            secrets.append(SecretFile(secret.id, secret.name, path))
        return secrets

    def _docker_configs(
        self, name: str, opts: pulumi.ResourceOptions
    ) -> dict[ConfigRole, ConfigFile]:
        """The Docker configs the enabled processes mount, one per role."""
        roles = {
            role
            for process in APP_PROCESSES
            if self._args.config.services.get(process.service) is not None
            for role in process.configs
        }
        configs = {}
        for role in sorted(roles):
            file = CONFIG_FILES[role]
            config = fingerprinted_config(
                f"{name}-{role}", f"{self.stack_name}-{role}", file.content, self._labels(), opts
            )
            configs[role] = ConfigFile(config.id, config.name, file.target)
        return configs

    def _registry(self) -> RegistryCredentials | None:
        config = self._args.config
        if config.registry.username is None or config.registry_password is None:
            return None
        return RegistryCredentials(
            config.registry.server,
            config.registry.username,
            config.registry_password.get_secret_value(),
        )

    def _network_roles(self, process: AppProcess) -> frozenset[NetworkRole]:
        roles = process.networks
        if process.service == "websocket" and self._args.config.ingress.websocket_direct:
            roles |= {"public"}
        return roles

    def _attachments(self, process: AppProcess) -> list[Attachment]:
        networks = self._args.networks
        roles = self._network_roles(process)
        attachments = []
        # The short alias ("backend", "redis-queue") is the name Frappe's config and nginx use.
        # It is given only on the environment's own networks: on traefik-public every
        # environment's frontend would answer to "frontend".
        if "internal" in roles:
            attachments.append(Attachment(networks.internal, (process.service,)))
        if "database" in roles:
            attachments.append(Attachment(networks.database, (process.service,)))
        if "realtime" in roles:
            # On the realtime network the frontend answers to the site's name, so the realtime
            # server's session check (http://<site>:8080/...) reaches nginx. Only the websocket
            # shares this network: the backend and workers still resolve the site's name to the
            # public site, as links they build must.
            aliases = (self._args.config.site_name,) if process.service == "frontend" else ()
            attachments.append(Attachment(networks.realtime, aliases))
        if "public" in roles:
            attachments.append(Attachment(networks.public))
        return attachments

    def _mounts(self, process: AppProcess) -> list[Mount]:
        mounts = []
        if process.runs_frappe:
            mounts += [
                Mount(SITES_PATH, self._args.volumes.sites),
                Mount(LOGS_PATH, self._args.volumes.logs),
            ]
        if process.backups_mount:
            mounts.append(Mount(BACKUPS_PATH, self._args.config.backup.host_path, type="bind"))
        return mounts

    def _spec(self, process: AppProcess) -> ServiceSpec:
        config = self._args.config
        settings = config.services.get(process.service)
        assert settings is not None
        image = self._args.image if process.runs_frappe else self._args.mailpit_image
        assert image is not None, f"{process.service}: no image resolved"
        # Backups are written next to the database volume's node, so follow the data placement.
        constraints = config.placement.data if process.backups_mount else config.placement.app
        return ServiceSpec(
            name=EnvironmentNames.service(self._names.app_stack, process.service),
            stack=self._names.app_stack,
            image=image,
            args=process.command,
            env=dict(process.env(config)),
            replicas=settings.replicas,
            limits=settings.limits,
            reservations=settings.reservations,
            networks=self._attachments(process),
            mounts=self._mounts(process),
            secrets=self._backup_secrets if process.backups_mount else (),
            configs=[self._configs[role] for role in process.configs],
            health_test=process.health(config),
            health_timing=config.healthcheck,
            rollout=config.rollout,
            update_order="stop-first" if process.singleton else "start-first",
            endpoint_mode=config.endpoint_mode,
            labels={**self._labels(), **self._args.routing_labels.get(process.service, {})},
            constraints=tuple(constraints),
            stop_grace_period=process.stop_grace_period,
            registry=self._registry() if process.runs_frappe else None,
        )
