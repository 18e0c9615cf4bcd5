"""The service catalogue (components/platform/catalogue.py) is the one statement of the
services: the rendered stacks match it row for row, and a new worker row is all a new queue
takes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from components.platform import catalogue
from components.platform.catalogue import APP_SERVICES, DATA_SERVICES, EnvironmentNames
from components.swarm.configs import HEALTH_CHECKS
from harness import REPO, Rendering, render
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


@pytest.fixture
def reports_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[catalogue.Service]:
    """The catalogue with one more worker row, and the program's modules imported afresh from
    it for this test; the originals come back afterwards."""
    row = catalogue.worker("queue-reports", "long", "short")
    monkeypatch.setattr(catalogue, "APP_SERVICES", (*catalogue.APP_SERVICES, row))
    original = _program_modules()
    _install({})
    try:
        yield row
    finally:
        _install(original)


def test_a_new_queue_is_one_row_and_its_numbers(reports_worker: catalogue.Service) -> None:
    rendering = render(
        "prod", {"brandclub:services": {"queue-reports": WORKER_SETTINGS}}, cached=False
    )
    service = rendering.service("brandclub-prod", "queue-reports")
    container = service.container
    assert container["args"] == ["bench", "worker", "--queue", "long,short"]
    assert container["healthcheck"]["tests"] == [
        "CMD",
        "bash",
        HEALTH_CHECKS.target,
        "worker_registered",
        "long,short",
    ]
    assert container["stopGracePeriod"] == "26m"  # the long queue's 1500 s and the margin
    assert service.replicas == 2
    assert rendering.service_networks(service) == {
        "brandclub-prod-network",
        "brandclub-prod-mariadb",
    }
    # The policy pack knows it as one more stateless app service.
    assert violations("prod-replicas", rendering) == []
    # The config refuses it too, unless prod is being taken down on purpose (decommission).
    one = {
        "brandclub:services": {"queue-reports": {**WORKER_SETTINGS, "replicas": 1}},
        "brandclub:dataProtection": {"decommission": True},
    }
    found = violations("prod-replicas", render("prod", one, cached=False))
    assert [name for name, _ in found] == ["app-queue-reports"]


def test_a_new_queue_needs_its_numbers_in_every_stack(reports_worker: catalogue.Service) -> None:
    from components.config.loader import ConfigError  # the loader built from the new row

    with pytest.raises(ConfigError) as raised:
        render("dev", cached=False)
    [problem] = raised.value.problems
    assert problem.key == "brandclub:services.queue-reports"
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
    # Today the catalogue's workers consume Frappe's own queues only.
    assert catalogue.frappe_workers_map() == {}
