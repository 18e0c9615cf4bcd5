"""Unit tests (no swarm) for the stand-in realtime server's authentication: Frappe v15's
realtime/middlewares/authenticate.js and realtime/utils.js, as frappe/realtime_auth.py restates
them (handshake checks, the session check's HTTP call, Node-worded refusals)."""

from __future__ import annotations

import importlib.util
import re
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.live.images import build

IMAGES = build.IMAGES_DIR


# --- the realtime server's authentication, as Frappe's realtime/middlewares/authenticate.js ----


def _realtime_auth():
    """frappe/realtime_auth.py imports nothing of the stand-in: load it on its own."""
    path = IMAGES / "bench" / "apps" / "frappe" / "frappe" / "realtime_auth.py"
    spec = importlib.util.spec_from_file_location("standin_realtime_auth", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


SITE_HEADERS = {
    "host": "dev.brandclub.com",
    "origin": "https://dev.brandclub.com",
    "cookie": "system_user=yes; sid=abc123",
}


@pytest.mark.parametrize(
    ("namespace", "headers", "refusal"),
    [
        ("/dev.brandclub.com", SITE_HEADERS, None),
        # The namespace must be the site, taken from X-Frappe-Site-Name first ...
        ("/www.brandclub.com", SITE_HEADERS, "Invalid namespace"),
        (
            "/dev.brandclub.com",
            {**SITE_HEADERS, "x-frappe-site-name": "other.site"},
            "Invalid namespace",
        ),
        # ... then the default site for localhost, then Origin's hostname.
        ("/dev.brandclub.com", {**SITE_HEADERS, "host": "localhost:9000"}, "Invalid origin"),
        (
            "/www.brandclub.com",
            {**SITE_HEADERS, "host": "www.brandclub.com", "origin": "https://www.brandclub.com"},
            None,
        ),
        # Origin's hostname must be Host's (ports do not count).
        (
            "/dev.brandclub.com",
            {**SITE_HEADERS, "x-frappe-site-name": "dev.brandclub.com", "host": "websocket:9000"},
            "Invalid origin",
        ),
        (
            "/dev.brandclub.com",
            {
                **SITE_HEADERS,
                "host": "dev.brandclub.com:8080",
                "origin": "http://dev.brandclub.com:8080",
            },
            None,
        ),
        (
            "/dev.brandclub.com",
            {k: v for k, v in SITE_HEADERS.items() if k != "cookie"},
            "No cookie transmitted.",
        ),
        (
            "/dev.brandclub.com",
            {**SITE_HEADERS, "cookie": "system_user=yes"},
            "No sid transmitted.",
        ),
    ],
)
def test_realtime_handshake_checks(namespace: str, headers: dict, refusal: str | None) -> None:
    auth = _realtime_auth()
    if refusal is None:
        assert auth.check_handshake(namespace, headers, None) == "abc123"
    else:
        with pytest.raises(auth.RefusedError, match=f"^{refusal}$"):
            auth.check_handshake(namespace, headers, None)


def test_realtime_default_site_for_localhost() -> None:
    auth = _realtime_auth()
    headers = {"host": "localhost:9000", "origin": "http://localhost", "cookie": "sid=x"}
    assert auth.check_handshake("/dev.brandclub.com", headers, "dev.brandclub.com") == "x"
    with pytest.raises(auth.RefusedError, match="Invalid namespace"):
        auth.check_handshake("/dev.brandclub.com", headers, None)


@pytest.fixture
def user_info_server() -> Iterator[Callable[[int, bytes], str]]:
    """An HTTP server on loopback answering every GET with (status, body); returns its origin.
    The requests it saw are in .seen."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str | None]] = []
    answer: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            return

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Host")))
            status, body = answer[-1]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # Polls for shutdown every 50 ms, not 0.5 s: each test's teardown waits for one poll.
    serve = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serve.start()

    def start(status: int, body: bytes) -> str:
        answer.append((status, body))
        return f"http://127.0.0.1:{server.server_address[1]}"

    start.seen = seen  # type: ignore[attr-defined]
    yield start
    server.shutdown()
    server.server_close()


def test_realtime_asks_the_origin_who_the_session_is(user_info_server) -> None:
    auth = _realtime_auth()
    body = b'{"message": {"user": "Administrator", "user_type": "System User"}}'
    origin = user_info_server(200, body)
    info = auth.fetch_user_info(origin, "abc123")
    assert info == {"user": "Administrator", "user_type": "System User"}
    path, host = user_info_server.seen[-1]
    assert path == "/api/method/frappe.realtime.get_user_info?sid=abc123"
    assert host == origin.removeprefix("http://")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, b"{}", "Unauthorized: Error: Internal Server Error"),
        (503, b"{}", "Unauthorized: Error: Service Unavailable"),
        (
            200,
            b"<html>",
            "Unauthorized: TypeError: Cannot read properties of undefined (reading 'user')",
        ),
    ],
)
def test_realtime_refuses_when_the_origin_does_not_answer_well(
    user_info_server, status: int, body: bytes, message: str
) -> None:
    auth = _realtime_auth()
    with pytest.raises(auth.RefusedError, match=f"^{re.escape(message)}$"):
        auth.fetch_user_info(user_info_server(status, body), "abc123")


def test_realtime_refusals_read_like_nodes() -> None:
    auth = _realtime_auth()
    # The public domain does not resolve inside the swarm: frappe_docker issue #1481.
    with pytest.raises(auth.RefusedError, match=r"^Unauthorized: Error: getaddrinfo ENOTFOUND "):
        auth.fetch_user_info("http://dev.brandclub.invalid", "abc123", timeout=5)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    refused = f"^Unauthorized: Error: connect ECONNREFUSED 127.0.0.1:{port}$"
    with pytest.raises(auth.RefusedError, match=refused):
        auth.fetch_user_info(f"http://127.0.0.1:{port}", "abc123", timeout=5)
