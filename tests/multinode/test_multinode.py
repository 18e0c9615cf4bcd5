"""prod across three nodes (issue 14): placement, shared site files, a drained and a failed
worker, and data services that never move. The tests share one deployment and run in this
order; each measures what docs/testing.md reports."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from tests.live.helpers import LOOP_INTERVAL, LOOP_TIMEOUT
from tests.live.swarm import docker, wait_for
from tests.multinode.cluster import NODES, crash
from tests.multinode.deployment import (
    DATA_SERVICES,
    FRONTEND_URL,
    ROUTED,
    SITE,
    ProdDeployment,
    Task,
    running_nodes,
    tasks,
)

pytestmark = pytest.mark.multinode

MANAGER, DRAINED, FAILED = (node.hostname for node in NODES)
SITES = "/home/frappe/frappe-bench/sites"
# A bounded request loop: at most this many requests (LOOP_INTERVAL apart, LOOP_TIMEOUT each).
LOOP_COUNT = 2000
# Swarm marks a silent node down after missing its heartbeats; then reschedules.
RESCHEDULE_TIMEOUT = 180
DRAIN_TIMEOUT = 240
# Polling sessions through the frontend: without stickiness each request is a coin toss.
POLLING_SESSIONS = 4


def data_services(prod: ProdDeployment) -> list[str]:
    return [prod.service(prod.data_stack, name) for name in DATA_SERVICES]


def app_services(prod: ProdDeployment) -> list[str]:
    return prod.services(prod.app_stack)


def placement(prod: ProdDeployment) -> dict[str, list[str]]:
    return {service: running_nodes(service) for service in data_services(prod) + app_services(prod)}


def data_history(prod: ProdDeployment) -> dict[str, list[tuple[str, str]]]:
    """Every task each data service ever had, with its node: one each while nothing moved."""
    return {
        service: sorted((t.id, t.node) for t in tasks(service, desired=None))
        for service in data_services(prod)
    }


@pytest.fixture(scope="module")
def first_data_tasks(prod: ProdDeployment, report: dict[str, Any]) -> dict[str, Any]:
    report["placement"] = placement(prod)
    return data_history(prod)


def test_data_services_run_on_the_labelled_node_only(
    prod: ProdDeployment, first_data_tasks: dict[str, Any]
) -> None:
    for service in data_services(prod):
        assert running_nodes(service) == [MANAGER], service
        assert [node for _, node in first_data_tasks[service]] == [MANAGER], service


def test_two_replicas_of_each_routed_service_run_on_two_nodes(prod: ProdDeployment) -> None:
    for name in ROUTED:
        nodes = running_nodes(prod.service(prod.app_stack, name))
        assert len(nodes) == 2, (name, nodes)
        assert len(set(nodes)) == 2, (name, nodes)


def test_polling_through_the_frontend_stays_on_one_of_two_websocket_tasks(
    prod: ProdDeployment, report: dict[str, Any]
) -> None:
    """Issue 26: socket.io polling sessions through the frontend's nginx, with the websocket
    service's two tasks on two nodes, each keep every request on the task that answered the
    handshake (the other would answer 400 "Session ID unknown")."""
    nodes = running_nodes(prod.service(prod.app_stack, "websocket"))
    assert len(set(nodes)) == 2, nodes
    summaries, failed = prod.polling_through_frontend(POLLING_SESSIONS)
    report["frontendPolling"] = summaries
    assert not failed, failed


def _backends(prod: ProdDeployment) -> list[Task]:
    found = [t for t in tasks(prod.service(prod.app_stack, "backend")) if t.state == "running"]
    assert len({t.node for t in found}) == 2, found
    return found


def test_a_file_written_on_one_node_is_read_on_another(prod: ProdDeployment) -> None:
    writer, reader = _backends(prod)
    path = f"{SITES}/{SITE}/public/files/multinode-{secrets.token_hex(4)}.txt"
    text = f"written on {writer.node}"
    prod.exec_in_task(writer, "sh", "-c", f'mkdir -p "$(dirname {path})" && echo "{text}" > {path}')
    assert prod.exec_in_task(reader, "cat", path) == text
    # And the site itself: the config the site jobs wrote is what both replicas read.
    config = f"{SITES}/{SITE}/site_config.json"
    assert prod.exec_in_task(writer, "cat", config) == prod.exec_in_task(reader, "cat", config)


def _app_tasks_on(prod: ProdDeployment, hostname: str) -> list[str]:
    return [
        f"{t.service}:{t.state}"
        for service in app_services(prod)
        for t in tasks(service)
        if t.node == hostname
    ]


def test_draining_a_worker_moves_its_tasks_without_a_failed_request(
    prod: ProdDeployment, report: dict[str, Any]
) -> None:
    moving = _app_tasks_on(prod, DRAINED)
    assert moving, f"nothing runs on {DRAINED}: the drain would prove nothing"
    loop = prod.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT, url=FRONTEND_URL)
    try:
        time.sleep(3)  # requests flowing to both replicas before the drain
        started = time.monotonic()
        docker("node", "update", "--availability", "drain", DRAINED)
        wait_for(
            f"no app task on {DRAINED}",
            lambda: not _app_tasks_on(prod, DRAINED),
            DRAIN_TIMEOUT,
            diagnose=lambda: _app_tasks_on(prod, DRAINED),
        )
        prod.wait_converged(app_services(prod), DRAIN_TIMEOUT)
        drained = round(time.monotonic() - started, 1)
        time.sleep(3)
    finally:
        summary = loop.finish()
    report["drain"] = {
        "node": DRAINED,
        "moved": moving,
        "seconds": drained,
        "requests": summary["sent"],
        "failed": summary["failed"],
        "errors": summary["errors"][:5],
    }
    assert summary["sent"] >= 50, summary
    assert summary["failed"] == 0, summary
    for name in ROUTED:
        nodes = running_nodes(prod.service(prod.app_stack, name))
        assert DRAINED not in nodes and len(set(nodes)) == 2, (name, nodes)
    docker("node", "update", "--availability", "active", DRAINED)


def _notes(prod: ProdDeployment) -> list[str]:
    return prod.get("/api/resource/Note")["data"]


def _rescheduled(prod: ProdDeployment, started: float) -> dict[str, float]:
    """Seconds from the failure until Swarm marked the node down, ran every replica again,
    and the site answered."""

    def marked_down() -> bool:
        line = docker("node", "inspect", "--format", "{{.Status.State}}", FAILED)
        return line == "down"

    def answers() -> bool:
        result = prod.probe("get", FRONTEND_URL + "/api/method/version", timeout=15)
        return result.returncode == 0

    wait_for(f"{FAILED} marked down", marked_down, RESCHEDULE_TIMEOUT)
    down = round(time.monotonic() - started, 1)
    prod.wait_converged(app_services(prod), RESCHEDULE_TIMEOUT)
    rescheduled = round(time.monotonic() - started, 1)
    wait_for("the site answering", answers, 60)
    return {
        "markedDownSeconds": down,
        "rescheduledSeconds": rescheduled,
        "answeringSeconds": round(time.monotonic() - started, 1),
    }


def test_a_failed_worker_has_its_tasks_rescheduled_and_keeps_every_row(
    prod: ProdDeployment, report: dict[str, Any]
) -> None:
    titles = [f"multinode-{secrets.token_hex(4)}" for _ in range(3)]
    for title in titles:
        prod.post("/api/resource/Note", {"title": title})
    before = _notes(prod)
    assert set(titles) <= set(before)
    lost = _app_tasks_on(prod, FAILED)
    assert lost, f"nothing runs on {FAILED}: its failure would prove nothing"
    (failed_node,) = (node for node in NODES if node.hostname == FAILED)
    loop = prod.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT, url=FRONTEND_URL)
    try:
        time.sleep(3)
        started = time.monotonic()
        crash(failed_node)
        figures = _rescheduled(prod, started)
    finally:
        # Requests in flight to the failed node's tasks are lost until DNS drops them:
        # counted, not asserted (a drain is how to take a node out without losing one).
        summary = loop.finish()

    report["nodeFailure"] = {
        "node": FAILED,
        "lost": lost,
        **figures,
        "requests": summary["sent"],
        "failed": summary["failed"],
        "errors": summary["errors"][:5],
        "placementAfter": placement(prod),
    }
    for name in ROUTED:
        nodes = running_nodes(prod.service(prod.app_stack, name))
        assert FAILED not in nodes and len(set(nodes)) == 2, (name, nodes)
    after = _notes(prod)
    assert set(before) <= set(after), sorted(set(before) - set(after))


def test_the_data_services_never_moved(
    prod: ProdDeployment, first_data_tasks: dict[str, Any]
) -> None:
    assert data_history(prod) == first_data_tasks
    for service in data_services(prod):
        assert running_nodes(service) == [MANAGER], service
