#!/usr/bin/python3
"""The live tier's own small programs, called by the name they are linked as: ``/mailpit``
(a stand-in for Mailpit's web port and its ``readyz`` check) and ``probe`` (the tests' client
inside the swarm: plain HTTP with any headers, bounded request loops, protocol-level
reachability, and a socket.io client that logs in and joins a site's realtime namespace).

The Frappe processes themselves are in the stand-in bench (``tests/live/images/bench``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = os.environ.get("STANDIN_VERSION", "unknown")


def log(message: str) -> None:
    print(f"[standin {VERSION}] {message}", file=sys.stderr, flush=True)


# --- mailpit ---------------------------------------------------------------------------------


class MailpitHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        status = 200 if self.path == "/readyz" else 404
        data = json.dumps({"message": "ok" if status == 200 else "not found"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def mailpit(argv: list[str]) -> int:
    if argv == ["readyz"]:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8025/readyz", timeout=3) as response:
                return 0 if response.status == 200 else 1
        except OSError:
            return 1
    server = ThreadingHTTPServer(("0.0.0.0", 8025), MailpitHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever(poll_interval=0.2)
    return 0


# --- probe: the tests' client, run inside the swarm -------------------------------------------


def request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, list[str]], bytes]:
    """One HTTP request with exactly these headers (Host included, if given); no redirects
    followed. Returns status, headers (lower-case names, every value), body."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        # Verified against the default roots (SSL_CERT_FILE names the tier's Pebble root).
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        return exchange(
            connection,
            method,
            path or "/",
            headers or {},
            body,
            skip_host="host" in {k.lower() for k in headers or {}},
        )
    finally:
        connection.close()


def exchange(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    skip_host: bool,
    skip_accept_encoding: bool = False,
) -> tuple[int, dict[str, list[str]], bytes]:
    """One request on an open connection with exactly these headers (plus the Host and
    Accept-Encoding http.client adds unless skipped). Returns status, headers (lower-case names,
    every value), body. The tier's host-side clients (tests/live/ingress.py) use it too."""
    connection.putrequest(
        method, path, skip_host=skip_host, skip_accept_encoding=skip_accept_encoding
    )
    for name, value in headers.items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    found: dict[str, list[str]] = {}
    for name, value in response.getheaders():
        found.setdefault(name.lower(), []).append(value)
    return response.status, found, response.read()


