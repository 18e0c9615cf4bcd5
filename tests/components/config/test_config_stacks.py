"""Rules beyond the running stack's own keys (components/config/stacks.py and rules.py): one
hostname one owner across the repository's stack files, .localhost and a local Docker host for
local only, prod's safety without the policy pack, and a MariaDB series that only moves forward.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.config.loader import ConfigError
from components.config.stacks import (
    deployed_series,
    domain_owner_problems,
    redis_step_down_problems,
    series_step_down_problems,
    stack_file_domains,
)
from harness import STACKS, problem_at, render, render_error

VOLUME = "docker:index/volume:Volume"
CLAIMED = stack_file_domains()
DECOMMISSION = "brandclub:dataProtection.decommission"


def _refused(stack: str, overrides: dict[str, Any], **kwargs: Any) -> ConfigError:
    error, registered = render_error(stack, overrides, **kwargs)
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {error}"
    assert registered == []
    return error


# --- one hostname, one owner -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "domain", "owner"),
    [
        ("dev", "brandclub.com", "prod"),
        ("staging", "www.brandclub.com", "prod"),
        ("prod", "brandclub.localhost", "local"),
        ("local", "dev.brandclub.com", "dev"),
        ("dev", "STAGING.brandclub.com", "staging"),
    ],
)
def test_a_domain_another_stack_file_claims_is_refused(stack: str, domain: str, owner: str) -> None:
    problems = domain_owner_problems(stack, ["mine.brandclub.com", domain], CLAIMED)
    assert [(key, found) for key, found, _ in problems] == [("brandclub:domains[1]", repr(domain))]
    assert f"Pulumi.{owner}.yaml claims it" in problems[0][2]


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_the_issue_examples_stop_the_program(stack: str) -> None:
    domain = {"dev": "brandclub.com", "staging": "www.brandclub.com"}[stack]
    error = _refused(stack, {"brandclub:domains": [domain]})
    assert "Pulumi.prod.yaml claims it" in problem_at(error, "brandclub:domains[0]").expected


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.sampled_from(STACKS), st.data())
def test_every_domain_of_another_stack_file_is_refused_and_a_fresh_one_is_not(
    stack: str, data: st.DataObject
) -> None:
    theirs = sorted({d for other, ds in CLAIMED.items() if other != stack for d in ds})
    taken = data.draw(st.sampled_from(theirs))
    fresh = data.draw(st.from_regex(r"[a-z]{1,10}\.fresh-[a-z]{1,8}\.com", fullmatch=True))
    problems = domain_owner_problems(stack, [fresh, taken], CLAIMED)
    assert [key for key, *_ in problems] == ["brandclub:domains[1]"]


def test_each_stack_file_claims_its_own_domains_only() -> None:
    assert set(CLAIMED) == set(STACKS)
    for stack in STACKS:
        assert domain_owner_problems(stack, CLAIMED[stack], CLAIMED) == []


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_localhost_names_belong_to_local_only(stack: str) -> None:
    error = _refused(stack, {"brandclub:domains": ["shop.localhost"]})
    assert (
        "only a stack that runs on it (local)" in problem_at(error, "brandclub:domains[0]").expected
    )


def test_more_names_than_one_certificate_holds_are_refused() -> None:
    domains = [f"shop{index}.brandclub.net" for index in range(101)]
    error = _refused("dev", {"brandclub:domains": domains})
    assert "at most 100 names" in problem_at(error, "brandclub:domains").expected
    render("dev", {"brandclub:domains": domains[:100]})


@pytest.mark.parametrize("host", ["ssh://deploy@swarm.brandclub.com", "tcp://10.0.0.5:2376"])
def test_local_never_points_at_a_remote_docker_host(host: str) -> None:
    error = _refused("local", {"docker:host": host})
    assert "this machine's Docker engine" in problem_at(error, "docker:host").expected


def test_local_on_this_machines_engine_is_accepted() -> None:
    render("local", {"docker:host": "unix:///run/user/1000/docker.sock"})


# --- prod's safety without the policy pack ----------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"brandclub:dataProtection": {"protect": False}}, "brandclub:dataProtection.protect"),
        (
            {"brandclub:dataProtection": {"retainVolumes": False}},
            "brandclub:dataProtection.retainVolumes",
        ),
        (
            {"brandclub:services": {"backend": {"replicas": 1}}},
            "brandclub:services.backend.replicas",
        ),
        (
            {"brandclub:services": {"queue-long": {"replicas": 1}}},
            "brandclub:services.queue-long.replicas",
        ),
    ],
    ids=["unprotected", "volumes-not-retained", "one-backend", "one-long-queue"],
)
def test_prod_refuses_what_the_policy_pack_refuses_and_names_the_override(
    overrides: dict[str, Any], key: str
) -> None:
    problem = problem_at(_refused("prod", overrides), key)
    assert f"set {DECOMMISSION} to true" in problem.expected
    assert "docs/operations.md#decommissioning-prod" in problem.expected


def test_decommissioning_prod_lifts_its_safety_rules() -> None:
    rendering = render(
        "prod",
        {
            "brandclub:dataProtection": {
                "protect": False,
                "retainVolumes": False,
                "decommission": True,
            },
            "brandclub:services": {"backend": {"replicas": 1}},
        },
    )
    assert rendering.service("brandclub-prod", "backend").replicas == 1


@pytest.mark.parametrize("stack", ["dev", "staging", "local"])
def test_decommission_is_refused_outside_prod(stack: str) -> None:
    error = _refused(stack, {"brandclub:dataProtection": {"decommission": True}})
    assert "unset outside prod" in problem_at(error, DECOMMISSION).expected


def test_the_certificate_volume_is_protected_where_traefik_is_shared() -> None:
    [volume] = [
        v for v in render("prod").of_type(VOLUME) if v.name == "ingress-certificates-volume"
    ]
    assert volume.options["protect"] is True
    assert volume.options["retainOnDelete"] is True


# --- data only moves forward ------------------------------------------------------------------

MARIADB_11_4 = "mariadb:11.4@sha256:" + "a" * 64


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    "previous",
    [{"mariadbSeries": "11.8"}, {"images": {"mariadb": "mariadb:11.8.2-noble@sha256:" + "b" * 64}}],
    ids=["series-output", "image-output"],
)
def test_a_series_step_down_is_refused_before_anything_is_registered(
    stack: str, previous: dict[str, Any]
) -> None:
    error = _refused(stack, {}, previous_outputs=previous)
    problem = problem_at(error, "brandclub:mariadb.version")
    assert "11.8 or a later series" in problem.expected


@pytest.mark.parametrize(
    "previous",
    [{}, {"mariadbSeries": "10.6"}, {"images": {"mariadb": "mariadb:10.6@sha256:" + "c" * 64}}],
    ids=["never-deployed", "same-series", "same-series-from-image"],
)
def test_the_same_series_or_a_first_deploy_goes_ahead(previous: dict[str, Any]) -> None:
    rendering = render("dev", previous_outputs=previous, cached=False)
    assert rendering.exports["mariadbSeries"] == "10.6"


def test_an_upgrade_goes_ahead() -> None:
    newer = {"brandclub:mariadb": {"version": "10.11"}}
    rendering = render("dev", newer, previous_outputs={"mariadbSeries": "10.6"}, cached=False)
    assert rendering.exports["mariadbSeries"] == "10.11"


@pytest.mark.parametrize(
    ("configured", "deployed", "refused"),
    [("10.6", "11.4", True), ("10.11", "10.6", False), ("11.4", "11.4", False),
     ("10.11", "10.6", False), ("10.6", "10.11", True), ("11.4", None, False)],
)  # fmt: skip
def test_series_compare_as_numbers(configured: str, deployed: str | None, refused: bool) -> None:
    assert bool(series_step_down_problems(configured, deployed)) is refused


def test_the_deployed_series_comes_from_the_output_or_the_image() -> None:
    assert (
        deployed_series({"mariadbSeries": "11.4", "images": {"mariadb": "mariadb:10.6"}}) == "11.4"
    )
    assert deployed_series({"images": {"mariadb": MARIADB_11_4}}) == "11.4"
    assert deployed_series({"images": {"redis": "redis:6.2"}}) is None
    assert deployed_series({}) is None


@pytest.mark.parametrize("stack", STACKS)
def test_an_older_redis_than_deployed_is_refused(stack: str) -> None:
    previous = {"images": {"redis": "redis:7.2.4-alpine@sha256:" + "d" * 64}}
    error = _refused(stack, {}, previous_outputs=previous)
    assert "Redis 7.2 or later" in problem_at(error, "brandclub:images.redis").expected


@pytest.mark.parametrize(
    ("configured", "deployed", "refused"),
    [("redis:6.2-alpine", "7.2", True), ("redis:7.2", "6.2", False), ("redis:6.2", "6.2", False),
     ("redis:latest", "7.2", False), ("registry.io:5000/redis:7.0", "7.2", True)],
)  # fmt: skip
def test_redis_versions_compare_as_numbers(
    configured: str, deployed: str | None, refused: bool
) -> None:
    assert bool(redis_step_down_problems(configured, deployed)) is refused
