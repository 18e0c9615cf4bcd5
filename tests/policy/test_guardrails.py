"""The policy pack (policy/guardrails.py) on the resources this program really registers.

Each policy is called the way pulumi_policy's analyzer calls it: the registered inputs, exactly
as sent to the engine (``Registered.raw_inputs``), go through ``deserialize_properties`` and
``unknown_checking_proxy``; resource policies get ``ResourceValidationArgs`` with the resource's
options, stack policies ``StackValidationArgs`` of ``PolicyResource``s. Two stand-ins: a stack
policy sees outputs, which for a bridged provider are the inputs plus ``id`` (the mock's id
here), and a resource's ``dependencies`` are the ones it registered.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from harness import Rendering
from policy_checks import POLICY, Mutation, violations


@pytest.mark.parametrize("policy_name", sorted(POLICY))
def test_every_rendered_stack_passes(
    policy_name: str, rendered: dict[str, Rendering], stack: str
) -> None:
    assert violations(policy_name, rendered[stack]) == []


def test_every_guardrail_is_made_to_fire_here() -> None:
    """What matters about the pack's contents is that no policy goes untested, not a list of
    its names to keep in step: this module breaks a rendering so that each policy fires (and
    names no policy the pack does not have)."""
    called = set(re.findall(r'violations\(\s*"([a-z-]+)"', Path(__file__).read_text()))
    assert POLICY, "the pack has policies"
    assert set(POLICY) - called == set(), "a policy no test here makes fire"
    assert called - set(POLICY) == set(), "a test names a policy the pack does not have"


# ---- mutations -----------------------------------------------------------------------------


def _attach(network_id: str) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw["taskSpec"]["networksAdvanceds"].append({"id": network_id})

    return mutate


def _publish(raw: dict[str, Any]) -> None:
    raw["endpointSpec"]["ports"] = [
        {"targetPort": 3306.0, "publishedPort": 3306.0, "publishMode": "host", "protocol": "tcp"}
    ]


def _no_memory_limit(raw: dict[str, Any]) -> None:
    del raw["taskSpec"]["resources"]["limits"]["memoryBytes"]


def _replicas(count: float) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw["mode"]["replicated"]["replicas"] = count

    return mutate


def _env(name: str, value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw["taskSpec"]["containerSpec"].setdefault("env", {})[name] = value

    return mutate


def test_published_data_port_violates(rendered: dict[str, Rendering]) -> None:
    found = violations(
        "data-service-no-published-port", rendered["staging"], {"data-mariadb": _publish}
    )
    assert found == [
        (
            "data-mariadb",
            "data service brandclub-db-staging_mariadb publishes port(s) 3306; data services "
            "are reached only over their environment's overlay networks",
        )
    ]


def test_a_published_metrics_port_violates(rendered: dict[str, Rendering]) -> None:
    """The metrics entrypoint (:8082) is for the swarm network only."""

    def publish_metrics(raw: dict[str, Any]) -> None:
        port = {"targetPort": 8082.0, "publishedPort": 8082.0, "publishMode": "host"}
        raw["endpointSpec"]["ports"].append({**port, "protocol": "tcp"})

    found = violations(
        "ingress-publishes-web-ports-only", rendered["prod"], {"ingress-traefik": publish_metrics}
    )
    assert found == [
        (
            "ingress-traefik",
            "traefik_traefik publishes port(s) 8082; Traefik publishes only 80 and 443 (its ping "
            "and metrics entrypoints are reached on traefik-public)",
        )
    ]


def test_data_service_on_traefik_public_created_in_the_stack_violates(
    rendered: dict[str, Rendering],
) -> None:
    prod = rendered["prod"]
    public = prod.named("ingress-public-network")
    mutated = copy.deepcopy(prod)
    redis = next(r for r in mutated.resources if r.name == "data-redis-cache")
    redis.options["dependencies"].append(public.urn)
    found = violations(
        "data-service-private-networks", mutated, {"data-redis-cache": _attach("traefik-public-id")}
    )
    assert (
        "data-redis-cache",
        "data service brandclub-db-prod_redis-cache joins network traefik-public, which is not "
        "one of its environment's data networks",
    ) in found


def test_data_service_on_looked_up_traefik_public_violates(rendered: dict[str, Rendering]) -> None:
    # In dev traefik-public is looked up by name: no resource, only its (known) id shows it.
    found = violations(
        "data-service-private-networks",
        rendered["dev"],
        {"data-mariadb": _attach("traefik-public-id")},
    )
    assert found == [
        (
            "data-mariadb",
            "data service brandclub-db-dev_mariadb joins network id traefik-public-id, which is "
            "not one of its environment's data networks (a looked-up network such as "
            "traefik-public?)",
        )
    ]


def _unknown_ids(rendering: Rendering) -> dict[str, Mutation]:
    """A first preview: every network of the stack is new, so its id is unknown everywhere."""

    def blank(raw: dict[str, Any]) -> None:
        for attachment in raw.get("taskSpec", {}).get("networksAdvanceds", []):
            if not attachment["id"].startswith("traefik-public"):
                attachment["id"] = UNKNOWN_STRING_VALUE

    return {r.name: blank for r in rendering.of_type("docker:index/service:Service")}


def test_unknown_ids_during_a_first_preview_are_neither_match_nor_violation(
    rendered: dict[str, Rendering],
) -> None:
    dev = rendered["dev"]
    mutations = _unknown_ids(dev)
    assert violations("data-service-private-networks", dev, mutations) == []
    assert violations("frontend-off-database-network", dev, mutations) == []
    # ...and a looked-up network's known id still gives the data service away.
    blank = mutations["data-mariadb"]
    mutations["data-mariadb"] = lambda raw: (blank(raw), _attach("traefik-public-id")(raw))
    found = violations("data-service-private-networks", dev, mutations)
    assert [name for name, _ in found] == ["data-mariadb"]


def test_frontend_on_the_mariadb_network_violates(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = copy.deepcopy(rendered[stack])
    database = rendering.named("data-database-network")
    frontend = next(r for r in rendering.resources if r.name == "app-frontend")
    frontend.options["dependencies"].append(database.urn)
    network = f"brandclub-{stack}-mariadb"
    found = violations(
        "frontend-off-database-network", rendering, {"app-frontend": _attach(f"{network}-id")}
    )
    assert found == [
        (
            "app-frontend",
            f"brandclub-{stack}_frontend joins the MariaDB network ({network}); the frontend "
            "must never reach the database",
        )
    ]


def test_frontend_on_the_mariadb_network_is_caught_by_id_alone(
    rendered: dict[str, Rendering],
) -> None:
    found = violations(
        "frontend-off-database-network",
        rendered["prod"],
        {"app-frontend": _attach("brandclub-prod-mariadb-id")},
    )
    assert [name for name, _ in found] == ["app-frontend"]
    assert "(brandclub-prod-mariadb-id)" in found[0][1]


@pytest.mark.parametrize("service", ["app-websocket", "data-redis-queue", "ingress-traefik"])
def test_missing_memory_limit_violates(rendered: dict[str, Rendering], service: str) -> None:
    prod = rendered["prod"]
    name = prod.named(service).inputs["name"]
    found = violations("service-memory-limit", prod, {service: _no_memory_limit})
    assert found == [(service, f"service {name} has no memory limit (taskSpec.resources.limits)")]


@pytest.mark.parametrize(
    ("service", "replicas", "message"),
    [
        ("app-backend", 1.0, "brandclub-prod_backend runs 1 replica(s); prod needs at least 2"),
        (
            "app-queue-long",
            1.0,
            "brandclub-prod_queue-long runs 1 replica(s); prod needs at least 2",
        ),
        (
            "app-scheduler",
            2.0,
            "brandclub-prod_scheduler runs 2 replicas; scheduler must run exactly 1",
        ),
        ("app-backup", 2.0, "brandclub-prod_backup runs 2 replicas; backup must run exactly 1"),
    ],
)
def test_prod_replica_rules(
    rendered: dict[str, Rendering], service: str, replicas: float, message: str
) -> None:
    found = violations("prod-replicas", rendered["prod"], {service: _replicas(replicas)})
    assert found == [(service, message)]


def test_single_replicas_are_fine_outside_prod(rendered: dict[str, Rendering]) -> None:
    assert rendered["staging"].named("app-backend").replicas == 1
    assert violations("prod-replicas", rendered["staging"]) == []


@pytest.mark.parametrize(
    "resource",
    [
        "data-mariadb-volume",
        "data-mariadb",
        "data-database-network",
        "data-sites-volume",
    ],
)
def test_unprotected_prod_data_violates(rendered: dict[str, Rendering], resource: str) -> None:
    found = violations("prod-data-protected", rendered["prod"], protect={resource: False})
    assert [name for name, _ in found] == [resource]
    assert found[0][1].endswith(f"{resource} holds prod data and is not protected")


def test_the_retired_cache_volume_may_be_unprotected_in_prod(
    rendered: dict[str, Rendering],
) -> None:
    """Mounted by nothing, kept only so no up deletes a once-protected volume (naming.py)."""
    assert rendered["prod"].named("data-redis-cache-volume-retired").options["protect"] is False
    assert violations("prod-data-protected", rendered["prod"]) == []
    # Only that volume: the queue's, with the same layout of name, still must be protected.
    found = violations(
        "prod-data-protected", rendered["prod"], protect={"data-redis-queue-volume": False}
    )
    assert [name for name, _ in found] == ["data-redis-queue-volume"]


def test_an_unprotected_secret_is_allowed_in_prod(rendered: dict[str, Rendering]) -> None:
    # Secrets hold no data and a rotation must replace them.
    assert rendered["prod"].named("data-mariadb-root-password").options["protect"] is False
    assert violations("prod-data-protected", rendered["prod"]) == []


def test_unprotected_data_is_allowed_outside_prod(rendered: dict[str, Rendering]) -> None:
    assert rendered["dev"].named("data-mariadb-volume").options["protect"] is False
    assert violations("prod-data-protected", rendered["dev"]) == []


@pytest.mark.parametrize("variable", ["MYSQL_ROOT_PASSWORD", "GITHUB_TOKEN", "S3_SECRET_KEY"])
def test_secret_named_env_violates(rendered: dict[str, Rendering], variable: str) -> None:
    found = violations("no-secret-named-env", rendered["prod"], {"app-backup": _env(variable, "x")})
    assert found == [
        (
            "app-backup",
            f"service brandclub-prod_backup sets {variable} in a plain environment variable; "
            f"mount a Docker secret and pass its path in {variable}_FILE",
        )
    ]


def test_secret_file_variables_are_fine(rendered: dict[str, Rendering]) -> None:
    env = rendered["prod"].named("data-mariadb").container["env"]
    assert env["MARIADB_ROOT_PASSWORD_FILE"] == "/run/secrets/mariadb-root-password"
    found = violations(
        "no-secret-named-env", rendered["prod"], {"app-backend": _env("API_TOKEN_FILE", "/run/x")}
    )
    assert found == []


def test_docker_secret_value_in_env_violates(rendered: dict[str, Rendering]) -> None:
    from harness import TEST_ROOT_PASSWORD

    found = violations(
        "no-docker-secret-value-in-env",
        rendered["staging"],
        {"app-backend": _env("DB_ROOT", TEST_ROOT_PASSWORD)},
    )
    # Two secrets hold the root password (MariaDB's pinned one and the jobs'): both named,
    # sorted, whichever was registered first.
    names = sorted(
        resource.inputs["name"]
        for resource in rendered["staging"].of_type("docker:index/secret:Secret")
        if resource.inputs["name"].endswith(("-mariadb-initial-root-password", "-db-root-password"))
        or "-db-root-password-" in resource.inputs["name"]
    )
    assert len(names) == 2, names
    assert found == [
        (
            "app-backend",
            f"service brandclub-staging_backend puts the value of Docker secrets {names[0]} and "
            f"{names[1]} in plain environment variable DB_ROOT",
        )
    ]


@pytest.mark.parametrize(
    ("resource", "shown"),
    [
        ("ingress-public-network", "docker:index/network:Network traefik-public"),
        ("ingress-shared-network", "docker:index/network:Network shared-services"),
        ("ingress-traefik", "docker:index/service:Service traefik_traefik"),
    ],
)
def test_unprotected_shared_ingress_violates(
    rendered: dict[str, Rendering], resource: str, shown: str
) -> None:
    assert rendered["prod"].named(resource).options["protect"] is True
    found = violations("shared-ingress-protected", rendered["prod"], protect={resource: False})
    assert found == [
        (resource, f"{shown} is shared by every environment on the swarm and is not protected")
    ]


def _constraints(*constraints: str) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw["taskSpec"]["placement"]["constraints"] = list(constraints)

    return mutate


def test_prod_data_pinned_by_role_only_violates(rendered: dict[str, Rendering]) -> None:
    found = violations(
        "prod-data-on-labelled-node",
        rendered["prod"],
        {"data-mariadb": _constraints("node.role == manager")},
    )
    assert [name for name, _ in found] == ["data-mariadb"]
    assert "no node label pins it to the data node" in found[0][1]


def test_data_pinned_by_role_is_allowed_outside_prod(rendered: dict[str, Rendering]) -> None:
    mariadb = rendered["dev"].service("brandclub-db-dev", "mariadb")
    assert mariadb.inputs["taskSpec"]["placement"]["constraints"] == ["node.role == manager"]
    assert violations("prod-data-on-labelled-node", rendered["dev"]) == []
