"""Traefik v3 in front of every environment on the swarm.

One Traefik serves dev, staging and prod. The stack with ``ingress.manage: true`` runs it and
creates ``traefik-public`` and ``shared-services``; every other stack only looks the two networks
up by name. A standalone environment (local, alone on its own swarm) runs a Traefik of its own,
which is nobody else's: neither protected nor kept past a destroy. Either way the ingress hands
the app layer its ``routing``: which services Traefik routes to and their labels
(``components/traefik/routing.py``). What Traefik starts with (its arguments and environment) is
``components/traefik/static.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config.ingress import IngressSettings
from components.config.model import StackConfig
from components.config.nodes import MANAGER_CONSTRAINT
from components.config.sections import HealthcheckSettings, Resources, RolloutSettings
from components.platform.catalogue import (
    SHARED_SERVICES_NETWORK,
    STANDALONE_ENVIRONMENTS,
    TRAEFIK,
    TRAEFIK_CERTIFICATES_VOLUME,
    TRAEFIK_PUBLIC_NETWORK,
    TRAEFIK_STACK,
    EnvironmentNames,
    layer_labels,
)
from components.swarm.configs import fingerprinted_config
from components.swarm.services import (
    Attachment,
    ConfigFile,
    Mount,
    ServiceSpec,
    overlay_network,
    swarm_service,
)
from components.traefik.routing import Routing, SiteRoute, routing_labels
from components.traefik.static import (
    ACME_CA_CERTIFICATES_PATH,
    CERTIFICATES_PATH,
    PUBLISHED_PORTS,
    static_configuration,
)

LABELS = layer_labels("ingress")
TRAEFIK_HEALTHCHECK = HealthcheckSettings.model_validate(
    {"interval": "10s", "timeout": "5s", "retries": 3, "startPeriod": "20s"}
)
TRAEFIK_ROLLOUT = RolloutSettings.model_validate(
    {"parallelism": 1, "delay": "0s", "monitor": "30s", "convergeTimeout": "5m"}
)
TRAEFIK_LIMITS = Resources(cpus=1.0, memory=512 * 1024**2)
TRAEFIK_RESERVATIONS = Resources(cpus=0.1, memory=64 * 1024**2)


@dataclass(frozen=True)
class TraefikIngressArgs:
    settings: IngressSettings
    # By digest (components/images.py); None where this stack does not run Traefik.
    traefik_image: pulumi.Input[str] | None
    endpoint_mode: str
    # The environment whose app services this stack routes.
    site: SiteRoute
    # Seconds Traefik may spend reading one request, body included (a slow upload).
    read_timeout: int = 120
    # Where Traefik runs: managers, those that hold its certificate volume (placement.ingress).
    constraints: tuple[str, ...] = (MANAGER_CONSTRAINT,)

    @classmethod
    def from_config(
        cls, config: StackConfig, traefik_image: pulumi.Input[str] | None
    ) -> TraefikIngressArgs:
        # nginx gives the backend frappe.proxyReadTimeout; a request Traefik cut off earlier
        # (its default is 60 s) would never get there. The one Traefik serves every
        # environment and takes the value of the stack that runs it.
        return cls(
            settings=config.ingress,
            traefik_image=traefik_image,
            endpoint_mode=config.endpoint_mode,
            site=SiteRoute.from_config(config),
            read_timeout=config.frappe.proxy_read_timeout,
            constraints=tuple(config.placement.ingress),
        )


class TraefikIngress(pulumi.ComponentResource):
    public_network_id: pulumi.Output[str]
    shared_network_id: pulumi.Output[str]
    # For the app layer: the services Traefik routes to, with their labels.
    routing: Routing

    def __init__(
        self, name: str, args: TraefikIngressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("brandclub:swarm:TraefikIngress", name, None, opts)
        self.routing = routing_labels(args.site, args.settings)
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self))
        self.service: docker.Service | None = None
        if args.settings.manage:
            self._run_traefik(name, args, child)
        else:
            self._look_up_networks()
        self.register_outputs(
            {
                "publicNetworkId": self.public_network_id,
                "sharedNetworkId": self.shared_network_id,
            }
        )

    def _run_traefik(
        self, name: str, args: TraefikIngressArgs, opts: pulumi.ResourceOptions
    ) -> None:
        environment = args.site.environment
        standalone = environment in STANDALONE_ENVIRONMENTS
        # Every environment's routing goes through these: deleting them (say, ingress.manage
        # set false in this stack) would take all environments offline, so Pulumi refuses to
        # until someone unprotects them on purpose (docs/operations.md#moving-traefik). A
        # standalone environment's are its own, and its destroy removes them.
        shared_opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(protect=not standalone)
        )
        labels = layer_labels("ingress", environment) if standalone else LABELS
        public = overlay_network(
            f"{name}-public-network", TRAEFIK_PUBLIC_NETWORK, labels, shared_opts, attachable=True
        )
        shared = overlay_network(
            f"{name}-shared-network", SHARED_SERVICES_NETWORK, labels, shared_opts, attachable=True
        )
        self.public_network_id = public.id
        self.shared_network_id = shared.id
        certificates = self._certificates(name, args.settings, shared_opts)
        # Not protected: a new CA certificate is a new config, and the old one must go.
        ca_certificates = self._ca_certificates(name, args.settings, labels, opts)
        self.service = swarm_service(
            f"{name}-traefik",
            self._traefik(args, labels, public, certificates, ca_certificates),
            shared_opts,
        )

    @staticmethod
    def _certificates(
        name: str, settings: IngressSettings, opts: pulumi.ResourceOptions
    ) -> docker.Volume | None:
        """Where the ACME resolver keeps its account and certificates; none without one."""
        if settings.certificates != "acme":
            return None
        # Let's Encrypt limits how often a certificate may be reissued: keep the account and
        # certificates even when this stack is destroyed, and protect them like the rest of
        # the shared ingress (every environment's certificates are in it).
        return docker.Volume(
            f"{name}-certificates-volume",
            name=TRAEFIK_CERTIFICATES_VOLUME,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=True)),
        )

    @staticmethod
    def _ca_certificates(
        name: str, settings: IngressSettings, labels: dict[str, str], opts: pulumi.ResourceOptions
    ) -> list[ConfigFile]:
        """The private ACME CA's certificates as a Docker config (public, named by content)."""
        if settings.acme_ca_certificate is None:
            return []
        config = fingerprinted_config(
            f"{name}-acme-ca-certificates",
            f"{TRAEFIK_STACK}-acme-ca-certificates",
            settings.acme_ca_certificate,
            labels,
            opts,
        )
        return [ConfigFile(config.id, config.name, ACME_CA_CERTIFICATES_PATH)]

    def _look_up_networks(self) -> None:
        # Fails the preview with Docker's "network not found" until the owning stack is up.
        lookup = pulumi.InvokeOutputOptions(parent=self)
        self.public_network_id = docker.get_network_output(
            name=TRAEFIK_PUBLIC_NETWORK, opts=lookup
        ).id
        self.shared_network_id = docker.get_network_output(
            name=SHARED_SERVICES_NETWORK, opts=lookup
        ).id

    def _traefik(
        self,
        args: TraefikIngressArgs,
        labels: dict[str, str],
        public: docker.Network,
        certificates: docker.Volume | None,
        ca_certificates: list[ConfigFile],
    ) -> ServiceSpec:
        assert args.traefik_image is not None, "ingress.manage: the images resolve Traefik's"
        static = static_configuration(args.settings, args.read_timeout)
        return ServiceSpec(
            name=EnvironmentNames.service(TRAEFIK_STACK, TRAEFIK.name),
            stack=TRAEFIK_STACK,
            image=args.traefik_image,
            args=static.arguments,
            env=static.environment,
            replicas=1,
            limits=TRAEFIK_LIMITS,
            reservations=TRAEFIK_RESERVATIONS,
            networks=[Attachment(public.id)],
            mounts=[
                Mount("/var/run/docker.sock", "/var/run/docker.sock", type="bind", read_only=True),
                *([Mount(CERTIFICATES_PATH, certificates.name)] if certificates else []),
            ],
            configs=ca_certificates,
            health_test=("CMD", "traefik", "healthcheck", "--ping"),
            health_timing=TRAEFIK_HEALTHCHECK,
            rollout=TRAEFIK_ROLLOUT,
            # Host-mode ports 80/443 can be bound by one task at a time on a node, so a
            # start-first update could never start its new task.
            update_order=TRAEFIK.update_order,
            endpoint_mode=args.endpoint_mode,
            labels=labels,
            # The Swarm provider reads services from a manager's Docker API (config refuses
            # constraints without node.role == manager); the certificates are on that node.
            constraints=args.constraints,
            # Ping and metrics are Traefik's own entrypoints, reachable on traefik-public only.
            ports=PUBLISHED_PORTS,
        )
