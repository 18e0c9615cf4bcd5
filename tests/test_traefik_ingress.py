"""TraefikIngress: the Traefik service in the owning stack, network look-ups elsewhere, and the
service-level routing labels and header middlewares per environment."""

from __future__ import annotations

import pytest

from harness import Rendering, render

INGRESS = "brandclub:swarm:TraefikIngress"
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


def test_prod_runs_the_one_traefik(rendered: dict[str, Rendering]) -> None:
    traefik = rendered["prod"].service("traefik", "traefik")
    args = traefik.container["args"]
    for expected in (
        "--providers.swarm=true",
        "--providers.swarm.exposedByDefault=false",
        "--providers.swarm.network=traefik-public",
        "--providers.swarm.constraints=Label(`traefik.constraint-label`,`traefik-public`)",
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
        "--entrypoints.web.http.redirections.entrypoint.scheme=https",
        "--entrypoints.websecure.address=:443",
        "--certificatesresolvers.letsencrypt.acme.email=ops@brandclub.com",
        "--certificatesresolvers.letsencrypt.acme.storage=/certificates/acme.json",
    ):
        assert expected in args
    assert traefik.container["image"].startswith("traefik:v3")
    ports = {
        (p["targetPort"], p["publishedPort"], p["publishMode"])
        for p in traefik.inputs["endpointSpec"]["ports"]
    }
    assert ports == {(80, 80, "host"), (443, 443, "host")}
    # Host-mode ports cannot be bound twice on a node: the update must stop the old task first.
    assert traefik.inputs["updateConfig"]["order"] == "stop-first"
    assert traefik.inputs["taskSpec"]["placement"]["constraints"] == ["node.role == manager"]
    [socket] = [m for m in traefik.container["mounts"] if m["target"] == "/var/run/docker.sock"]
    assert socket["readOnly"] is True


def test_owning_stack_creates_the_swarm_wide_networks(rendered: dict[str, Rendering]) -> None:
    networks = {
        n.inputs["name"]: n.inputs
        for n in rendered["prod"].children_of(INGRESS)
        if n.type == "docker:index/network:Network"
    }
    assert set(networks) == {"traefik-public", "shared-services"}
    for inputs in networks.values():
        assert inputs["driver"] == "overlay" and inputs["attachable"] is True
    certificates = rendered["prod"].named("ingress-certificates-volume")
    assert certificates.options["retainOnDelete"] is True


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_other_stacks_look_the_networks_up_by_name(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    assert "traefik_traefik" not in rendering.services
    assert not [r for r in rendering.children_of(INGRESS)]
    looked_up = {args["name"] for token, args in rendering.invokes if "getNetwork" in token}
    assert looked_up == {"traefik-public", "shared-services"}
    frontend = rendering.service(f"brandclub-{stack}", "frontend")
    assert "traefik-public-id" in frontend.network_ids


def test_ownership_is_a_config_choice() -> None:
    dev_owns = render(
        "dev", {"brandclub:ingress": {"manage": True, "acmeEmail": "dev@brandclub.com"}}
    )
    assert "traefik_traefik" in dev_owns.services
    prod_borrows = render("prod", {"brandclub:ingress": {"manage": False}})
    assert "traefik_traefik" not in prod_borrows.services


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
        "prod": "Host(`brandclub.com`) || Host(`www.brandclub.com`)",
    }[stack]
    assert labels[f"{router}.rule"] == rule
    assert labels[f"{router}.entrypoints"] == "websecure"
    assert labels[f"{router}.tls.certresolver"] == "letsencrypt"
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
    if stack == "dev":
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
