"""The local stack, deployed from its export with the real Traefik and the tier's stand-in
images, reached the way a browser on this machine reaches it: 127.0.0.1, the site's name in SNI
and Host (issue 13). It runs first and removes everything it made before dev comes up."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.ingress import Client
from tests.live.local import SITE, LocalDeployment

pytestmark = pytest.mark.live

ADDRESS = "127.0.0.1"
# Traefik's self-signed default certificate (pkg/tls/generate: "TRAEFIK DEFAULT CERT").
DEFAULT_CERT = "TRAEFIK DEFAULT CERT"


@pytest.fixture(scope="module")
def local(
    images: list[str], tmp_path_factory: pytest.TempPathFactory, live_report: dict[str, Any]
) -> Iterator[LocalDeployment]:
    started = time.monotonic()
    deployment = LocalDeployment(Path(tmp_path_factory.mktemp("live-local")))
    try:
        deployment.up()
        yield deployment
    finally:
        if deployment.rendered is not None:
            # What ./deploy.sh local destroy removes before pulumi destroy (they hold volumes).
            kept = len(deployment.job_containers())
            deployment.down()
            live_report["local"] = {
                **live_report.get("local", {}),
                "jobContainersKept": kept,
                **deployment.seconds,
                "leftovers": deployment.leftovers(),
                "seconds": round(time.monotonic() - started, 1),
            }


def _served_certificate(host: str = SITE, timeout: float = 10) -> bytes:
    """The certificate Traefik presents for ``host`` on 127.0.0.1:443 (DER), unverified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((ADDRESS, 443), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def _wait_routed(client: Client, timeout: float = 90) -> Any:
    """Until Traefik's Swarm provider has seen the frontend's router (it polls every 5 s)."""
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = client.https(SITE, "/api/method/version", verify=False)
            if answer.status == 200:
                return answer
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{SITE} not routed through Traefik within {timeout} s: {answer}")


def test_the_site_answers_through_traefik_with_its_default_certificate(
    local: LocalDeployment, live_report: dict[str, Any], tmp_path: Path
) -> None:
    started = time.monotonic()
    served = _served_certificate()
    pem = tmp_path / "served.pem"
    pem.write_text(ssl.DER_cert_to_PEM_cert(served))
    client = Client(ADDRESS, pem)
    answer = _wait_routed(client)
    live_report.setdefault("local", {})["routedSeconds"] = round(time.monotonic() - started, 1)
    assert answer.json()["message"]["site"] == SITE, answer
    # The handshake verifies against exactly that certificate (the name aside: the default
    # certificate names no site), and it is Traefik's default one.
    context = client.context()
    context.check_hostname = False
    with (
        socket.create_connection((ADDRESS, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SITE) as tls,
    ):
        certificate = tls.getpeercert()
    subject = {k: v for rdn in certificate["subject"] for k, v in rdn}
    assert subject["commonName"] == DEFAULT_CERT, certificate
    # No resolver orders anything: every name gets the same default certificate.
    assert _served_certificate("other.localhost") == served

    # HTTP: a permanent redirect to the same path over HTTPS.
    redirect = client.http(SITE, "/login?next=/app")
    assert (redirect.status, redirect.header("Location")) == (
        301,
        f"https://{SITE}/login?next=/app",
    )
    # Another name is not the site: Traefik has no router for it.
    assert client.https("other.localhost", "/api/method/version", verify=False).status == 404
