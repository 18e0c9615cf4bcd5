"""The capacity preflight on the three-node swarm (issue 23), before prod is deployed here (this
module runs before test_multinode.py drains and crashes nodes): prod in the tier's shape fits;
a third backend replica with one task per node leaves its start-first surge no node; MariaDB
larger than the data node is refused naming that node, though the others have room."""

from __future__ import annotations

import math
from typing import Any

import pytest

from stacktools.engine import deep_merge
from tests.live.capacity import checked, preview, refused, tier_facts
from tests.multinode import cluster
from tests.multinode.deployment import OVERLAY, STACK

pytestmark = pytest.mark.multinode

DATA_NODE = cluster.NODES[0].hostname  # labelled by the swarm fixture
MIB = 1024**2


def overlay(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """prod as the tier deploys it (tests/multinode/deployment.py), plus ``extra``."""
    return deep_merge(OVERLAY, extra or {})


def test_prod_in_the_tiers_shape_fits_and_the_preview_checked_it(
    swarm: tuple[cluster.Node, ...],
) -> None:
    checked(preview(STACK, overlay()))


def test_one_task_per_node_leaves_the_surge_of_a_third_replica_no_node(
    swarm: tuple[cluster.Node, ...],
) -> None:
    backend = {"backend": {"replicas": 3}}
    error = refused(STACK, overlay({"brandclub:services": backend}))
    assert error.verdict.fits_without_surge
    message = str(error)
    assert "fits only without the start-first surge" in message
    assert (
        f"brandclub-{STACK}_backend: 1 start-first surge task(s) fit on no node: at most 1 per "
        "node (maxReplicas), and its constraints allow 3 node(s)"
    ) in message


def test_mariadb_larger_than_the_data_node_is_refused(swarm: tuple[cluster.Node, ...]) -> None:
    facts = tier_facts()
    (data,) = [node for node in facts.nodes if node.hostname == DATA_NODE]
    memory = f"{math.ceil(data.capacity.memory / MIB) + 1024}M"
    mariadb = {"reservations": {"memory": memory}, "limits": {"memory": memory}}
    error = refused(STACK, overlay({"brandclub:mariadb": mariadb}))
    assert not error.verdict.fits_without_surge
    assert [load.node.hostname for load in error.verdict.overloaded] == [DATA_NODE]
    assert f"brandclub-db-{STACK}_mariadb 1 task(s)" in str(error)
