"""Pebble, Let's Encrypt's test ACME server, and its DNS helper, run on this machine for the tier.

Debian's ``pebble`` package ships both binaries (installed with apt when missing). The tier
starts them once per session, as processes on the host:

- a throwaway CA (``openssl``) signs Pebble's own HTTPS certificate for the address Traefik
  reaches it at (an IP SAN): the Docker gateway of the node's swarm containers
  (``docker_gwbridge``), since Traefik runs in a container and Pebble on the host. That CA's
  certificate is what the program's ``ingress.acmeCaCertificate`` carries, and
  ``https://<gateway>:14000/dir`` its ``ingress.acmeCaServer``: the tier trusts Pebble the way an
  operator trusts a private CA, with no test-only path in the program;
- ``pebble-challtestsrv`` answers every A query with the address where Traefik's published port
  443 is reachable from the host (TLS-ALPN-01 validations go there);
- Pebble keeps its state in memory and makes a new root certificate on every start, so it runs
  for the whole session (across Traefik restarts); whoever starts it must start Traefik with an
  empty certificates volume, and fetch the root (``/roots/0``) after the start.

Every request Pebble serves is one line of its log; :meth:`Pebble.orders` counts new orders.

For any live test: the session fixture ``pebble`` (tests/live/conftest.py), or
``Pebble(directory, gateway_address()).start()`` and ``.stop()``; its ``directory_url`` and
``ca_certificate`` are what ``ingress.acmeCaServer`` and ``ingress.acmeCaCertificate`` take
(``tests.live.rendering.PrivateAcme``), its ``root_file`` what a client verifies against.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.live.images.build import apt_install

ACME_PORT = 14000
MANAGEMENT_PORT = 15000
DNS_PORT = 8053
CHALLTESTSRV_MANAGEMENT_PORT = 8055
# What Traefik serves the TLS-ALPN-01 challenge on (the program's websecure entrypoint).
TLS_PORT = 443
HTTP_PORT = 80
NEW_ORDER = "POST /order-plz"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, server_ip: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and, signed by it, a certificate for ``server_ip`` (an IP SAN);
    returns (CA certificate, server certificate, server key)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=brandclub live-tier ACME CA"),
        cwd=directory,
    )
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key"),
        *("-out", "server.csr", "-subj", "/CN=pebble"),
        cwd=directory,
    )
    (directory / "server.ext").write_text(
        f"subjectAltName=IP:{server_ip}\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext"),
        cwd=directory,
    )
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


@dataclass
class Pebble:
    """Pebble and pebble-challtestsrv, started by :meth:`start`, stopped by :meth:`stop`."""

    directory: Path
    # Where Traefik (in a container) reaches Pebble: the host's address on the gateway bridge.
    listen_ip: str
    # What challtestsrv answers every A query with: where Traefik's 443 is reachable.
    challenge_ip: str = "127.0.0.1"
    processes: list[subprocess.Popen] = field(default_factory=list)
    ca_certificate: str = ""
    root: str = ""

    @property
    def directory_url(self) -> str:
        return f"https://{self.listen_ip}:{ACME_PORT}/dir"

    @property
    def log(self) -> Path:
        return self.directory / "pebble.log"

    @property
    def root_file(self) -> Path:
        return self.directory / "pebble-root.pem"

    def start(self, timeout: float = 30) -> None:
        if not shutil.which("pebble"):
            apt_install("pebble")
        ca, certificate, key = make_ca(self.directory / "ca", self.listen_ip)
        self.ca_certificate = ca.read_text()
        config = self.directory / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"{self.listen_ip}:{ACME_PORT}",
                        "managementListenAddress": f"{self.listen_ip}:{MANAGEMENT_PORT}",
                        "certificate": str(certificate),
                        "privateKey": str(key),
                        "httpPort": HTTP_PORT,
                        "tlsPort": TLS_PORT,
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        self._spawn(
            "challtestsrv",
            "pebble-challtestsrv",
            *("-defaultIPv4", self.challenge_ip, "-defaultIPv6", ""),
            *("-dns01", f"127.0.0.1:{DNS_PORT}", "-http01", "", "-https01", ""),
            *("-tlsalpn01", "", "-management", f"127.0.0.1:{CHALLTESTSRV_MANAGEMENT_PORT}"),
        )
        self._spawn(
            "pebble",
            "pebble",
            *("-config", str(config), "-dnsserver", f"127.0.0.1:{DNS_PORT}"),
            # No random validation delays, no rejected nonces: the tier waits for nothing but
            # the order itself.
            environment={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
        )
        context = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + timeout
        while True:
            try:
                url = f"https://{self.listen_ip}:{MANAGEMENT_PORT}/roots/0"
                with urllib.request.urlopen(url, context=context, timeout=5) as answer:
                    self.root = answer.read().decode()
                break
            except OSError as error:
                dead = [p.args[0] for p in self.processes if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"Pebble did not answer on {self.listen_ip}:{MANAGEMENT_PORT} "
                        f"({error}; exited: {dead}):\n{self.log_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        self.root_file.write_text(self.root)

    def _spawn(self, name: str, *command: str, environment: dict[str, str] | None = None) -> None:
        with (self.directory / f"{name}.log").open("ab") as log:
            self.processes.append(
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **(environment or {})},
                    start_new_session=True,
                )
            )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def orders(self) -> int:
        """New orders Pebble has received since it started."""
        return sum(NEW_ORDER in line for line in self.log_text().splitlines())

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()
