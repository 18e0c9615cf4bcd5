"""The capacity preflight in the program (components/capacity_preflight.py): the swarm read through
pulumi-command's local.run (answered here with recorded docker CLI output,
tests/fixtures/capacity), a deploy that does not fit stopped before anything is registered, an
unreadable swarm said so, and the switch that turns it off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from components.capacity_preflight import CHECK_KEY, CapacityError, planned_services
from components.config.loader import load_stack_config
from components.swarm.capacity import NANO_CPUS
from harness import (
    FIXTURES,
    TEST_SECRETS,
    Rendering,
    assert_reported_before_registering,
    bad_input,
    render,
    render_error,
)
from stacktools import engine

LOCAL_RUN = "command:local:run"


def recorded(name: str) -> engine.CommandRunner:
    """A local.run that prints what the gathering script printed on a recorded swarm."""
    stdout = (FIXTURES / "capacity" / f"{name}.txt").read_text()

    def run(args: Mapping[str, Any]) -> Mapping[str, Any]:
        assert "docker_cli node inspect" in args["command"]
        return {"command": args["command"], "stdout": stdout, "stderr": ""}

    return run


def refusal(stack: str, overrides: Mapping[str, Any], swarm: str) -> CapacityError:
    error, registered = render_error(stack, overrides, commands=recorded(swarm))
    assert isinstance(error, CapacityError), f"{type(error).__name__}: {error}"
    assert registered == [], "refused before anything was registered"
    return error


def services(**reservations: Mapping[str, Any]) -> dict[str, Any]:
    return {"brandclub:services": reservations}


def test_prod_fits_the_recorded_three_node_swarm() -> None:
    rendering = engine.render("prod", secrets=TEST_SECRETS, commands=recorded("three-nodes"))
    assert not [w for w in rendering.warnings if "Capacity preflight" in w]
    assert rendering.services  # the deploy went on


def test_a_deploy_that_fits_only_without_the_surge_is_refused() -> None:
    # dev on one 2-CPU node: 1.9 CPUs of reservations fit, the start-first surge of 0.9 does not.
    big_backend = {"replicas": 2, "reservations": {"cpus": 0.6, "memory": "256M"}}
    error = refusal("dev", services(backend=big_backend), "one-node")
    assert error.verdict.fits_without_surge
    message = str(error)
    assert "Stack 'dev' does not fit the swarm's nodes; nothing was deployed" in message
    assert "fits only without the start-first surge" in message
    assert "- node laptop (manager; 2.00 CPUs, 7.65 GiB)" in message
    assert "brandclub-dev_backend 2 task(s) + 1 start-first surge task(s)" in message
    assert "missing 0.80 CPUs and 0 MiB" in message
    assert "brandclub:rollout.parallelism" in message and CHECK_KEY in message


def test_a_deploy_that_oversubscribes_the_data_node_is_refused() -> None:
    # swarm-1, the data node, has 7.7 GiB and 2 GiB reserved by a monitoring stack's Prometheus.
    mariadb = {
        "limits": {"cpus": 2.0, "memory": "6G"},
        "reservations": {"cpus": 0.5, "memory": "5G"},
    }
    error = refusal("prod", {"brandclub:mariadb": mariadb}, "three-nodes")
    assert not error.verdict.fits_without_surge
    [node] = error.verdict.overloaded
    assert node.node.hostname == "swarm-1"
    message = str(error)
    assert "- node swarm-1 (manager; 4.00 CPUs, 7.70 GiB)" in message
    assert "brandclub-db-prod_mariadb 1 task(s) (0.50 CPUs, 5.00 GiB each)" in message
    assert "other services running there:\n      monitoring_prometheus 1 task(s)" in message
    # With the backup (256M) and the restore drill (256M), which run on the data node too.
    assert "brandclub-prod_restore-drill 1 task(s) (0.05 CPUs, 256 MiB each)" in message
    assert "8.06 GiB reserved; missing 0.00 CPUs and 375 MiB" in message


def test_other_stacks_count_and_the_replaced_tasks_do_not() -> None:
    # Staging's backend holds 1 GiB on swarm-2 and swarm-3; prod's own running backend tasks
    # are replaced, not added.
    big = {"replicas": 2, "reservations": {"cpus": 0.25, "memory": "6G"}}
    big["limits"] = {"cpus": 2.0, "memory": "6G"}
    error = refusal("prod", services(backend=big), "three-nodes")
    message = str(error)
    assert "brandclub-staging_backend 1 task(s)" in message
    assert "brandclub-prod_backend 1 task(s)" in message


def test_an_unreadable_swarm_is_said_and_nothing_pretends_to_be_checked(
    rendered: dict[str, Rendering],
) -> None:
    rendering = rendered["prod"]
    (run,) = [args for token, args in rendering.invokes if token == LOCAL_RUN]
    assert run["environment"] == {"DOCKER_HOST": "ssh://deploy@swarm.brandclub.com"}
    (warning,) = [w for w in rendering.warnings if "Capacity preflight" in w]
    assert warning.startswith(
        "Capacity preflight not run: the swarm could not be read (ssh://deploy@swarm.brandclub"
        f".com: {engine.OFFLINE_RUN}). Nothing checked"
    )


def test_a_swarm_the_docker_cli_cannot_reach_is_said() -> None:
    def unreachable(args: Mapping[str, Any]) -> Mapping[str, Any]:
        stdout = (
            "### unreachable\nCannot connect to the Docker daemon at unix:///var/run/docker.sock."
            " Is the docker daemon running?\n"
        )
        return {"stdout": stdout, "stderr": ""}

    rendering = engine.render("local", secrets=TEST_SECRETS, commands=unreachable)
    (warning,) = [w for w in rendering.warnings if "Capacity preflight" in w]
    assert (
        "(unix:///var/run/docker.sock: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?)"
    ) in warning


def test_the_check_can_be_switched_off_with_a_warning() -> None:
    rendering = render("dev", {"brandclub:capacity": {"check": False}})
    assert not [token for token, _ in rendering.invokes if token == LOCAL_RUN]
    assert any(f"Capacity preflight off ({CHECK_KEY}: false)" in w for w in rendering.warnings)


@pytest.mark.parametrize(
    bad_input.__code__.co_varnames[: bad_input.__code__.co_argcount - 1],
    [
        bad_input(
            "dev",
            {"brandclub:capacity": {"check": "no"}},
            CHECK_KEY,
            "a valid boolean",
            "'no'",
            "text",
        ),
        bad_input(
            "dev",
            {"brandclub:capacity": {"chek": False}},
            "brandclub:capacity.chek",
            "no such key; did you mean 'check'?",
            "false",
            "typo",
        ),
    ],
)
def test_the_switch_is_validated(
    stack: str, overrides: Mapping[str, Any], key: str, expected: str, found: str
) -> None:
    assert_reported_before_registering(stack, overrides, key, expected, found)


def test_the_plan_is_what_the_layers_deploy(rendered: dict[str, Rendering], stack: str) -> None:
    planned = {}

    def program() -> None:
        planned.update({s.name: s for s in planned_services(load_stack_config())})

    render(stack, program=program)
    deployed = rendered[stack].services
    assert set(planned) == set(deployed)
    for name, service in deployed.items():
        task = service.inputs["taskSpec"]
        reservation = task["resources"]["reservation"]
        placement = task["placement"]
        update = service.inputs["updateConfig"]
        plan = planned[name]
        assert plan.replicas == service.replicas, name
        assert plan.reservation.nano_cpus == reservation["nanoCpus"], name
        assert plan.reservation.memory == reservation["memoryBytes"], name
        assert list(plan.constraints) == placement["constraints"], name
        assert plan.max_replicas == placement.get("maxReplicas"), name
        starts_first = update["order"] == "start-first"
        assert plan.surge == (min(update["parallelism"], plan.replicas) if starts_first else 0)
    assert NANO_CPUS == 10**9
