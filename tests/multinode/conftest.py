"""Fixtures of the multi-node tier: three engines in network namespaces as one swarm, the
stand-in images on every node, prod deployed across them (tests/multinode/deployment.py).

Runs with the live tier (``BRANDCLUB_LIVE=0`` skips it) as its own pytest process from
``./test.sh``, under its own lock: the engines have their own sockets, roots and namespaces and
never touch this machine's default dockerd. Everything is removed afterwards (the engines by pid
file, the namespaces, veths, bridge, iptables rule, data roots and the shared directory) unless
``BRANDCLUB_LIVE_KEEP=1``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.helpers import tier_report
from tests.live.rendering import REPO, PrivateAcme
from tests.multinode import cluster
from tests.multinode.deployment import DATA_LABEL, SHARED_ROOT, ProdDeployment
from tests.multinode.images import APP_TAG, load_everywhere

SWITCH = "BRANDCLUB_LIVE"
KEEP = os.environ.get("BRANDCLUB_LIVE_KEEP") == "1"
# Run the tests against the swarm and prod a kept run left (BRANDCLUB_LIVE_KEEP=1), without
# bringing anything up or down: to look at a failure, or to see a test fail on a broken state.
ATTACH = os.environ.get("BRANDCLUB_MULTINODE_ATTACH") == "1"
REPORT = REPO / "build" / "multinode-report.json"
# The whole tier, images included, on 2 cores; a slower run fails instead of eating CI's time.
TIER_BUDGET_SECONDS = 12 * 60


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SWITCH) == "0":
        skip = pytest.mark.skip(reason=f"multi-node tier switched off ({SWITCH}=0)")
        for item in items:
            if item.get_closest_marker("multinode"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def report() -> Iterator[dict[str, Any]]:
    """Placement, request counts and timings, written to build/multinode-report.json."""
    yield from tier_report(REPORT, "multi-node")


@pytest.fixture(scope="session")
def swarm(report: dict[str, Any]) -> Iterator[tuple[cluster.Node, ...]]:
    started = time.monotonic()
    previous = os.environ.get("DOCKER_HOST")
    try:
        nodes = cluster.NODES if ATTACH else cluster.up()
        manager = nodes[0]
        # Every docker command of the tier's helpers goes to the manager.
        os.environ["DOCKER_HOST"] = manager.host
        if not ATTACH:
            label = f"{DATA_LABEL}=true"
            manager.docker("node", "update", "--label-add", label, manager.hostname)
            report["swarmSeconds"] = round(time.monotonic() - started, 1)
            report["imageSeconds"] = load_everywhere(nodes)
        yield nodes
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        if not KEEP and not ATTACH:
            cluster.down()
            shutil.rmtree(SHARED_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def prod(
    swarm: tuple[cluster.Node, ...],
    tmp_path_factory: pytest.TempPathFactory,
    report: dict[str, Any],
) -> ProdDeployment:
    deployment = ProdDeployment(
        Path(tmp_path_factory.mktemp("multinode-prod")), PrivateAcme("", "")
    )
    if ATTACH:
        deployment.rendered = deployment.rendering(APP_TAG)
        return deployment
    deployment.up()
    report["convergeSeconds"] = deployment.converge_seconds
    report["siteJobSeconds"] = {run.name: run.seconds for run in deployment.job_runs}
    return deployment


@pytest.fixture(scope="session", autouse=True)
def within_budget(report: dict[str, Any]) -> Iterator[None]:
    started = time.monotonic()
    yield
    seconds = time.monotonic() - started
    assert seconds <= TIER_BUDGET_SECONDS, f"the tier took {seconds:.0f}s"
