"""The capacity preflight: before anything is registered, will the swarm hold this deploy?

``__main__.py`` runs it right after loading the configuration, so a deploy that does not fit
stops ``pulumi preview`` and ``pulumi up`` before a single resource changes, naming each node
that lacks room, the services on it and how much CPU and memory are missing. It compares the
swarm's real nodes and running tasks (components/swarm/swarm_facts.py, read at preview time)
with every service this stack runs, each at its reservations and replicas and within its
placement, plus the extra tasks its start-first rollout runs (components/swarm/capacity.py).

Where the swarm cannot be read (an offline preview, the offline engine's mocks, a host that does
not answer) it warns, saying why, and checks nothing; ``brandclub:capacity.check: false`` turns
it off, with a warning on every run (docs/capacity.md).
"""

from __future__ import annotations

import pulumi

from components.config.model import StackConfig
from components.config.sections import Resources
from components.data_layer import DATA_ROLLOUT
from components.frappe.processes import AppSettings, app_processes
from components.platform.catalogue import (
    MARIADB,
    REDIS_CACHE,
    REDIS_QUEUE,
    TRAEFIK,
    TRAEFIK_STACK,
    EnvironmentNames,
    Service,
)
from components.swarm.capacity import (
    NANO_CPUS,
    PlannedService,
    Reservation,
    Verdict,
    fit,
)
from components.swarm.swarm_facts import SwarmUnreachableError, read_swarm
from components.traefik_ingress import TRAEFIK_RESERVATIONS, TRAEFIK_ROLLOUT

CHECK_KEY = "brandclub:capacity.check"
# What an operator can change, named after the refusal.
REMEDIES = (
    "Make room (another node, or lower reservations or replicas of this or another stack), "
    "lower brandclub:rollout.parallelism to shrink the surge, or, knowing better than the "
    f"check, set {CHECK_KEY} to false (docs/capacity.md)."
)


class CapacityError(pulumi.RunError):
    """The deploy does not fit the swarm. A RunError: Pulumi prints it without a traceback."""

    def __init__(self, stack: str, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(
            f"Stack '{stack}' does not fit the swarm's nodes; nothing was deployed "
            f"(capacity preflight):\n{verdict.report()}\n{REMEDIES}"
        )


def reservation(resources: Resources) -> Reservation:
    return Reservation(round(resources.cpus * NANO_CPUS), resources.memory)


def _planned(
    name: str,
    row: Service,
    replicas: int,
    resources: Resources,
    constraints: tuple[str, ...],
    parallelism: int,
    max_replicas: int | None = None,
) -> PlannedService:
    starts_first = row.update_order == "start-first"
    return PlannedService(
        name=name,
        replicas=replicas,
        reservation=reservation(resources),
        constraints=constraints,
        max_replicas=max_replicas,
        # Swarm starts `parallelism` new tasks at a time, never more than there are replicas.
        surge=min(parallelism, replicas) if starts_first else 0,
    )


def planned_services(config: StackConfig) -> tuple[PlannedService, ...]:
    """Every swarm service this stack runs, as the layers build it (tests/components/
    test_capacity_preflight.py holds the two to the same replicas, reservations and placement).
    The site jobs reserve nothing and are left out."""
    names = EnvironmentNames(config.environment)
    data_constraints = tuple(config.placement.data_constraints)
    data = (
        (MARIADB, config.mariadb),
        (REDIS_CACHE, config.redis_cache),
        (REDIS_QUEUE, config.redis_queue),
    )
    planned = [
        _planned(
            names.service(names.data_stack, row.name),
            row,
            1,
            settings.reservations,
            data_constraints,
            DATA_ROLLOUT.parallelism,
        )
        for row, settings in data
    ]
    settings = AppSettings.from_config(config)
    for process in app_processes():
        service = config.services.get(process.service)
        if service is None:
            continue
        placement = process.placement(settings, service.replicas)
        planned.append(
            _planned(
                names.service(names.app_stack, process.service),
                process.row,
                service.replicas,
                service.reservations,
                placement.constraints,
                config.rollout.parallelism,
                placement.max_replicas,
            )
        )
    if config.ingress.manage:
        planned.append(
            _planned(
                names.service(TRAEFIK_STACK, TRAEFIK.name),
                TRAEFIK,
                1,
                TRAEFIK_RESERVATIONS,
                tuple(config.placement.ingress),
                TRAEFIK_ROLLOUT.parallelism,
            )
        )
    return tuple(planned)


def check_capacity(config: StackConfig, docker_host: str | None) -> Verdict | None:
    """Raise :class:`CapacityError` where the deploy does not fit; the verdict where it does,
    None where nothing was checked (switched off, or the swarm could not be read: a warning
    says which)."""
    if not config.capacity.check:
        pulumi.log.warn(
            f"Capacity preflight off ({CHECK_KEY}: false): nothing checks that the swarm's "
            "nodes hold this deploy's reservations and its start-first surge."
        )
        return None
    try:
        facts = read_swarm(docker_host)
    except SwarmUnreachableError as error:
        pulumi.log.warn(
            f"Capacity preflight not run: the swarm could not be read ({error}). Nothing "
            "checked that its nodes hold this deploy's reservations and start-first surge."
        )
        return None
    verdict = fit(facts, planned_services(config))
    if not verdict.fits:
        raise CapacityError(pulumi.get_stack(), verdict)
    pulumi.log.info(
        f"Capacity preflight: this deploy, its start-first surge and every other running task "
        f"fit on the swarm's {sum(node.schedulable for node in facts.nodes)} ready node(s)."
    )
    return verdict
