"""The user's side of Traefik: HTTP(S) from this machine's network to the ports Traefik publishes,
the way a browser sends it (the site's domain in SNI and Host, the certificate verified against
Pebble's root, never ``-k``), and bounded request loops through it.

Requests go to the host's own address (``host_address``): with host-mode ports that keeps the
client's address all the way to Traefik, where loopback would go through Docker's userland proxy.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.live.images.standin import Tally, exchange
from tests.live.rendering import DOMAINS
from tests.live.swarm import wait_for


@dataclass(frozen=True)
class Answer:
    status: int
    # Lower-case names, every value in the order sent.
    headers: dict[str, list[str]]
    body: bytes
    # The server's certificate as Python's ssl module reads it (verified), None over HTTP.
    certificate: dict[str, Any] | None = None

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower(), [])
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def _name(certificate: dict[str, Any], field_name: str) -> str:
    return next(v for rdn in certificate[field_name] for k, v in rdn if k == "commonName")


def issuer(certificate: dict[str, Any]) -> str:
    return _name(certificate, "issuer")


def alt_names(certificate: dict[str, Any]) -> set[str]:
    return {value for kind, value in certificate.get("subjectAltName", ()) if kind == "DNS"}


class _Connection(http.client.HTTPSConnection):
    """HTTPS to ``address`` with ``host`` as SNI, Host and the name the certificate must have."""

    def __init__(self, host: str, address: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, 443, context=context, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self._create_connection = lambda target, *args, **kwargs: socket.create_connection(
            (self._address, target[1]), *args, **kwargs
        )
        super().connect()


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    host: str | None = None,
) -> tuple[int, dict[str, list[str]], bytes]:
    """One request with exactly these headers (Host: ``host``, else the connection's host)."""
    return exchange(
        connection,
        method,
        path,
        {"Host": host or connection.host, **headers},
        body,
        skip_host=True,
        skip_accept_encoding=True,
    )


@dataclass
class Client:
    """A browser's view of Traefik: its published ports at ``address``, Pebble's root trusted."""

    address: str
    root_file: Path

    def context(self, verify: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.root_file))
        if not verify:  # a host Traefik has no certificate for: its default one answers
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def connection(self, host: str, timeout: float = 10, verify: bool = True) -> _Connection:
        return _Connection(host, self.address, self.context(verify), timeout)

    def https(
        self,
        host: str,
        path: str = "/",
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 10,
        verify: bool = True,
    ) -> Answer:
        connection = self.connection(host, timeout, verify)
        try:
            status, found, data = _exchange(connection, method, path, headers or {}, body)
            certificate = connection.sock.getpeercert() if verify else None
        finally:
            connection.close()
        return Answer(status, found, data, certificate)

    def http(self, host: str, path: str = "/", method: str = "GET", timeout: float = 10) -> Answer:
        connection = http.client.HTTPConnection(self.address, 80, timeout=timeout)
        try:
            status, found, data = _exchange(connection, method, path, {}, None, host)
        finally:
            connection.close()
        return Answer(status, found, data)

    def certificate(self, host: str, timeout: float = 10) -> tuple[dict[str, Any], bytes]:
        """The certificate Traefik serves for ``host``, verified against Pebble's root (parsed,
        and DER)."""
        with (
            socket.create_connection((self.address, 443), timeout=timeout) as raw,
            self.context().wrap_socket(raw, server_hostname=host) as tls,
        ):
            return tls.getpeercert(), tls.getpeercert(binary_form=True)

    def wait_certificates(self, timeout: float, domains: tuple[str, ...] = DOMAINS) -> None:
        """Until every domain's certificate verifies against Pebble's root: Traefik orders them
        once its Swarm provider has seen the routers (its /ping answers before that)."""
        errors: dict[str, str] = {}

        def verified() -> bool:
            for domain in domains:
                try:
                    self.certificate(domain, timeout=5)
                    errors.pop(domain, None)
                except (OSError, ssl.SSLError) as error:
                    errors[domain] = repr(error)
            return not errors

        wait_for("Traefik to serve Pebble's certificates", verified, timeout, 1.0, lambda: errors)


# --- bounded request loops ---------------------------------------------------------------------

Send = Callable[[], tuple[int, dict[str, list[str]], bytes]]


def version_of(status: int, headers: dict[str, list[str]], body: bytes) -> str:
    """Which release answered: the JSON body's version (the web app), else the stand-in's
    X-Standin-Version header (the realtime server)."""
    if body.startswith(b"{"):
        version = json.loads(body).get("version")
        if version:
            return version
    return headers.get("x-standin-version", ["unknown"])[0]


@dataclass
class Loop:
    """At most ``count`` requests ``interval`` apart, each with a timeout, in a thread; ended by
    :meth:`finish`. A keep-alive connection, as a browser's, opened again after any error."""

    name: str
    connect: Callable[[], http.client.HTTPConnection]
    path: str
    count: int
    interval: float
    headers: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Loop:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        tally = Tally()
        connection = None
        for _ in range(self.count):
            if self._stop.is_set():
                break
            tally.sent += 1
            try:
                connection = connection or self.connect()
                status, headers, body = _exchange(connection, "GET", self.path, self.headers, None)
                tally.answer(status, body, functools.partial(version_of, status, headers, body))
            except Exception as error:
                tally.fail(error)
                if connection is not None:
                    connection.close()
                connection = None
            time.sleep(self.interval)
        if connection is not None:
            connection.close()
        self.summary = tally.summary()

    def finish(self, timeout: float = 60) -> dict[str, Any]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"{self.name} did not stop"
        return self.summary
