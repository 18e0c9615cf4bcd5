"""The capacity preflight's arithmetic (components/swarm/capacity.py): reservations plus the
start-first surge, beside every other running task, within placement."""

from __future__ import annotations

import pytest

from components.swarm.capacity import (
    NANO_CPUS,
    Node,
    PlannedService,
    Reservation,
    RunningTask,
    SwarmFacts,
    fit,
)

GIB = 1024**3
MIB = 1024**2
DATA = "node.labels.brandclub.data == true"


def cpus(value: float, memory: int = 0) -> Reservation:
    return Reservation(round(value * NANO_CPUS), memory)


def node(hostname: str, capacity: Reservation, role: str = "worker", **fields) -> Node:
    return Node(id=f"id-{hostname}", hostname=hostname, role=role, capacity=capacity, **fields)


ONE = node("one", cpus(2, 8 * GIB), role="manager")
THREE = (
    node("swarm-1", cpus(4, 8 * GIB), role="manager", labels={"brandclub.data": "true"}),
    node("swarm-2", cpus(4, 8 * GIB)),
    node("swarm-3", cpus(4, 8 * GIB)),
)


def web(replicas: int, each: Reservation, surge: int = 1, **fields) -> PlannedService:
    return PlannedService("prod_web", replicas, each, surge=surge, **fields)


def test_a_deploy_that_fits_passes() -> None:
    verdict = fit(SwarmFacts((ONE,)), [web(2, cpus(0.5, 1 * GIB))])
    assert verdict.fits
    assert verdict.report() == "every node holds its reservations and the start-first surge"


def test_a_deploy_that_fits_only_without_the_surge_is_refused_naming_the_surge() -> None:
    # 2 x 0.8 CPUs fit in 2 CPUs; the third task a start-first rollout starts does not.
    verdict = fit(SwarmFacts((ONE,)), [web(2, cpus(0.8, 256 * MIB))])
    assert not verdict.fits
    assert verdict.fits_without_surge
    report = verdict.report()
    assert "fits only without the start-first surge" in report
    assert "- node one (manager; 2.00 CPUs, 8.00 GiB)" in report
    assert "prod_web 2 task(s) + 1 start-first surge task(s)" in report
    assert "missing 0.40 CPUs and 0 MiB" in report
    assert "of which the start-first surge: 0.80 CPUs, 256 MiB" in report


def test_the_surge_is_what_parallelism_starts_and_stop_first_has_none() -> None:
    each = cpus(0.5, 256 * MIB)
    assert fit(SwarmFacts((ONE,)), [web(3, each, surge=0)]).fits
    assert fit(SwarmFacts((ONE,)), [web(3, each, surge=1)]).fits
    assert not fit(SwarmFacts((ONE,)), [web(3, each, surge=2)]).fits


def test_a_deploy_that_oversubscribes_the_data_node_is_refused() -> None:
    # The other nodes have room to spare, but the data services may only run on swarm-1.
    planned = [
        PlannedService("prod_mariadb", 1, cpus(0.5, 6 * GIB), constraints=(DATA,)),
        PlannedService("prod_redis-queue", 1, cpus(0.1, 3 * GIB), constraints=(DATA,)),
        web(2, cpus(0.25, 1 * GIB)),
    ]
    verdict = fit(SwarmFacts(THREE), planned)
    assert not verdict.fits and not verdict.fits_without_surge
    assert [load.node.hostname for load in verdict.overloaded] == ["swarm-1"]
    report = verdict.report()
    assert "- node swarm-1 (manager; 4.00 CPUs, 8.00 GiB): 0.60 CPUs, 9.00 GiB reserved" in report
    assert "missing 0.00 CPUs and 1.00 GiB" in report
    assert "prod_mariadb 1 task(s)" in report and "prod_redis-queue 1 task(s)" in report
    # The app service went to the other nodes, and is not named on the data node.
    assert "prod_web" not in report


