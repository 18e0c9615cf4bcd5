"""Fixtures of the live-swarm tier: a running dockerd and swarm, the local images, dev deployed.

The tier runs unless ``BRANDCLUB_LIVE=0``; then every live test is skipped with that reason in
the summary. Anything that goes wrong while bringing the swarm up is an error, never a skip.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.deployment import DevDeployment
from tests.live.helpers import tier_report
from tests.live.images.build import build_all
from tests.live.ingress import Client
from tests.live.pebble import Pebble
from tests.live.rendering import REPO, PrivateAcme
from tests.live.swarm import Daemon, gateway_address, host_address

SWITCH = "BRANDCLUB_LIVE"
# Leave the stacks (and a dockerd the tier started) running after the tier, to look at them.
KEEP = os.environ.get("BRANDCLUB_LIVE_KEEP") == "1"
REPORT = REPO / "build" / "live-report.json"


# The live modules share one deployment and run in this order: the ingress tests (Traefik,
# Pebble) after the site's own, and the app tests (rollouts through Traefik, item 6, 7, 12, 13
# and the killed tasks) change the most and come last. The second-site tests (a half-made site
# during migrate, default_site) follow the site's own and remove the sites they make, so every
# module after them finds one site. The operations' tests (a root password rotation, the backup
# service's update) and the restore drill's put back what they change. The local stack's test
# comes first: it deploys and removes its own stacks before dev's exist (both run a Traefik on
# :80/:443).
LIVE_MODULES = (
    "test_live_local.py",
    "test_live_swarm.py",
    "test_live_sites.py",
    "test_live_operations.py",
    "test_live_drill.py",
    "test_live_traefik.py",
    "test_live_app.py",
)


def _module_rank(item: pytest.Item) -> int:
    name = item.path.name
    return LIVE_MODULES.index(name) if name in LIVE_MODULES else len(LIVE_MODULES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live = sorted((item for item in items if item.get_closest_marker("live")), key=_module_rank)
    # The unit tier first: it fails in seconds, the live tier takes minutes.
    items[:] = [item for item in items if not item.get_closest_marker("live")] + live
    if os.environ.get(SWITCH) == "0":
        skip = pytest.mark.skip(reason=f"live-swarm tier switched off ({SWITCH}=0)")
        for item in live:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def live_report() -> Iterator[dict[str, Any]]:
    """Timings and request counts, written to build/live-report.json at the end of the tier."""
    yield from tier_report(REPORT, "live-swarm")


@pytest.fixture(scope="session")
def daemon(live_report: dict[str, Any]) -> Iterator[Daemon]:
    started = time.monotonic()
    running = Daemon.ensure()
    live_report["daemonSeconds"] = round(time.monotonic() - started, 1)
    live_report["startedDockerd"] = running.process is not None
    yield running
    if not KEEP:
        running.stop()


@pytest.fixture(scope="session")
def images(daemon: Daemon, live_report: dict[str, Any]) -> list[str]:
    started = time.monotonic()
    built = build_all()
    live_report["imagesSeconds"] = round(time.monotonic() - started, 1)
    live_report["imagesBuilt"] = built
    return built


@pytest.fixture(scope="session")
def pebble(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """Pebble for the whole session: it makes a new root on every start, so Traefik must
    start after it with an empty certificates volume (the dev fixture's bring-up removes
    the volume an earlier run left)."""
    running = Pebble(Path(tmp_path_factory.mktemp("pebble")), gateway_address())
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def dev(
    images: list[str],
    pebble: Pebble,
    tmp_path_factory: pytest.TempPathFactory,
    live_report: dict[str, Any],
) -> Iterator[DevDeployment]:
    deployment = DevDeployment(
        Path(tmp_path_factory.mktemp("live-dev")),
        PrivateAcme(pebble.directory_url, pebble.ca_certificate),
        host_address=host_address(),
        pebble_root=pebble.root_file,
    )
    try:
        deployment.up("v1")
        live_report["initialConvergeSeconds"] = deployment.converge_seconds
        # Traefik orders each domain's certificate once its Swarm provider has seen the
        # routers: how long after the app converged both verify against Pebble's root.
        Client(deployment.host_address, pebble.root_file).wait_certificates(timeout=90)
        assert deployment.app_converged_at is not None
        live_report["certificates"] = {
            "secondsAfterAppConverged": round(time.monotonic() - deployment.app_converged_at, 1),
            "pebbleOrders": pebble.orders(),
        }
        yield deployment
    finally:
        if deployment.rendered is not None and not KEEP:
            deployment.down()


@pytest.fixture(scope="session")
def client(dev: DevDeployment, pebble: Pebble) -> Client:
    """HTTP(S) from the host to Traefik's published ports, verifying against Pebble's root;
    returned once Traefik serves a Pebble certificate for every domain (the dev fixture
    waited for them)."""
    ingress = Client(dev.host_address, pebble.root_file)
    ingress.wait_certificates(timeout=30)
    return ingress
