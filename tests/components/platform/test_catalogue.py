"""The service catalogue (components/platform/catalogue.py) is the one statement of the
services: the rendered stacks match it row for row, and a new worker row is all a new queue
takes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from components.config.units import duration_ns
from components.platform import catalogue
from components.platform.catalogue import APP_SERVICES, DATA_SERVICES, EnvironmentNames
from components.swarm.configs import HEALTH_CHECKS
from export_checks import export_into
from harness import REPO, STACKS, Rendering, env_of, jobs, render
from policy.guardrails import POLICIES
from policy_checks import violations

CATALOGUE = catalogue.__name__
WORKER_SETTINGS = {
    "replicas": 2,
    "limits": {"cpus": 1.0, "memory": "1G"},
    "reservations": {"cpus": 0.25, "memory": "256M"},
}


def _short_names(rendering: Rendering, stack: str) -> set[str]:
    prefix = f"{stack}_"
    return {name.removeprefix(prefix) for name in rendering.services if name.startswith(prefix)}


def test_every_rendered_service_is_a_row(rendered: dict[str, Rendering], stack: str) -> None:
    names = EnvironmentNames(stack)
    rendering = rendered[stack]
    assert _short_names(rendering, names.data_stack) == {row.name for row in DATA_SERVICES}
    enabled = {
        row.name
        for row in APP_SERVICES
        if not row.optional
        or stack in row.required_in
        or (row.environments != catalogue.ENVIRONMENTS and stack in row.environments)
        # Where its stack file enables it: prod's backup.drill.
        or (row.name == "restore-drill" and stack == "prod")
    }
    assert _short_names(rendering, names.app_stack) == enabled


def test_rows_say_what_the_services_do(rendered: dict[str, Rendering], stack: str) -> None:
    """Singletons carry the label and update stop-first; aliases and networks as the rows say."""
    rendering = rendered[stack]
    names = EnvironmentNames(stack)
    for row in APP_SERVICES:
        service = rendering.services.get(f"{names.app_stack}_{row.name}")
        if service is None:
            continue
        assert (service.labels.get(catalogue.SINGLETON_LABEL) == "true") is row.singleton
        order = service.inputs["updateConfig"]["order"]
        assert order == ("stop-first" if row.singleton else "start-first"), row.name
        joined = rendering.service_networks(service)
        assert {names.network(role) for role in row.networks} <= joined, row.name
        environment = {names.network(r) for r in ("internal", "database")}
        for attachment in service.inputs["taskSpec"]["networksAdvanceds"]:
            if rendering.network_name(attachment["id"]) in environment:
                assert attachment["aliases"] == list(row.aliases), row.name


def test_the_catalogue_depends_on_nothing() -> None:
    script = (
        f"import sys; import {CATALOGUE}; "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in "
        "('pulumi', 'pulumi_docker', 'pydantic', 'components')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == ["components", "components.platform", CATALOGUE]


# --- a new worker queue -------------------------------------------------------------------


def _program_modules() -> dict[str, ModuleType]:
    """The program's modules but the catalogue and its package, which the test keeps."""
    return {
        name: module
        for name, module in sys.modules.items()
        if name.startswith("components.") and name not in ("components.platform", CATALOGUE)
    }


def _install(modules: dict[str, ModuleType]) -> None:
    """Exactly ``modules`` as the program's modules, in sys.modules and on their packages."""
    for name in _program_modules():
        package, _, attribute = name.rpartition(".")
        if hasattr(sys.modules.get(package), attribute):
            delattr(sys.modules[package], attribute)
        del sys.modules[name]
    sys.modules.update(modules)
    for name, module in modules.items():
        package, _, attribute = name.rpartition(".")
        setattr(sys.modules[package], attribute, module)


# The extra row's name: no real row's, so the exercise holds whatever the catalogue has.
EXTRA = "queue-extra"
# A queue of the platform's own for the second case, with a timeout Frappe does not know.
OWN_QUEUE, OWN_TIMEOUT = "extra", 3000


@pytest.fixture(params=["frappe-queue", "own-queue"])
def extra_worker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[catalogue.Service]:
    """The catalogue with one more worker row (consuming Frappe's long queue, or a queue of its
    own with its QUEUE_TIMEOUTS entry), and the program's modules imported afresh from it for
    this test; the originals come back afterwards."""
    assert EXTRA not in {row.name for row in catalogue.services()}
    if request.param == "own-queue":
        assert OWN_QUEUE not in catalogue.QUEUE_TIMEOUTS
        monkeypatch.setitem(catalogue.QUEUE_TIMEOUTS, OWN_QUEUE, OWN_TIMEOUT)
        row = catalogue.worker(EXTRA, OWN_QUEUE, "short")
    else:
        row = catalogue.worker(EXTRA, "long", "short")
    monkeypatch.setattr(catalogue, "APP_SERVICES", (*catalogue.APP_SERVICES, row))
    original = _program_modules()
    _install({})
    try:
        yield row
    finally:
        _install(original)


def _with_numbers(stack: str, replicas: int) -> dict[str, Any]:
    """The stack file's own settings plus the new row's numbers: all a new queue adds."""
    return {"brandclub:services": {EXTRA: {**WORKER_SETTINGS, "replicas": replicas}}}


