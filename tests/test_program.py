"""The program as a whole: project and stack files, component structure, stack outputs."""

from __future__ import annotations

import pulumi
import pytest
import yaml

from components.config.loader import load_stack_config
from components.data_layer import DataLayer, DataLayerArgs
from harness import REPO, STACKS, Rendering, mock_digest, pinned, render

COMPONENTS = {
    "brandclub:swarm:Images",
    "brandclub:swarm:DataLayer",
    "brandclub:swarm:SiteJobs",
    "brandclub:swarm:AppLayer",
    "brandclub:swarm:TraefikIngress",
}


def test_project_file_uses_python_with_a_virtualenv() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "brandclub"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


# The tag each stack file names: its branch's; local (no branch) a release of the public image.
APP_TAG = {"dev": "develop", "staging": "staging", "prod": "main", "local": "v15.96.1"}


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_file_targets_a_swarm_and_its_branch(stack: str) -> None:
    config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert config["docker:host"].startswith(("ssh://", "tcp://", "unix://"))
    assert config["brandclub:environment"] == stack
    assert config["brandclub:imageTag"] == APP_TAG[stack]
    # Secrets never live in a stack file in plain text.
    for key in ("dbRootPassword", "adminPassword", "registryPassword", "backupOffsiteSecret"):
        assert f"brandclub:{key}" not in config


def test_every_resource_hangs_below_a_component(rendered: dict[str, Rendering], stack: str) -> None:
    rendering = rendered[stack]
    components = {r.urn: r for r in rendering.resources if r.type in COMPONENTS}
    assert {c.type for c in components.values()} == COMPONENTS
    for resource in rendering.resources:
        if resource.type in COMPONENTS:
            assert resource.parent.endswith("pulumi:pulumi:Stack::brandclub-" + stack)
        else:
            assert resource.parent in components, resource.name


def test_urns_are_stable_names(rendered: dict[str, Rendering]) -> None:
    mariadb = rendered["prod"].service("brandclub-db-prod", "mariadb")
    assert mariadb.urn == (
        "urn:pulumi:prod::brandclub::brandclub:swarm:DataLayer$docker:index/service:Service"
        "::data-mariadb"
    )


def test_a_caller_cannot_reparent_a_components_children() -> None:
    """Children are created with the caller's options merged *under* parent=self."""

    def program() -> None:
        config = load_stack_config()
        outer = pulumi.ComponentResource("test:index:Outer", "outer")
        DataLayer(
            "data",
            DataLayerArgs.from_config(
                config, mariadb_image=config.mariadb_image, redis_image=config.images.redis
            ),
            opts=pulumi.ResourceOptions(parent=outer),
        )

    rendering = render("dev", program=program)
    [data] = rendering.of_type("brandclub:swarm:DataLayer")
    assert data.parent.endswith("test:index:Outer::outer")
    for resource in rendering.children_of("brandclub:swarm:DataLayer"):
        assert resource.parent == data.urn, resource.name


def test_outputs(rendered: dict[str, Rendering], stack: str) -> None:
    exports = rendered[stack].exports
    assert (
        exports["siteUrl"]
        == {
            "dev": "https://dev.brandclub.com",
            "staging": "https://staging.brandclub.com",
            "prod": "https://brandclub.com",
            "local": "https://brandclub.localhost",
        }[stack]
    )
    assert exports["networks"] == {
        "internal": f"brandclub-{stack}-network",
        "database": f"brandclub-{stack}-mariadb",
        "realtime": f"brandclub-{stack}-realtime",
        "public": "traefik-public",
        "sharedServices": "shared-services",
    }
    stacks = exports["stacks"]
    assert stacks[f"brandclub-db-{stack}"] == [
        f"brandclub-db-{stack}_{s}" for s in ("mariadb", "redis-cache", "redis-queue")
    ]
    assert set(stacks[f"brandclub-{stack}"]) == {
        name for name in rendered[stack].services if name.startswith(f"brandclub-{stack}_")
    }
    assert ("traefik" in stacks) is (stack in ("prod", "local"))
    repository = "frappe/erpnext" if stack == "local" else "ghcr.io/brand-club/brandclub"
    tagged = f"{repository}:{APP_TAG[stack]}"
    assert exports["appImage"] == pinned(tagged)
    assert exports["appImageDigest"] == mock_digest(tagged)
    # Where the backup service runs, its host directory is prepared first.
    prepare = ["prepare-backup-dir"] if stack == "prod" else []
    assert exports["siteJobs"] == [
        *prepare,
        "configurator",
        "create-site",
        "boot-check",
        "migrate",
    ]
