"""The routing the ingress hands the app layer (components/traefik/routing.py): service-level
labels, header middlewares, the redirect of every other domain and the direct realtime route."""

from __future__ import annotations

import re

import pytest

from components.config.loader import ConfigError
from components.swarm.configs import NGINX_TEMPLATE
from harness import Rendering, render, render_error

NGINX_ALREADY_SENDS = (
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Referrer-Policy",
)


def _frontend_labels(rendering: Rendering) -> dict[str, str]:
    return rendering.service(f"brandclub-{rendering.stack}", "frontend").labels


def _headers(rendering: Rendering) -> dict[str, str]:
    prefix = (
        f"traefik.http.middlewares.brandclub-{rendering.stack}-headers."
        "headers.customResponseHeaders."
    )
    return {
        key.removeprefix(prefix): value
        for key, value in _frontend_labels(rendering).items()
        if key.startswith(prefix)
    }


def test_routing_labels_are_service_labels_not_container_labels(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    for name, service in rendering.services.items():
        assert "labels" not in service.container or not service.container["labels"], name
    labels = _frontend_labels(rendering)
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.swarm.network"] == "traefik-public"
    assert labels["traefik.constraint-label"] == "traefik-public"


def test_frontend_router_and_sticky_sessions(rendered: dict[str, Rendering], stack: str) -> None:
    labels = _frontend_labels(rendered[stack])
    router = f"traefik.http.routers.brandclub-{stack}"
    lb = f"traefik.http.services.brandclub-{stack}-frontend.loadbalancer"
    rule = {
        "dev": "Host(`dev.brandclub.com`)",
        "staging": "Host(`staging.brandclub.com`)",
        # Only the site's domain is served; www.brandclub.com redirects (below).
        "prod": "Host(`brandclub.com`)",
        "local": "Host(`brandclub.localhost`)",
    }[stack]
    assert labels[f"{router}.rule"] == rule
    assert labels[f"{router}.entrypoints"] == "websecure"
    assert labels[f"{router}.tls"] == "true"
    # local's Traefik runs no ACME resolver: its default certificate serves the router.
    resolver = None if stack == "local" else "letsencrypt"
    assert labels.get(f"{router}.tls.certresolver") == resolver
    assert labels[f"{router}.middlewares"] == f"brandclub-{stack}-headers"
    assert labels[f"{lb}.server.port"] == "8080"
    assert labels[f"{lb}.sticky.cookie"] == "true"
    assert labels[f"{lb}.sticky.cookie.secure"] == "true"
    assert labels[f"{lb}.sticky.cookie.httpOnly"] == "true"
    assert not any("lbswarm" in key for key in labels)


def test_socketio_goes_straight_to_websocket_where_it_has_replicas(
    rendered: dict[str, Rendering], stack: str
) -> None:
    websocket = rendered[stack].service(f"brandclub-{stack}", "websocket").labels
    if stack in ("dev", "local"):
        assert not any(key.startswith("traefik.") for key in websocket)
        return
    router = f"traefik.http.routers.brandclub-{stack}-socketio"
    lb = f"traefik.http.services.brandclub-{stack}-websocket.loadbalancer"
    assert websocket[f"{router}.rule"].endswith("&& PathPrefix(`/socket.io`)")
    assert websocket[f"{router}.service"] == f"brandclub-{stack}-websocket"
    assert websocket[f"{lb}.server.port"] == "9000"
    assert websocket[f"{lb}.sticky.cookie"] == "true"
    frontend_cookie = _frontend_labels(rendered[stack])[
        f"traefik.http.services.brandclub-{stack}-frontend.loadbalancer.sticky.cookie.name"
    ]
    assert websocket[f"{lb}.sticky.cookie.name"] != frontend_cookie


def test_hsts_only_on_prod(rendered: dict[str, Rendering]) -> None:
    assert _headers(rendered["prod"])["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )
    # nginx sends a two-year preload HSTS everywhere; an empty value makes Traefik remove it.
    assert _headers(rendered["dev"])["Strict-Transport-Security"] == ""
    assert _headers(rendered["staging"])["Strict-Transport-Security"] == ""


def test_noindex_only_on_staging(rendered: dict[str, Rendering]) -> None:
    assert _headers(rendered["staging"])["X-Robots-Tag"] == "noindex, nofollow"
    assert "X-Robots-Tag" not in _headers(rendered["prod"])
    assert "X-Robots-Tag" not in _headers(rendered["dev"])


def test_headers_do_not_duplicate_what_nginx_sends(
    rendered: dict[str, Rendering], stack: str
) -> None:
    headers = _headers(rendered[stack])
    for header in NGINX_ALREADY_SENDS:
        assert header not in headers
    labels = _frontend_labels(rendered[stack])
    for forbidden in ("frameDeny", "contentTypeNosniff", "browserXssFilter", "referrerPolicy"):
        assert not any(forbidden in key for key in labels)


def test_content_security_policy_is_ready() -> None:
    rendering = render(
        "prod", {"brandclub:ingress": {"contentSecurityPolicy": "default-src 'self'"}}
    )
    assert _headers(rendering)["Content-Security-Policy"] == "default-src 'self'"


def test_router_and_service_names_do_not_collide_across_environments(
    rendered: dict[str, Rendering],
) -> None:
    seen: dict[str, str] = {}
    for stack, rendering in rendered.items():
        for service in rendering.services.values():
            for key in service.labels:
                if key.startswith(("traefik.http.routers.", "traefik.http.services.")):
                    name = key.split(".")[3]
                    assert seen.setdefault(name, stack) == stack, name


# --- one name per site: redirects, realtime headers, the site name rule (issue 9 item 7) -------


def _redirect(labels: dict[str, str], url: str) -> str | None:
    """Where Traefik's redirectregex middleware of these labels sends ``url`` (Go's ${1} is
    Python's \\g<1>; the two regexp dialects agree on this pattern)."""
    prefix = next(k for k in labels if k.endswith(".redirectregex.regex")).rsplit(".", 1)[0]
    pattern, replacement = labels[f"{prefix}.regex"], labels[f"{prefix}.replacement"]
    if not re.match(pattern, url):
        return None
    return re.sub(pattern, re.sub(r"\$\{(\d+)\}", r"\\g<\1>", replacement), url)


def test_every_other_domain_redirects_permanently_to_the_site(
    rendered: dict[str, Rendering],
) -> None:
    labels = _frontend_labels(rendered["prod"])
    router = "traefik.http.routers.brandclub-prod-redirect"
    assert labels[f"{router}.rule"] == "Host(`www.brandclub.com`)"
    assert labels[f"{router}.entrypoints"] == "websecure"
    assert labels[f"{router}.tls.certresolver"] == "letsencrypt"  # a certificate for www too
    assert labels[f"{router}.middlewares"] == "brandclub-prod-headers,brandclub-prod-to-site"
    middleware = "traefik.http.middlewares.brandclub-prod-to-site.redirectregex"
    assert labels[f"{middleware}.permanent"] == "true"
    assert _redirect(labels, "https://www.brandclub.com/app/sales-order?x=1") == (
        "https://brandclub.com/app/sales-order?x=1"
    )
    assert _redirect(labels, "https://www.brandclub.com:443/") == "https://brandclub.com/"
    assert _redirect(labels, "https://www.brandclub.com") == "https://brandclub.com"


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_a_single_domain_needs_no_redirect(rendered: dict[str, Rendering], stack: str) -> None:
    labels = _frontend_labels(rendered[stack])
    assert not any("redirect" in key for key in labels)


def test_the_site_name_picks_the_domain_that_is_served() -> None:
    rendering = render("prod", {"brandclub:frappe": {"siteName": "www.brandclub.com"}})
    labels = _frontend_labels(rendering)
    assert labels["traefik.http.routers.brandclub-prod.rule"] == "Host(`www.brandclub.com`)"
    assert labels["traefik.http.routers.brandclub-prod-redirect.rule"] == "Host(`brandclub.com`)"
    assert _redirect(labels, "https://brandclub.com/login") == "https://www.brandclub.com/login"
    websocket = rendering.service("brandclub-prod", "websocket").labels
    assert websocket["traefik.http.routers.brandclub-prod-socketio.rule"] == (
        "Host(`www.brandclub.com`) && PathPrefix(`/socket.io`)"
    )


def test_a_site_name_outside_the_domains_is_refused() -> None:
    error, registered = render_error(
        "prod", {"brandclub:frappe": {"siteName": "erp.brandclub.com"}}
    )
    assert isinstance(error, ConfigError), error
    assert registered == []
    [problem] = [p for p in error.problems if p.key == "brandclub:frappe.siteName"]
    assert "one of domains (brandclub.com, www.brandclub.com)" in problem.expected


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_direct_socketio_route_sends_the_origin_realtime_can_check(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """Straight to the websocket, Traefik sets what nginx sets on its /socket.io location: the
    realtime server then checks the session at http://<site>:8080 (the frontend on the realtime
    network) and takes the namespace's site from X-Frappe-Site-Name."""
    site = {"staging": "staging.brandclub.com", "prod": "brandclub.com"}[stack]
    websocket = rendered[stack].service(f"brandclub-{stack}", "websocket").labels
    router = f"traefik.http.routers.brandclub-{stack}-socketio"
    assert websocket[f"{router}.rule"] == f"Host(`{site}`) && PathPrefix(`/socket.io`)"
    assert websocket[f"{router}.middlewares"] == (
        f"brandclub-{stack}-headers,brandclub-{stack}-realtime"
    )
    headers = f"traefik.http.middlewares.brandclub-{stack}-realtime.headers.customRequestHeaders"
    assert websocket[f"{headers}.Origin"] == f"http://{site}:8080"
    assert websocket[f"{headers}.X-Frappe-Site-Name"] == site
    # The same Origin as the nginx route, so both routes authenticate the same way.
    nginx_origin = re.search(r"proxy_set_header Origin (\S+);", NGINX_TEMPLATE.content)
    assert nginx_origin is not None
    assert nginx_origin[1].replace("${FRAPPE_SITE_NAME_HEADER}", site) == f"http://{site}:8080"


def _routers(labels: dict[str, str]) -> set[str]:
    return {key.split(".")[3] for key in labels if key.startswith("traefik.http.routers.")}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_router_states_its_environments_observability(
    rendered: dict[str, Rendering], stack: str
) -> None:
    services = ("frontend", "websocket")
    for rendering, expected in (
        (rendered[stack], "true"),
        (
            render(
                stack,
                {
                    "brandclub:ingress": {
                        "accessLog": {"enabled": False},
                        "metrics": {"enabled": False},
                    }
                },
            ),
            "false",
        ),
    ):
        routers = 0
        for service in services:
            labels = rendering.service(f"brandclub-{stack}", service).labels
            for router in _routers(labels):
                prefix = f"traefik.http.routers.{router}.observability"
                assert labels[f"{prefix}.accessLogs"] == expected, router
                assert labels[f"{prefix}.metrics"] == expected, router
                routers += 1
        assert routers >= 1
