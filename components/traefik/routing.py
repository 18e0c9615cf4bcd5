"""The routing labels the ingress hands the app layer: which app services Traefik routes to, and
how (routers, the sticky load balancer, security headers, the redirect of every other domain).

A service the routing names joins traefik-public; its port is the catalogue's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.config.ingress import IngressSettings
from components.config.model import StackConfig
from components.platform.catalogue import (
    CONSTRAINT_LABEL,
    FRONTEND,
    TRAEFIK_PUBLIC_NETWORK,
    WEBSOCKET,
    EnvironmentNames,
)
from components.traefik.static import CERT_RESOLVER, HTTPS_ENTRYPOINT

# Service name -> the Traefik labels on that service.
Routing = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class SiteRoute:
    """What an environment's routes are made of: its name, its site and every domain."""

    environment: str
    site_name: str
    domains: tuple[str, ...]

    @classmethod
    def from_config(cls, config: StackConfig) -> SiteRoute:
        return cls(
            environment=config.environment,
            site_name=config.site_name,
            domains=tuple(config.domains),
        )


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


def routing_labels(site: SiteRoute, settings: IngressSettings) -> Routing:
    """Traefik labels per app service. They go on the *service* (``deploy.labels``): on Swarm,
    Traefik never sees container labels.

    Only the site's own domain is served; every other domain answers with a permanent redirect
    to it. Frappe's realtime server refuses a connection whose Origin host is not its Host, and
    one whose namespace is not the site name, so the site works under exactly one name.
    """
    env = EnvironmentNames(site.environment).app_stack
    site_name = site.site_name
    middleware = f"{env}-headers"
    common = {
        "traefik.enable": "true",
        CONSTRAINT_LABEL: settings.constraint_label,
        "traefik.swarm.network": TRAEFIK_PUBLIC_NETWORK,
    }

    def router(name: str, service: str, rule: str, *middlewares: str) -> dict[str, str]:
        prefix = f"traefik.http.routers.{name}"
        # Without a resolver (ingress.certificates: default) Traefik serves its default
        # certificate for a TLS router.
        resolver = (
            {f"{prefix}.tls.certresolver": CERT_RESOLVER} if settings.certificates == "acme" else {}
        )
        return {
            f"{prefix}.rule": rule,
            f"{prefix}.entrypoints": HTTPS_ENTRYPOINT,
            f"{prefix}.tls": "true",
            **resolver,
            f"{prefix}.middlewares": ",".join(middlewares),
            f"{prefix}.service": service,
            # This environment's own choice, within what the Traefik of the swarm records.
            f"{prefix}.observability.accessLogs": _flag(settings.access_log.enabled),
            f"{prefix}.observability.metrics": _flag(settings.metrics.enabled),
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

    frontend_service = f"{env}-{FRONTEND.name}"
    frontend = {
        **common,
        **route(
            env,
            frontend_service,
            _host_rule([site_name]),
            FRONTEND.port,
            f"{env}-lb".replace("-", "_"),
        ),
        **_middleware(
            middleware,
            "headers",
            {f"customResponseHeaders.{k}": v for k, v in security_headers(settings).items()},
        ),
    }
    others = [domain for domain in site.domains if domain != site_name]
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
            {"regex": "^https?://[^/]+(.*)$", "replacement": f"https://{site_name}${{1}}"}
            | {"permanent": "true"},
        )
    labels = {FRONTEND.name: frontend}
    if settings.websocket_direct:
        # Socket.IO's long-polling transport sends each request anew; unless every request of a
        # session reaches the same websocket replica, the handshake is lost. Traefik's sticky
        # cookie keeps it there on this route, one hop shorter than through the frontend (whose
        # nginx keeps a client on one task by its address: components/nginx/frappe.conf.template).
        realtime = f"{env}-realtime"
        labels[WEBSOCKET.name] = {
            **common,
            **route(
                f"{env}-socketio",
                f"{env}-{WEBSOCKET.name}",
                f"{_host_rule([site_name])} && PathPrefix(`/socket.io`)",
                WEBSOCKET.port,
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
                    "customRequestHeaders.Origin": f"http://{site_name}:{FRONTEND.port}",
                    "customRequestHeaders.X-Frappe-Site-Name": site_name,
                },
            ),
        }
    return labels
