"""The capacity preflight on the tier's single-node swarm (issue 23): the program's preview reads
the real node and its running tasks, lets the tier's dev through, and refuses a deploy that fits
only without the start-first surge and one that oversubscribes the data node, before anything is
registered. The numbers come from the node itself, so the tests hold on any machine."""

from __future__ import annotations

import math
from typing import Any

import pytest

from components.swarm.capacity import NANO_CPUS, Node
from stacktools.engine import deep_merge, stack_file_config
from tests.live.capacity import checked, planned, preview, refused, tier_facts
from tests.live.rendering import PULUMI_STACK, TEST_OVERLAY
from tests.live.swarm import Daemon

pytestmark = pytest.mark.live

BACKEND = f"brandclub-{PULUMI_STACK}_backend"
MARIADB = f"brandclub-db-{PULUMI_STACK}_mariadb"
MIB = 1024**2


def overlay(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tier's dev as it deploys it (Traefik with prod's ingress settings), plus ``extra``."""
    tier = deep_merge(
        TEST_OVERLAY,
        {
            "brandclub:ingress": stack_file_config("prod")["brandclub:ingress"],
            "brandclub:imageTag": "v1",
        },
    )
    return deep_merge(tier, extra or {})


def the_node() -> tuple[Node, Any]:
    facts = tier_facts()
    (node,) = [node for node in facts.nodes if node.schedulable]
    return node, facts


def test_the_tiers_dev_fits_and_the_preview_checked_it(daemon: Daemon) -> None:
    checked(preview(PULUMI_STACK, overlay()))


def test_a_deploy_that_fits_only_without_the_surge_is_refused_naming_it(daemon: Daemon) -> None:
    node, facts = the_node()
    plan = planned(PULUMI_STACK, overlay())
    others = sum(
        task.reservation.nano_cpus
        for task in facts.tasks
        if task.service not in plan and task.node_id == node.id
    )
    rest = sum(
        (service.replicas + service.surge) * service.reservation.nano_cpus
        for name, service in plan.items()
        if name != BACKEND
    )
    free = node.capacity.nano_cpus - others - rest
    # Two backend tasks fit in what is free; with the start-first surge (prod's parallelism:
    # both replicas at once) they do not.
    cpus = math.floor(free / 2.5 / NANO_CPUS * 100) / 100
    assert 2 * cpus * NANO_CPUS <= free < 3 * cpus * NANO_CPUS, (free, cpus)
    backend = {
        "replicas": 2,
        "reservations": {"cpus": cpus, "memory": "256M"},
        "limits": {"cpus": max(cpus, 1.0), "memory": "1G"},
    }
    error = refused(PULUMI_STACK, overlay({"brandclub:services": {"backend": backend}}))
    assert error.verdict.fits_without_surge
    message = str(error)
    assert "fits only without the start-first surge" in message
    assert f"- node {node.hostname} (" in message
    surge = plan[BACKEND].surge
    assert surge >= 1
    assert f"{BACKEND} 2 task(s) + {surge} start-first surge task(s)" in message


def test_a_deploy_that_oversubscribes_the_data_node_is_refused(daemon: Daemon) -> None:
    node, _ = the_node()
    memory = f"{math.ceil(node.capacity.memory / MIB) + 1024}M"
    mariadb = {"reservations": {"cpus": 0.25, "memory": memory}, "limits": {"memory": memory}}
    error = refused(PULUMI_STACK, overlay({"brandclub:mariadb": mariadb}))
    assert not error.verdict.fits_without_surge
    (load,) = error.verdict.overloaded
    assert load.node.hostname == node.hostname
    assert load.missing.memory >= 1024 * MIB
    assert f"{MARIADB} 1 task(s)" in str(error)
