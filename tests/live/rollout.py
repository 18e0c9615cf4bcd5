"""A rollout on the local swarm in the program's order, as ``pulumi up`` runs it.

Pulumi runs the site jobs whose inputs changed (pulumi-command replaces a command whose
environment changed, unless the key is in its ``ignoreChanges``), in the order they are
registered, and then updates the services, each one only after every resource it depends on
(the backend before every other Frappe service): the docker provider waits for a service to
converge and fails ``pulumi up`` when Swarm rolls it back, so nothing that depends on it moves.
The tier does the same with ``docker stack deploy`` of partial stack files (one dependency
layer at a time; services left out of a file are left alone) and reports where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from stacktools.engine import Registered
from tests.live.swarm import ServiceState, docker, service_state, wait_for

SERVICE = "docker:index/service:Service"


def service_layers(services: Iterable[Registered]) -> list[list[str]]:
    """Service names in dependency layers: a service comes after every service it depends on
    (Pulumi's ``dependsOn`` edges, as the rendering records them)."""
    by_urn = {service.urn: service for service in services}
    depth: dict[str, int] = {}

    def layer(urn: str, seen: frozenset[str] = frozenset()) -> int:
        if urn in seen:
            raise ValueError(f"dependency cycle through {urn}")
        if urn not in depth:
            needs = [d for d in by_urn[urn].options.get("dependencies", []) if d in by_urn]
            depth[urn] = 1 + max((layer(d, seen | {urn}) for d in needs), default=-1)
        return depth[urn]

    layers: dict[int, list[str]] = {}
    for urn, service in by_urn.items():
        layers.setdefault(layer(urn), []).append(service.inputs["name"])
    return [sorted(layers[index]) for index in sorted(layers)]


def partial_stack_file(stack_file: Path, keep: Sequence[str], suffix: str) -> Path:
    """The stack file with only the services ``keep`` (keys, not full names), beside it so that
    its relative config files still resolve."""
    compose = yaml.safe_load(stack_file.read_text())
    compose["services"] = {k: v for k, v in compose["services"].items() if k in keep}
    partial = stack_file.with_name(f"{stack_file.stem}.{suffix}.yml")
    partial.write_text(yaml.safe_dump(compose, sort_keys=False))
    return partial


def task_template(name: str) -> str | None:
    found = docker(
        "service", "inspect", "--format", "{{json .Spec.TaskTemplate}}", name, check=False
    )
    return found or None


@dataclass
class LayerOutcome:
    services: list[str]
    changed: list[str]
    seconds: float
    failed: list[str] = field(default_factory=list)
    states: dict[str, ServiceState] = field(default_factory=dict)


def deploy_layer(
    stack: str, stack_file: Path, services: list[str], timeout: float, suffix: str
) -> LayerOutcome:
    """Deploy these services (full names) of the stack and wait until each one that changed
    has completed its update or Swarm has given up on it; unchanged ones must be converged."""
    keys = [name.removeprefix(f"{stack}_") for name in services]
    before = {name: task_template(name) for name in services}
    # Docker's clock and ours are the same host's; a second of slack for rounding.
    requested_at = datetime.now(UTC) - timedelta(seconds=1)
    started = time.monotonic()
    partial = partial_stack_file(stack_file, keys, suffix)
    docker("stack", "deploy", "--resolve-image", "never", "-c", str(partial), stack)
    # A service created now has no update to wait for: it must simply converge.
    changed = [
        name
        for name in services
        if before[name] is not None and task_template(name) != before[name]
    ]
    last: dict[str, ServiceState] = {}

    def settled() -> bool:
        last.update({name: service_state(name) for name in services})
        return all(
            last[name].update_outcome(requested_at) is not None
            if name in changed
            else last[name].converged
            for name in services
        )

    wait_for(
        f"{', '.join(services)} to finish updating",
        settled,
        timeout,
        diagnose=lambda: "\n".join(state.describe() for state in last.values()),
    )
    failed = [n for n in changed if last[n].update_outcome(requested_at) == "failed"]
    return LayerOutcome(services, changed, round(time.monotonic() - started, 1), failed, dict(last))


@dataclass
class Rollout:
    """What one ``pulumi up`` of the app did: the jobs it ran, the layers it deployed, and
    where it stopped (a failed job or a service Swarm rolled back), with timings."""

    tag: str
    job_seconds: dict[str, float] = field(default_factory=dict)
    failed_job: str | None = None
    failed_job_log: str = ""
    layers: list[LayerOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed_job is None and not any(layer.failed for layer in self.layers)

    @property
    def rolled_back(self) -> list[str]:
        return [name for layer in self.layers for name in layer.failed]

    def report(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "ok": self.ok,
            "seconds": self.seconds,
            "jobSeconds": self.job_seconds,
            "failedJob": self.failed_job,
            "layers": [
                {
                    "services": layer.services,
                    "changed": layer.changed,
                    "seconds": layer.seconds,
                    "rolledBack": layer.failed,
                }
                for layer in self.layers
            ],
        }


def changed_jobs(previous: Mapping[str, Mapping[str, str]], jobs: Iterable[Any]) -> list[Any]:
    """The jobs pulumi-command would run again: their environment differs from the one last
    applied in a key that is not in their ``ignoreChanges`` (or they never ran)."""
    chosen = []
    for job in jobs:
        before = previous.get(job.name)
        if before is None:
            chosen.append(job)
            continue
        ignored = {key.removeprefix("environment.") for key in job.ignore_changes}
        keys = (set(before) | set(job.environment)) - ignored
        if any(before.get(key) != job.environment.get(key) for key in keys):
            chosen.append(job)
    return chosen


def describe_jobs(jobs: Iterable[Any]) -> str:
    return json.dumps([job.name for job in jobs])
