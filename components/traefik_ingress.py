"""Traefik v3 in front of every environment on the swarm, and the routing labels it reads.

One Traefik serves dev, staging and prod. The stack with ``ingress.manage: true`` runs it and
creates ``traefik-public`` and ``shared-services``; every other stack only looks the two networks
up by name and attaches its routing labels to its own services. What Traefik starts with (its
arguments and environment) is ``components/traefik_static.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import (
    HealthcheckSettings,
    IngressSettings,
    Resources,
    RolloutSettings,
    StackConfig,
)
from components.docker_configs import fingerprinted_config
from components.frappe_processes import APP_PROCESSES
from components.naming import (
    SHARED_SERVICES_NETWORK,
    TRAEFIK_CERTIFICATES_VOLUME,
    TRAEFIK_PUBLIC_NETWORK,
    TRAEFIK_STACK,
    EnvironmentNames,
)
from components.swarm import (
    Attachment,
    ConfigFile,
    Mount,
    ServiceSpec,
    overlay_network,
    swarm_service,
)
from components.traefik_static import (
    ACME_CA_CERTIFICATES_PATH,
    CERT_RESOLVER,
    CERTIFICATES_PATH,
    CONSTRAINT_LABEL,
    HTTPS_ENTRYPOINT,
    PUBLISHED_PORTS,
    static_configuration,
)

LABELS = {"brandclub.layer": "ingress"}
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
    # Seconds Traefik may spend reading one request, body included (a slow upload).
    read_timeout: int = 120

    @classmethod
    def from_config(
        cls, config: StackConfig, traefik_image: pulumi.Input[str] | None
    ) -> TraefikIngressArgs:
        # nginx gives the backend frappe.proxyReadTimeout; a request Traefik cut off earlier
        # (its default is 60 s) would never get there. The one Traefik serves every
        # environment and takes the value of the stack that runs it.
        return cls(
            config.ingress,
            traefik_image,
            config.endpoint_mode,
            read_timeout=config.frappe.proxy_read_timeout,
        )


class TraefikIngress(pulumi.ComponentResource):
    public_network_id: pulumi.Output[str]
    shared_network_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: TraefikIngressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("brandclub:swarm:TraefikIngress", name, None, opts)
        self._settings = args.settings
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
        # Every environment's routing goes through these: deleting them (say, ingress.manage
        # set false in this stack) would take all environments offline, so Pulumi refuses to
        # until someone unprotects them on purpose (README, "Moving Traefik").
        shared_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True))
        public = overlay_network(
            f"{name}-public-network", TRAEFIK_PUBLIC_NETWORK, LABELS, shared_opts, attachable=True
        )
        shared = overlay_network(
            f"{name}-shared-network", SHARED_SERVICES_NETWORK, LABELS, shared_opts, attachable=True
        )
        self.public_network_id = public.id
        self.shared_network_id = shared.id
        # Let's Encrypt limits how often a certificate may be reissued: keep the account and
        # certificates even when this stack is destroyed.
        certificates = docker.Volume(
            f"{name}-certificates-volume",
            name=TRAEFIK_CERTIFICATES_VOLUME,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        # Not protected: a new CA certificate is a new config, and the old one must go.
        ca_certificates = self._ca_certificates(name, args.settings, opts)
        self.service = swarm_service(
            f"{name}-traefik",
            self._traefik(args, public, certificates, ca_certificates),
            shared_opts,
        )

    @staticmethod
    def _ca_certificates(
        name: str, settings: IngressSettings, opts: pulumi.ResourceOptions
    ) -> list[ConfigFile]:
        """The private ACME CA's certificates as a Docker config (public, named by content)."""
        if settings.acme_ca_certificate is None:
            return []
        config = fingerprinted_config(
            f"{name}-acme-ca-certificates",
            f"{TRAEFIK_STACK}-acme-ca-certificates",
            settings.acme_ca_certificate,
            LABELS,
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
        public: docker.Network,
        certificates: docker.Volume,
        ca_certificates: list[ConfigFile],
    ) -> ServiceSpec:
        assert args.traefik_image is not None, "ingress.manage: the images resolve Traefik's"
        static = static_configuration(args.settings, args.read_timeout)
        return ServiceSpec(
            name=EnvironmentNames.service(TRAEFIK_STACK, "traefik"),
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
                Mount(CERTIFICATES_PATH, certificates.name),
            ],
            configs=ca_certificates,
            health_test=("CMD", "traefik", "healthcheck", "--ping"),
            health_timing=TRAEFIK_HEALTHCHECK,
            rollout=TRAEFIK_ROLLOUT,
            # Host-mode ports 80/443 can be bound by one task at a time on a node, so a
            # start-first update could never start its new task.
            update_order="stop-first",
            endpoint_mode=args.endpoint_mode,
            labels=LABELS,
            # The Swarm provider reads services from the manager's Docker API.
            constraints=("node.role == manager",),
            # Ping and metrics are Traefik's own entrypoints, reachable on traefik-public only.
            ports=PUBLISHED_PORTS,
        )

    def routing_labels(self, config: StackConfig) -> dict[str, dict[str, str]]:
        """Service-level labels that route an environment's domains through this Traefik."""
        return routing_labels(config, self._settings.constraint_label)


def _port(service: str) -> int:
    port = next(p.port for p in APP_PROCESSES if p.service == service)
    assert port is not None
    return port


