"""TraefikIngress: the Traefik service in the owning stack, network look-ups elsewhere, and the
service-level routing labels and header middlewares per environment."""

from __future__ import annotations

import base64
import re

import pytest

from components.config_loader import ConfigError
from components.docker_configs import NGINX_TEMPLATE
from harness import PRIVATE_CA, Rendering, render, render_error

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
        # Only the site's domain is served; www.brandclub.com redirects (below).
        "prod": "Host(`brandclub.com`)",
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


def test_traefik_reads_a_request_as_long_as_nginx_waits_for_the_backend(
    rendered: dict[str, Rendering],
) -> None:
    """Traefik v3 ends a request after 60 s of reading (respondingTimeouts.readTimeout); a slow
    upload within clientMaxBodySize must get frappe.proxyReadTimeout, as behind nginx."""
    args = rendered["prod"].service("traefik", "traefik").container["args"]
    assert "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=120s" in args
    slower = render("prod", {"brandclub:frappe": {"proxyReadTimeout": 600}})
    args = slower.service("traefik", "traefik").container["args"]
    assert "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=600s" in args


# --- the static configuration, the ACME CA and observability (issue 11) ----------------------

PEBBLE = "https://10.0.0.1:14000/dir"
CONFIG = "docker:index/serviceConfig:ServiceConfig"


def _traefik(rendering: Rendering):
    return rendering.service("traefik", "traefik")


def _args(rendering: Rendering) -> list[str]:
    return _traefik(rendering).container["args"]


def test_the_static_configuration_as_prod_renders_it(rendered: dict[str, Rendering]) -> None:
    """Every argument Traefik starts with, from one builder (components/traefik_static.py)."""
    assert _args(rendered["prod"]) == [
        "--providers.swarm=true",
        "--providers.swarm.endpoint=unix:///var/run/docker.sock",
        "--providers.swarm.exposedByDefault=false",
        "--providers.swarm.network=traefik-public",
        "--providers.swarm.constraints=Label(`traefik.constraint-label`,`traefik-public`)",
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
        "--entrypoints.web.http.redirections.entrypoint.scheme=https",
        "--entrypoints.web.http.redirections.entrypoint.permanent=true",
        "--entrypoints.websecure.address=:443",
        "--entrypoints.websecure.asDefault=true",
        "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=120s",
        "--entrypoints.traefik.address=:8080",
        "--certificatesresolvers.letsencrypt.acme.caServer="
        "https://acme-v02.api.letsencrypt.org/directory",
        "--certificatesresolvers.letsencrypt.acme.email=ops@brandclub.com",
        "--certificatesresolvers.letsencrypt.acme.storage=/certificates/acme.json",
        "--certificatesresolvers.letsencrypt.acme.tlsChallenge=true",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--accesslog=true",
        "--accesslog.format=json",
        "--accesslog.fields.defaultMode=keep",
        "--accesslog.fields.headers.defaultMode=drop",
        "--accesslog.fields.headers.names.User-Agent=keep",
        "--entrypoints.metrics.address=:8082",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=metrics",
        "--metrics.prometheus.addEntryPointsLabels=true",
        "--metrics.prometheus.addServicesLabels=true",
        "--log.level=INFO",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
    ]
    # Let's Encrypt needs no extra roots: no environment, no CA config.
    assert not _traefik(rendered["prod"]).container.get("env")
    assert not [c for c in rendered["prod"].of_type(CONFIG) if "acme" in c.inputs["name"]]


def test_the_acme_directory_is_a_setting() -> None:
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    args = _args(render("prod", {"brandclub:ingress": {"acmeCaServer": staging}}))
    assert f"--certificatesresolvers.letsencrypt.acme.caServer={staging}" in args
    assert [a for a in args if ".acme.caServer=" in a] == [
        f"--certificatesresolvers.letsencrypt.acme.caServer={staging}"
    ]


def test_a_private_ca_is_trusted_through_a_docker_config_and_lego() -> None:
    rendering = render(
        "prod", {"brandclub:ingress": {"acmeCaServer": PEBBLE, "acmeCaCertificate": PRIVATE_CA}}
    )
    traefik = _traefik(rendering)
    assert f"--certificatesresolvers.letsencrypt.acme.caServer={PEBBLE}" in _args(rendering)
    [config] = [c for c in rendering.of_type(CONFIG) if "acme" in c.inputs["name"]]
    name = config.inputs["name"]
    assert re.fullmatch(r"traefik-acme-ca-certificates-[0-9a-f]{10}", name)
    assert base64.b64decode(config.inputs["data"]).decode() == PRIVATE_CA
    assert {i["label"]: i["value"] for i in config.inputs["labels"]} == {
        "brandclub.layer": "ingress"
    }
    # A new certificate is a new config beside the old one, which must then be deletable.
    assert not config.options["protect"]
    [mounted] = traefik.container["configs"]
    assert (mounted["configName"], mounted["configId"]) == (name, f"{name}-id")
    assert traefik.container["env"] == {"LEGO_CA_CERTIFICATES": mounted["fileName"]}
    assert mounted["fileName"] == "/etc/traefik/acme-ca-certificates.pem"


def test_another_ca_certificate_is_another_config() -> None:
    def config_name(pem: str) -> str:
        rendering = render(
            "prod", {"brandclub:ingress": {"acmeCaServer": PEBBLE, "acmeCaCertificate": pem}}
        )
        [config] = [c for c in rendering.of_type(CONFIG) if "acme" in c.inputs["name"]]
        return config.inputs["name"]

    first = PRIVATE_CA.split("-----END CERTIFICATE-----\n")[0] + "-----END CERTIFICATE-----\n"
    assert config_name(PRIVATE_CA) != config_name(first)
    # The same certificates written with CRLF line ends are the same config.
    assert config_name(PRIVATE_CA.replace("\n", "\r\n")) == config_name(PRIVATE_CA)


def test_access_log_never_keeps_credentials_headers(rendered: dict[str, Rendering]) -> None:
    args = _args(rendered["prod"])
    assert "--accesslog.fields.headers.defaultMode=drop" in args
    kept = [a for a in args if a.startswith("--accesslog.fields.headers.names.")]
    assert kept == ["--accesslog.fields.headers.names.User-Agent=keep"]
    more = render(
        "prod", {"brandclub:ingress": {"accessLog": {"headers": ["User-Agent", "Referer"]}}}
    )
    assert "--accesslog.fields.headers.names.Referer=keep" in _args(more)


def test_access_log_format_and_switches() -> None:
    common = _args(render("prod", {"brandclub:ingress": {"accessLog": {"format": "common"}}}))
    assert "--accesslog.format=common" in common
    quiet = _args(
        render(
            "prod",
            {"brandclub:ingress": {"accessLog": {"enabled": False}, "metrics": {"enabled": False}}},
        )
    )
    assert not [a for a in quiet if a.startswith(("--accesslog", "--metrics"))]
    assert not [a for a in quiet if a.startswith("--entrypoints.metrics.")]


def test_metrics_have_their_own_entrypoint_that_is_never_published(
    rendered: dict[str, Rendering],
) -> None:
    args = _args(rendered["prod"])
    assert "--entrypoints.metrics.address=:8082" in args
    assert "--metrics.prometheus.entryPoint=metrics" in args
    ported = render("prod", {"brandclub:ingress": {"metrics": {"port": 9100}}})
    assert "--entrypoints.metrics.address=:9100" in _args(ported)
    for rendering in (rendered["prod"], ported):
        ports = _traefik(rendering).inputs["endpointSpec"]["ports"]
        assert {p["publishedPort"] for p in ports} == {80, 443}


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
