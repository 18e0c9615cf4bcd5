"""Stack configuration: rules across keys, and every problem of a stack file in one error."""

from __future__ import annotations

from typing import Any

import pytest

from components.config.loader import ConfigError
from harness import (
    NO_ROOT_PASSWORD,
    problem_at,
    render,
    render_error,
    stack_file_config,
)

MiB = 1024**2
GiB = 1024**3


@pytest.mark.parametrize("stack", ["prod-eu", "prod2", "staging-blue"])
def test_a_stack_must_be_named_after_its_environment(stack: str) -> None:
    """Two stacks must never claim the same Docker names: prod-eu with environment prod would
    register prod's exact names."""
    environment = stack.split("-")[0].rstrip("0123456789")
    error, registered = render_error(stack, config=stack_file_config(environment))
    assert registered == []
    problem = problem_at(error, "brandclub:environment")
    assert f"would claim the Docker names of stack '{environment}'" in problem.expected
    assert problem.found == repr(environment)


@pytest.mark.parametrize(
    "overrides",
    [
        {"brandclub:domains": ["shop.xn--p1ai"]},
        {"brandclub:domains": ["dev.brandclub.com", "xn--80ak6aa92e.xn--p1ai"]},
        {"brandclub:frappe": {"realIpFrom": "172.16.0.0/12"}},
        {"brandclub:frappe": {"clientMaxBodySize": "10m"}},
        {"brandclub:backup": {"hostPath": "/srv/brand-club/backups"}},
        {"brandclub:placement": {"app": ["node.labels.tier == app", "node.platform.os==linux"]}},
        {"brandclub:images": {"mariadb": "mariadb:10.6.21-jammy"}},
        {
            "brandclub:services": {
                "backend": {
                    "limits": {"cpus": 0.01, "memory": "6M"},
                    "reservations": {"cpus": 0.01, "memory": "6M"},
                }
            }
        },
        {"docker:host": "ssh://deploy@swarm.brandclub.com", "aws:region": "eu-central-1"},
    ],
    ids=repr,
)
def test_good_values_near_the_new_limits_are_accepted(overrides: dict[str, Any]) -> None:
    render("dev", overrides)


def test_backup_key_absent_in_prod() -> None:
    config = stack_file_config("prod")
    del config["brandclub:services"]["backup"]
    error, registered = render_error("prod", config=config)
    assert registered == []
    problem = problem_at(error, "brandclub:services.backup")
    assert "a backup service in prod" in problem.expected


# --- 5. Many problems, one error ------------------------------------------------------------


def test_all_problems_are_reported_in_one_error() -> None:
    overrides = {
        "brandclub:environment": "dev",
        "brandclub:imageTag": "feature/x",
        "brandclub:dbRootPassword": "pw",
        "brandclub:services": {
            "backend": {"replicas": 0},
            "scheduler": {"replicas": 2},
        },
        "brandclub:mariadb": {"limits": {"memory": "2 GB"}},
        "brandclub:healthcheck": {"interval": "soon"},
        "brandclub:ingresss": {"manage": True},
    }
    error, registered = render_error("prod", overrides, secrets=NO_ROOT_PASSWORD)
    assert isinstance(error, ConfigError)
    assert registered == []
    expected_keys = {
        "brandclub:dbRootPassword",
        "brandclub:environment",
        "brandclub:imageTag",
        "brandclub:services.backend.replicas",
        "brandclub:services.scheduler.replicas",
        "brandclub:mariadb.limits.memory",
        "brandclub:healthcheck.interval",
        "brandclub:ingresss",
    }
    assert len(error.problems) == len(expected_keys)
    assert {problem.key for problem in error.problems} == expected_keys
    first_line, *lines = str(error).splitlines()
    assert first_line == (
        f"Stack 'prod' has {len(expected_keys)} configuration problem(s); nothing was deployed:"
    )
    assert len(lines) == len(expected_keys)
    for key in expected_keys:
        assert any(line.startswith(f"  - {key}: ") for line in lines), key


def test_every_broken_rule_of_one_object_is_reported() -> None:
    error, registered = render_error(
        "prod",
        {
            "brandclub:mariadb": {
                "version": "10.5",
                "bufferPoolSize": "4G",
                "reservations": {"memory": "3G"},
            }
        },
    )
    assert isinstance(error, ConfigError) and registered == []
    assert {p.key for p in error.problems} == {
        "brandclub:mariadb.version",
        "brandclub:mariadb.bufferPoolSize",
        "brandclub:mariadb.reservations.memory",
    }


def test_every_broken_stack_rule_is_reported() -> None:
    error, registered = render_error(
        "prod",
        {
            "brandclub:domains": ["brandclub.com", "brandclub.com"],
            "brandclub:redisCache": {"appendonly": True},
            "brandclub:images": {"mariadb": "mariadb:11.8"},
        },
    )
    assert isinstance(error, ConfigError) and registered == []
    assert {p.key for p in error.problems} == {
        "brandclub:domains",
        "brandclub:redisCache.appendonly",
        "brandclub:images.mariadb",
    }


def test_failure_ratio_must_survive_the_round_trip() -> None:
    error, registered = render_error("dev", {"brandclub:rollout": {"maxFailureRatio": 0.25}})
    assert isinstance(error, ConfigError) and registered == []
    [problem] = error.problems
    assert problem.key == "brandclub:rollout.maxFailureRatio"
    assert "multiple of 0.1" in problem.expected


@pytest.mark.parametrize("cpus", [float("nan"), float("inf")], ids=repr)
def test_a_non_finite_cpu_count_is_called_what_it_is(cpus: float) -> None:
    """Not "less than or equal to 64": a NaN that reached the model is no number at all."""
    from pydantic import ValidationError

    from components.config.sections import Resources

    with pytest.raises(ValidationError) as raised:
        Resources.model_validate({"cpus": cpus, "memory": "1G"})
    [detail] = raised.value.errors()
    assert detail["type"] == "finite_number"
