"""Does the swarm hold a deploy? The capacity preflight's arithmetic, free of Pulumi and Docker.

Swarm starts a task only on a node whose unreserved CPU and memory cover the task's
reservations; a task that fits nowhere stays pending, and a start-first rollout whose extra
task fits nowhere stalls half-way with the old and the new release side by side. This module
answers from facts (the nodes, and the tasks that run on them: components/swarm/swarm_facts.py
reads them off the swarm) and the services a deploy plans (components/capacity_preflight.py)
whether everything fits, and where it does not, which node lacks how much for which services.

How it counts:

- a node offers the CPUs and memory ``docker node inspect`` reports, if it is active and ready
  (a drained or down node takes no new task);
- every running task of a service the deploy does not replace stays where it runs, with its own
  reservations: other stacks, other environments, anything on the swarm;
- the deploy's tasks are placed one by one as Swarm's scheduler would: on a node their
  constraints allow, never more than ``max_replicas`` of a service on one node, among the nodes
  with room the one running fewest tasks of that service;
- the surge: a start-first service runs ``surge`` extra tasks while it rolls (its parallelism,
  at most its replicas), placed after every steady task and counted as if every start-first
  service rolled at once. A placement preference (spread) is a preference: it never stops a
  task, so it is not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from components.config.formats import CONSTRAINT

NANO_CPUS = 1_000_000_000
# The node attributes a constraint may name (components/config/formats.py accepts only these
# and node.labels.* / engine.labels.*).
_ATTRIBUTES = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
_NODE_LABELS = "node.labels."
_ENGINE_LABELS = "engine.labels."


@dataclass(frozen=True)
class Reservation:
    """CPU (nano-CPUs, as Docker counts them) and memory (bytes)."""

    nano_cpus: int = 0
    memory: int = 0

    def __add__(self, other: Reservation) -> Reservation:
        return Reservation(self.nano_cpus + other.nano_cpus, self.memory + other.memory)

    def __sub__(self, other: Reservation) -> Reservation:
        return Reservation(self.nano_cpus - other.nano_cpus, self.memory - other.memory)

    def times(self, count: int) -> Reservation:
        return Reservation(self.nano_cpus * count, self.memory * count)

    def covers(self, other: Reservation) -> bool:
        return self.nano_cpus >= other.nano_cpus and self.memory >= other.memory

    def beyond(self, capacity: Reservation) -> Reservation:
        """How much of this exceeds ``capacity``, in each dimension (0 where it fits)."""
        return Reservation(
            max(0, self.nano_cpus - capacity.nano_cpus), max(0, self.memory - capacity.memory)
        )

    def __str__(self) -> str:
        return f"{cpus_text(self.nano_cpus)}, {memory_text(self.memory)}"


def cpus_text(nano_cpus: int) -> str:
    return f"{nano_cpus / NANO_CPUS:.2f} CPUs"


def memory_text(memory: int) -> str:
    if abs(memory) >= 1024**3:
        return f"{memory / 1024**3:.2f} GiB"
    return f"{memory / 1024**2:.0f} MiB"


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str
    capacity: Reservation
    labels: Mapping[str, str] = field(default_factory=dict)
    engine_labels: Mapping[str, str] = field(default_factory=dict)
    os: str = "linux"
    arch: str = "x86_64"
    # Active and ready: Swarm places new tasks there.
    schedulable: bool = True

    def attribute(self, name: str) -> str | None:
        """The value a constraint on ``name`` compares with; None where the node has none."""
        values = dict(
            zip(_ATTRIBUTES, (self.id, self.hostname, self.role, self.os, self.arch), strict=True)
        )
        if name in values:
            return values[name]
        if name.startswith(_NODE_LABELS):
            return self.labels.get(name.removeprefix(_NODE_LABELS))
        if name.startswith(_ENGINE_LABELS):
            return self.engine_labels.get(name.removeprefix(_ENGINE_LABELS))
        return None

    def meets(self, constraints: Iterable[str]) -> bool:
        """Whether every constraint holds here. Swarm compares values without regard to case,
        and a missing label equals nothing (so ``!=`` holds)."""
        for constraint in constraints:
            match = CONSTRAINT.fullmatch(constraint.strip())
            if match is None:
                return False  # the config refuses these; Swarm would never place the task
            value = self.attribute(match["attribute"])
            equal = value is not None and value.casefold() == match["value"].casefold()
            if equal != (match["operator"] == "=="):
                return False
        return True


@dataclass(frozen=True)
class RunningTask:
    """A task Swarm wants running on a node (desired state running)."""

    service: str
    node_id: str
    reservation: Reservation


@dataclass(frozen=True)
class SwarmFacts:
    nodes: tuple[Node, ...]
    tasks: tuple[RunningTask, ...] = ()


@dataclass(frozen=True)
class PlannedService:
    """A service as the deploy will run it."""

    name: str
    replicas: int
    reservation: Reservation
    constraints: tuple[str, ...] = ()
    max_replicas: int | None = None
    # Extra tasks while a start-first rollout overlaps old and new; 0 for stop-first.
    surge: int = 0


@dataclass
class NodeLoad:
    """What is reserved on one node: other services' running tasks, the deploy's tasks and its
    surge tasks, each by service name and task count."""

    node: Node
    others: dict[str, int] = field(default_factory=dict)
    ours: dict[str, int] = field(default_factory=dict)
    surge: dict[str, int] = field(default_factory=dict)
    reserved: Reservation = field(default_factory=Reservation)
    surge_reserved: Reservation = field(default_factory=Reservation)

    def add(self, into: dict[str, int], service: str, reservation: Reservation) -> None:
        into[service] = into.get(service, 0) + 1
        self.reserved += reservation
        if into is self.surge:
            self.surge_reserved += reservation

    def tasks_of(self, service: str) -> int:
        return self.ours.get(service, 0) + self.surge.get(service, 0)

    @property
    def free(self) -> Reservation:
        return self.node.capacity - self.reserved

    @property
    def missing(self) -> Reservation:
        return self.reserved.beyond(self.node.capacity)

    @property
    def headroom(self) -> float:
        """The free share of the scarcer resource (negative when overcommitted)."""
        capacity, free = self.node.capacity, self.free
        shares = [
            free.nano_cpus / capacity.nano_cpus if capacity.nano_cpus else -1.0,
            free.memory / capacity.memory if capacity.memory else -1.0,
        ]
        return min(shares)


@dataclass(frozen=True)
class Unplaceable:
    """Tasks of a planned service that no node may take, whatever its free capacity."""

    service: str
    tasks: int
    surge: bool
    why: str


@dataclass(frozen=True)
class Verdict:
    overloaded: tuple[NodeLoad, ...]
    unplaceable: tuple[Unplaceable, ...]
    # Whether the steady state alone (no surge) fits.
    fits_without_surge: bool
    planned: Mapping[str, PlannedService] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return not self.overloaded and not self.unplaceable

    def report(self) -> str:
        """Every overloaded node with its services and what is missing, every task with no
        node, and whether the start-first surge is what breaks it."""
        if self.fits:
            return "every node holds its reservations and the start-first surge"
        lines = []
        if self.fits_without_surge:
            lines.append(
                "It fits only without the start-first surge: the extra tasks a start-first "
                "rollout runs beside the old ones (parallelism per service) have no room."
            )
        for load in self.overloaded:
            lines += self._node_lines(load)
        for stuck in self.unplaceable:
            kind = "start-first surge task" if stuck.surge else "task"
            lines.append(f"- {stuck.service}: {stuck.tasks} {kind}(s) fit on no node: {stuck.why}")
        return "\n".join(lines)

    def _node_lines(self, load: NodeLoad) -> list[str]:
        node, missing = load.node, load.missing
        lines = [
            f"- node {node.hostname} ({node.role}; {node.capacity}): {load.reserved} reserved; "
            f"missing {cpus_text(missing.nano_cpus)} and {memory_text(missing.memory)}"
        ]
        ours = []
        for service, count in sorted(load.ours.items()):
            each = self.planned[service].reservation if service in self.planned else None
            surge = load.surge.get(service, 0)
            text = f"{service} {count} task(s)"
            text += f" + {surge} start-first surge task(s)" if surge else ""
            ours.append(text + (f" ({each} each)" if each else ""))
        ours += [
            f"{service} {count} start-first surge task(s)"
            for service, count in sorted(load.surge.items())
            if service not in load.ours
        ]
        lines.append("    this deploy:" + ("" if ours else " nothing"))
        lines += [f"      {text}" for text in ours]
        if load.others:
            lines.append("    other services running there:")
            lines += [f"      {s} {n} task(s)" for s, n in sorted(load.others.items())]
        if load.surge:
            lines.append(f"    of which the start-first surge: {load.surge_reserved}")
        return lines


def fit(facts: SwarmFacts, planned: Sequence[PlannedService]) -> Verdict:
    """Place the planned services, their surge included, beside what already runs."""
    by_name = {service.name: service for service in planned}
    loads, stuck = _place(facts, planned, with_surge=True)
    overloaded = tuple(load for load in loads if load.missing != Reservation())
    if not overloaded and not stuck:
        return Verdict((), (), True, by_name)
    steady_loads, steady_stuck = _place(facts, planned, with_surge=False)
    steady_fits = not steady_stuck and all(load.missing == Reservation() for load in steady_loads)
    return Verdict(overloaded, tuple(stuck), steady_fits, by_name)


def _place(
    facts: SwarmFacts, planned: Sequence[PlannedService], *, with_surge: bool
) -> tuple[list[NodeLoad], list[Unplaceable]]:
    replaced = {service.name for service in planned}
    loads = {node.id: NodeLoad(node) for node in facts.nodes if node.schedulable}
    for task in facts.tasks:
        # A task of a replaced service goes when its replacement comes: not counted twice.
        if task.service not in replaced and task.node_id in loads:
            loads[task.node_id].add(loads[task.node_id].others, task.service, task.reservation)
    eligible = {
        service.name: [load for load in loads.values() if load.node.meets(service.constraints)]
        for service in planned
    }
    # The most constrained and the largest first, as a packer would: a data-node service has
    # one node to go to, a small unconstrained one fits in what is left anywhere.
    order = sorted(
        planned,
        key=lambda s: (
            len(eligible[s.name]),
            -s.reservation.memory,
            -s.reservation.nano_cpus,
            s.name,
        ),
    )
    stuck: list[Unplaceable] = []
    for service in order:
        stuck += _place_tasks(service, service.replicas, False, eligible[service.name])
    if with_surge:
        for service in order:
            stuck += _place_tasks(service, service.surge, True, eligible[service.name])
    return sorted(loads.values(), key=lambda load: load.node.hostname), stuck


def _place_tasks(
    service: PlannedService, count: int, surge: bool, eligible: list[NodeLoad]
) -> list[Unplaceable]:
    if count <= 0:
        return []
    if not eligible:
        constraints = ", ".join(service.constraints)
        return [Unplaceable(service.name, count, surge, f"no ready node meets {constraints}")]
    left = 0
    for _ in range(count):
        limit = service.max_replicas
        room = [load for load in eligible if limit is None or load.tasks_of(service.name) < limit]
        if not room:
            left += 1
            continue
        fitting = [load for load in room if load.free.covers(service.reservation)]
        # Swarm's spread among the nodes with room: fewest tasks of the service, then the most
        # room. Where none has room, the one with the most, so the shortfall is the least.
        pick = (
            min(fitting, key=lambda load: (load.tasks_of(service.name), -load.headroom))
            if fitting
            else max(room, key=lambda load: load.headroom)
        )
        pick.add(pick.surge if surge else pick.ours, service.name, service.reservation)
    if not left:
        return []
    why = (
        f"at most {service.max_replicas} per node (maxReplicas), and its constraints allow "
        f"{len(eligible)} node(s)"
    )
    return [Unplaceable(service.name, left, surge, why)]