def test_other_stacks_reservations_count_where_their_tasks_run() -> None:
    planned = [web(2, cpus(0.5, 2 * GIB), surge=0)]
    assert fit(SwarmFacts((ONE,)), planned).fits
    staging = RunningTask("staging_web", ONE.id, cpus(0.25, 5 * GIB))
    verdict = fit(SwarmFacts((ONE,), (staging,)), planned)
    assert not verdict.fits
    report = verdict.report()
    assert "other services running there:\n      staging_web 1 task(s)" in report
    assert "missing 0.00 CPUs and 1.00 GiB" in report


def test_the_tasks_a_deploy_replaces_are_not_counted_twice() -> None:
    planned = [web(2, cpus(0.5, 3 * GIB), surge=0)]
    running = tuple(RunningTask("prod_web", ONE.id, cpus(0.5, 3 * GIB)) for _ in range(2))
    assert fit(SwarmFacts((ONE,), running), planned).fits


def test_only_ready_active_nodes_take_tasks() -> None:
    drained = node("drained", cpus(64, 64 * GIB), schedulable=False)
    verdict = fit(SwarmFacts((ONE, drained)), [web(2, cpus(1.5, GIB), surge=0)])
    assert [load.node.hostname for load in verdict.overloaded] == ["one"]


def test_placement_constraints_keep_tasks_off_other_nodes() -> None:
    # Room on the workers does not help a service that runs on managers only.
    planned = [PlannedService("traefik", 3, cpus(1.5), constraints=("node.role == manager",))]
    verdict = fit(SwarmFacts(THREE), planned)
    assert [load.node.hostname for load in verdict.overloaded] == ["swarm-1"]
    unconstrained = [PlannedService("traefik", 3, cpus(1.5))]
    assert fit(SwarmFacts(THREE), unconstrained).fits


def test_max_replicas_per_node_leaves_no_room_for_the_surge() -> None:
    # One task per node on three nodes: the fourth, the surge, has no node to go to.
    verdict = fit(SwarmFacts(THREE), [web(3, cpus(0.1, MIB), max_replicas=1)])
    assert not verdict.fits and verdict.fits_without_surge
    assert verdict.overloaded == ()
    (stuck,) = verdict.unplaceable
    assert stuck.surge and stuck.tasks == 1
    assert "prod_web: 1 start-first surge task(s) fit on no node: at most 1 per node" in (
        verdict.report()
    )
    assert fit(SwarmFacts(THREE), [web(2, cpus(0.1, MIB), max_replicas=1)]).fits


def test_a_constraint_no_node_meets_is_reported() -> None:
    planned = [PlannedService("db", 1, cpus(0.1), constraints=("node.labels.zone == b",))]
    verdict = fit(SwarmFacts(THREE), planned)
    assert "db: 1 task(s) fit on no node: no ready node meets node.labels.zone == b" in (
        verdict.report()
    )


def test_tasks_spread_over_the_nodes_with_room() -> None:
    verdict = fit(SwarmFacts(THREE), [web(3, cpus(3.5, MIB), surge=0)])
    assert verdict.fits


@pytest.mark.parametrize(
    ("constraint", "meets"),
    [
        ("node.role == manager", True),
        ("node.role != manager", False),
        ("node.hostname == SWARM-1", True),  # Swarm compares values without regard to case
        ("node.labels.brandclub.data == true", True),
        ("node.labels.zone == a", False),
        ("node.labels.zone != a", True),  # a missing label equals nothing
        ("engine.labels.disk == ssd", True),
        ("node.platform.os == linux", True),
        ("node.platform.arch == aarch64", False),
        ("node.id == id-swarm-1", True),
    ],
)
def test_constraints_as_swarm_reads_them(constraint: str, meets: bool) -> None:
    manager = node(
        "swarm-1",
        cpus(1),
        role="manager",
        labels={"brandclub.data": "true"},
        engine_labels={"disk": "ssd"},
    )
    assert manager.meets([constraint]) is meets