# A row on Frappe's own queue in every stack; a queue of its own, where the policies are most.
@pytest.mark.parametrize(
    ("extra_worker", "stack"),
    [*(("frappe-queue", stack) for stack in STACKS), ("own-queue", "prod")],
    indirect=["extra_worker"],
)
def test_a_new_queue_is_one_row_and_its_numbers(
    extra_worker: catalogue.Service, stack: str, tmp_path: Path
) -> None:
    """Stack config -> service -> health check -> export -> policy -> Frappe's workers map."""
    replicas = 2 if stack == "prod" else 1
    rendering = render(stack, _with_numbers(stack, replicas), cached=False)
    names = EnvironmentNames(stack)
    service = rendering.service(names.app_stack, EXTRA)
    queues = ",".join(extra_worker.queues)
    container = service.container
    # The service: one more `bench worker` for its queues, on the SQL networks, its replicas.
    assert container["args"] == ["bench", "worker", "--queue", queues]
    assert service.replicas == replicas
    assert rendering.service_networks(service) == {
        names.network("internal"),
        names.network("database"),
    }
    # Its grace outlasts the longest job of its queues (its own queue's timeout, if it has one).
    longest = max(catalogue.QUEUE_TIMEOUTS[queue] for queue in extra_worker.queues)
    assert duration_ns(container["stopGracePeriod"]) == (longest + 60) * 10**9
    # The health check: the library mounted, the worker found registered on its queues.
    assert container["healthcheck"]["tests"] == [
        "CMD",
        "bash",
        HEALTH_CHECKS.target,
        "worker_registered",
        queues,
    ]
    assert HEALTH_CHECKS.target in [config["fileName"] for config in container["configs"]]
    # The export: the stack file runs the same command, health check and replicas.
    exported = export_into(rendering, tmp_path)
    _, written = exported.compose_service(service)
    assert written["command"] == container["args"]
    assert written["healthcheck"]["test"] == container["healthcheck"]["tests"]
    assert written["deploy"]["replicas"] == replicas
    # The policy pack: no policy objects to it.
    found = {policy.name: violations(policy.name, rendering) for policy in POLICIES}
    assert {name: v for name, v in found.items() if v} == {}
    # Frappe's workers map, written by the configurator: a queue Frappe does not know is there
    # with its timeout, so Frappe accepts the jobs the new worker consumes.
    workers = json.loads(env_of(jobs(rendering)["configurator"])["FRAPPE_WORKERS"])
    assert workers == catalogue.frappe_workers_map()
    for queue in extra_worker.queues:
        assert queue in catalogue.FRAPPE_QUEUE_TIMEOUTS or queue in workers, queue
    if OWN_QUEUE in extra_worker.queues:
        assert workers[OWN_QUEUE] == {"timeout": OWN_TIMEOUT}
    # The docs' tables follow from the catalogue (tests/docs/test_doc_tables.py).
    assert f"| {EXTRA} | app |" in catalogue.markdown()


def test_prod_refuses_a_new_queue_with_one_replica(extra_worker: catalogue.Service) -> None:
    """The policy pack knows the row as one more stateless app service; the config refuses one
    replica too, unless prod is being taken down on purpose (decommission)."""
    one = {
        **_with_numbers("prod", 1),
        "brandclub:dataProtection": {"decommission": True},
    }
    found = violations("prod-replicas", render("prod", one, cached=False))
    assert [name for name, _ in found] == [f"app-{EXTRA}"]


def test_a_new_queue_needs_its_numbers_in_every_stack(extra_worker: catalogue.Service) -> None:
    from components.config.loader import ConfigError  # the loader built from the new row

    with pytest.raises(ConfigError) as raised:
        render("dev", cached=False)
    [problem] = raised.value.problems
    assert problem.key == f"brandclub:services.{EXTRA}"
    assert "required" in problem.expected


def test_the_docs_table_has_a_line_per_service() -> None:
    lines = catalogue.markdown().splitlines()
    assert len(lines) == 2 + len(catalogue.services())
    assert (
        "| queue-long | app |  | database, internal | every environment |  | long, default, short |"
        in lines
    )


# --- Frappe's workers map --------------------------------------------------------------------


def test_frappe_learns_only_the_queues_it_does_not_know() -> None:
    """Frappe's get_queues_timeout: its built-in queues, then each `workers` entry with its
    timeout. The map carries a queue of the platform's own and a built-in whose timeout
    differs; Frappe's own queues at their own timeouts need no entry."""
    assert catalogue.frappe_workers_map(dict(catalogue.FRAPPE_QUEUE_TIMEOUTS)) == {}
    table = {**catalogue.FRAPPE_QUEUE_TIMEOUTS, "reports": 3000, "long": 3600}
    assert catalogue.frappe_workers_map(table) == {
        "reports": {"timeout": 3000},
        "long": {"timeout": 3600},
    }


def test_frappe_accepts_every_queue_a_worker_consumes_with_its_timeout() -> None:
    """What Frappe makes of the map (get_queues_timeout) is every queue of every worker row,
    with the catalogue's timeout: no worker listens on a queue Frappe refuses."""
    learnt = {
        **catalogue.FRAPPE_QUEUE_TIMEOUTS,
        **{
            queue: entry.get("timeout", 300)
            for queue, entry in catalogue.frappe_workers_map().items()
        },
    }
    for row in catalogue.APP_SERVICES:
        for queue in row.queues:
            assert learnt.get(queue) == catalogue.QUEUE_TIMEOUTS[queue], (row.name, queue)