def probe_get(url: str, timeout: float, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, _, body = request("GET", url, headers, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    return json.loads(body)


def body_version(body: bytes) -> str:
    """The release that answered, as the stand-in web app states it in its JSON."""
    return json.loads(body)["version"]


class Tally:
    """What a bounded request loop counts, the same way in the probe and in the tier's host-side
    loops (tests/live/ingress.py): requests sent, lost, answered by Frappe's maintenance page,
    answered per release, and the first 20 errors with when they happened."""

    def __init__(self) -> None:
        self.sent = self.failed = self.maintenance = 0
        self.versions: dict[str, int] = {}
        self.errors: list[str] = []
        self.started = time.monotonic()

    def answer(self, status: int, body: bytes, version: Callable[[], str]) -> None:
        """One answer; anything but a 200 or Frappe's maintenance answer raises."""
        answer = json.loads(body) if body.startswith(b"{") else {}
        if status == 503 and answer.get("exc_type") == "SessionStopped":
            # Frappe's own answer while the site is in maintenance mode (a migrate job holds
            # it): an answer, not a lost request; counted apart.
            self.maintenance += 1
        elif status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        else:
            released = version()
            self.versions[released] = self.versions.get(released, 0) + 1

    def fail(self, error: Exception) -> None:
        self.failed += 1
        if len(self.errors) < 20:
            self.errors.append(f"{time.monotonic() - self.started:.2f}s {error!r}")

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "maintenance": self.maintenance,
            "versions": self.versions,
            "errors": self.errors,
            "seconds": round(time.monotonic() - self.started, 2),
        }


def probe_loop(url: str, count: int, interval: float, timeout: float, stop_file: str) -> int:
    """At most ``count`` GETs ``interval`` apart; ends early once ``stop_file`` exists."""
    tally = Tally()
    for _ in range(count):
        if os.path.exists(stop_file):
            break
        tally.sent += 1
        try:
            status, _, body = request("GET", url, timeout=timeout)
            tally.answer(status, body, functools.partial(body_version, body))
        except Exception as error:
            tally.fail(error)
        time.sleep(interval)
    print(json.dumps(tally.summary()), flush=True)
    return 0


def answers(protocol: str, host: str, port: int, timeout: float) -> bool:
    """True only when a real MariaDB or Redis answers at the address.

    An accepted TCP connection proves nothing: a transparent proxy on the way out of a machine
    may accept connections to any address. So MariaDB must send its handshake (or an error
    packet) and Redis must answer PING.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            if protocol == "redis":
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-DENIED"))
            greeting = connection.recv(128)
            # A 3-byte length, sequence number 0, then protocol version 10 or an error (0xff).
            return len(greeting) > 5 and greeting[3] == 0 and greeting[4] in (10, 0xFF)
    except OSError:
        return False


def login_sid(spec: dict[str, Any]) -> str:
    """POST usr/pwd to a login URL; the ``sid`` cookie Frappe sets."""
    body = urllib.parse.urlencode({"usr": spec["usr"], "pwd": spec["pwd"]}).encode()
    headers = {**spec.get("headers", {}), "Content-Type": "application/x-www-form-urlencoded"}
    status, found, answer = request("POST", spec["url"], headers, body)
    if status != 200:
        raise RuntimeError(f"login: HTTP {status} {answer[:200]!r}")
    jar = SimpleCookie()
    for value in found.get("set-cookie", []):
        jar.load(value)
    return jar["sid"].value


async def realtime(spec: dict[str, Any]) -> dict[str, Any]:
    """Join ``spec["namespace"]`` at ``spec["url"]`` (socket.io, the given transports and
    headers), logged in first when ``spec["login"]`` says how; then, when ``spec["publish"]``
    says how, have the site publish an event to the user's room and wait for it."""
    import socketio

    result: dict[str, Any] = {"connected": False, "error": None, "event": None}
    headers = dict(spec.get("headers", {}))
    if spec.get("login"):
        result["sid"] = sid = login_sid(spec["login"])
        headers["Cookie"] = f"sid={sid}"
    namespace = spec["namespace"]
    client = socketio.AsyncClient(reconnection=False)
    received = asyncio.Event()

    @client.on("connect_error", namespace=namespace)
    async def refused(data: Any) -> None:
        result["error"] = data.get("message") if isinstance(data, dict) else data

    event = (spec.get("publish") or {}).get("event", "brandclub_probe")

    @client.on(event, namespace=namespace)
    async def got(*data: Any) -> None:
        result["event"] = data[0] if data else None
        received.set()

    timeout = float(spec.get("timeout", 15))
    try:
        await client.connect(
            spec["url"],
            headers=headers,
            transports=spec.get("transports", ["polling", "websocket"]),
            namespaces=[namespace],
            wait_timeout=timeout,
        )
        result["connected"] = namespace in client.namespaces
        result["transport"] = client.transport()
        # Engine.IO's session id: every polling request of the session carries it (?sid=...).
        result["eio_sid"] = client.eio.sid
    except Exception as error:
        result["error"] = result["error"] or repr(error)
    if result["connected"] and spec.get("publish"):
        publish = spec["publish"]
        body = json.dumps(
            {
                "event": event,
                "message": publish.get("message"),
                "user": publish.get("user", "Administrator"),
            }
        ).encode()
        publish_headers = {**publish.get("headers", {}), "Content-Type": "application/json"}
        status, _, answer = request("POST", publish["url"], publish_headers, body)
        result["published"] = json.loads(answer) if status == 200 else f"HTTP {status}"
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(received.wait(), timeout)
    # When the client began to leave: it closes its HTTP session on the way out, so a last
    # request may go without the session's cookies (a browser keeps them).
    result["disconnect_at"] = time.time()
    await client.disconnect()
    if client.eio.http is not None and not client.eio.http.closed:
        await client.eio.http.close()  # a refused connection leaves Engine.IO's session open
    return result


def probe(argv: list[str]) -> int:
    match argv:
        case ["get", url]:
            print(json.dumps(probe_get(url, 10)))
            return 0
        case ["post", url, body]:
            status, _, answer = request(
                "POST", url, {"Content-Type": "application/json"}, body.encode()
            )
            print(answer.decode())
            return 0 if status == 200 else 1
        case ["http", spec]:
            # {"method", "url", "headers", "body"} -> {"status", "headers", "body"}
            given = json.loads(spec)
            body = given.get("body")
            status, headers, answer = request(
                given.get("method", "GET"),
                given["url"],
                given.get("headers"),
                body.encode() if body is not None else None,
                given.get("timeout", 10),
            )
            print(
                json.dumps(
                    {"status": status, "headers": headers, "body": answer.decode(errors="replace")}
                )
            )
            return 0
        case ["realtime", spec]:
            print(json.dumps(asyncio.run(realtime(json.loads(spec)))))
            return 0
        case ["loop", url, count, interval, timeout, stop_file]:
            return probe_loop(url, int(count), float(interval), float(timeout), stop_file)
        case ["answers", ("mariadb" | "redis") as protocol, host, port, timeout]:
            return 0 if answers(protocol, host, int(port), float(timeout)) else 1
    log(f"probe: unsupported arguments {argv}")
    return 2


PROGRAMS: dict[str, Callable[[list[str]], int]] = {"mailpit": mailpit, "probe": probe}


def main(argv: list[str]) -> int:
    name = os.path.basename(argv[0])
    if name not in PROGRAMS:
        log(f"called as {name!r}; expected one of {', '.join(PROGRAMS)}")
        return 2
    return PROGRAMS[name](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