def security_headers(settings: IngressSettings) -> dict[str, str]:
    """Response headers for the environment's middleware.

    nginx in the Frappe image already sends X-Frame-Options, X-Content-Type-Options,
    X-XSS-Protection, Referrer-Policy and an HSTS header, so those are not repeated here. Traefik
    *sets* (replaces) a custom response header, and an empty value removes it: that is how HSTS
    is made an explicit per-environment choice instead of nginx's blanket two-year preload.
    """
    headers = {"X-Permitted-Cross-Domain-Policies": "none"}
    hsts = settings.hsts
    if hsts.enabled:
        value = f"max-age={hsts.max_age}"
        value += "; includeSubDomains" if hsts.include_subdomains else ""
        value += "; preload" if hsts.preload else ""
        headers["Strict-Transport-Security"] = value
    else:
        headers["Strict-Transport-Security"] = ""
    if settings.noindex:
        headers["X-Robots-Tag"] = "noindex, nofollow"
    if settings.content_security_policy:
        headers["Content-Security-Policy"] = settings.content_security_policy
    return headers


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _host_rule(domains: list[str]) -> str:
    return " || ".join(f"Host(`{domain}`)" for domain in domains)


def _middleware(name: str, kind: str, settings: dict[str, str]) -> dict[str, str]:
    return {f"traefik.http.middlewares.{name}.{kind}.{key}": v for key, v in settings.items()}


def routing_labels(config: StackConfig, constraint_label: str) -> dict[str, dict[str, str]]:
    """Traefik labels per app service. They go on the *service* (``deploy.labels``): on Swarm,
    Traefik never sees container labels.

    Only the site's own domain is served; every other domain answers with a permanent redirect
    to it. Frappe's realtime server refuses a connection whose Origin host is not its Host, and
    one whose namespace is not the site name, so the site works under exactly one name.
    """
    env = f"brandclub-{config.environment}"
    site = config.site_name
    middleware = f"{env}-headers"
    observe = config.ingress
    common = {
        "traefik.enable": "true",
        CONSTRAINT_LABEL: constraint_label,
        "traefik.swarm.network": TRAEFIK_PUBLIC_NETWORK,
    }

    def router(name: str, service: str, rule: str, *middlewares: str) -> dict[str, str]:
        prefix = f"traefik.http.routers.{name}"
        return {
            f"{prefix}.rule": rule,
            f"{prefix}.entrypoints": HTTPS_ENTRYPOINT,
            f"{prefix}.tls": "true",
            f"{prefix}.tls.certresolver": CERT_RESOLVER,
            f"{prefix}.middlewares": ",".join(middlewares),
            f"{prefix}.service": service,
            # This environment's own choice, within what the Traefik of the swarm records.
            f"{prefix}.observability.accessLogs": _flag(observe.access_log.enabled),
            f"{prefix}.observability.metrics": _flag(observe.metrics.enabled),
        }

    def route(
        name: str, service: str, rule: str, port: int, cookie: str, *middlewares: str
    ) -> dict[str, str]:
        prefix_service = f"traefik.http.services.{service}.loadbalancer"
        return {
            **router(name, service, rule, middleware, *middlewares),
            f"{prefix_service}.server.port": str(port),
            # Frappe keeps session state per worker process; stickiness keeps a browser on
            # one replica. Not lbswarm: Swarm's VIP would balance and lose the cookie's effect.
            f"{prefix_service}.sticky.cookie": "true",
            f"{prefix_service}.sticky.cookie.name": cookie,
            f"{prefix_service}.sticky.cookie.secure": "true",
            f"{prefix_service}.sticky.cookie.httpOnly": "true",
            f"{prefix_service}.sticky.cookie.sameSite": "lax",
        }

    frontend_service = f"{env}-frontend"
    frontend = {
        **common,
        **route(
            env,
            frontend_service,
            _host_rule([site]),
            _port("frontend"),
            f"{env}-lb".replace("-", "_"),
        ),
        **_middleware(
            middleware,
            "headers",
            {f"customResponseHeaders.{k}": v for k, v in security_headers(config.ingress).items()},
        ),
    }
    others = [domain for domain in config.domains if domain != site]
    if others:
        # Permanent, to the same path on the site's domain: Traefik v3 answers 301 to a GET and
        # 308 (method and body kept) to anything else. The router needs a service; the redirect
        # answers before the request would reach it.
        to_site = f"{env}-to-site"
        frontend |= router(
            f"{env}-redirect", frontend_service, _host_rule(others), middleware, to_site
        )
        frontend |= _middleware(
            to_site,
            "redirectregex",
            {"regex": "^https?://[^/]+(.*)$", "replacement": f"https://{site}${{1}}"}
            | {"permanent": "true"},
        )
    labels = {"frontend": frontend}
    if config.ingress.websocket_direct:
        # Socket.IO's long-polling transport sends each request anew; unless every request of a
        # session reaches the same websocket replica, the handshake is lost. nginx reaches the
        # websocket service through Swarm's balancing, which is not sticky.
        realtime = f"{env}-realtime"
        labels["websocket"] = {
            **common,
            **route(
                f"{env}-socketio",
                f"{env}-websocket",
                f"{_host_rule([site])} && PathPrefix(`/socket.io`)",
                _port("websocket"),
                f"{env}-io".replace("-", "_"),
                realtime,
            ),
            # What nginx sets on its /socket.io location (components/nginx/frappe.conf.template
            # says why this Origin works): the realtime server checks the session at
            # <Origin>/api/method/frappe.realtime.get_user_info, and http://<site>:8080 is the
            # frontend on the realtime network, not the public domain. The host name stays the
            # site's, which is what Host carries here, so its Origin-equals-Host check passes;
            # the site header gives the namespace the browser joins (the site name).
            **_middleware(
                realtime,
                "headers",
                {
                    "customRequestHeaders.Origin": f"http://{site}:{_port('frontend')}",
                    "customRequestHeaders.X-Frappe-Site-Name": site,
                },
            ),
        }
    return labels
