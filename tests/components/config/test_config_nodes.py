"""Node roles and shared storage (components/config/nodes.py): the rules, and what each setting
does to the registered services, volumes and site jobs."""

from __future__ import annotations

import csv
from typing import Any

from components.config.loader import ConfigError
from components.config.nodes import SharedPathStorage, driver_options, storage_suffix
from harness import app_services, jobs, problem_at, render, render_error

VOLUME = "docker:index/volume:Volume"
SITES_RESOURCE = "data-sites-volume"
SHARED_PATH = {"brandclub:storage": {"sites": {"kind": "path", "path": "/mnt/shared/prod-sites"}}}
NFS = {
    "brandclub:storage": {
        "sites": {
            "kind": "nfs",
            "address": "10.0.0.5",
            "export": "/exports/prod-sites",
            "options": ["nfsvers=4.1", "hard", "timeo=600"],
        }
    }
}
SPREAD = {"brandclub:placement": {"dataNodeLabel": "brandclub.data", "maxReplicasPerNode": 1}}


def test_protected_data_without_a_data_node_label_is_refused_with_the_other_rules() -> None:
    error, registered = render_error(
        "prod",
        {
            "brandclub:placement": {"dataNodeLabel": None},
            "brandclub:redisCache": {"appendonly": True},
        },
    )
    assert isinstance(error, ConfigError), error
    assert registered == []
    problem = problem_at(error, "brandclub:placement.dataNodeLabel")
    assert "the label of the data node" in problem.expected
    assert problem_at(error, "brandclub:redisCache.appendonly")


def test_placement_and_storage_problems_are_reported_together() -> None:
    error, _ = render_error(
        "prod",
        {
            "brandclub:placement": {"ingress": ["node.labels.edge == 1"], "spread": "node.role"},
            "brandclub:storage": {"sites": {"kind": "nfs", "address": "10.0.0.5"}},
        },
    )
    assert "node.role == manager" in problem_at(error, "brandclub:placement.ingress").expected
    assert "node.id or node.labels" in problem_at(error, "brandclub:placement.spread").expected
    assert problem_at(error, "brandclub:storage.sites.export")


def test_unprotected_environments_need_no_data_node_label() -> None:
    rendering = render("dev")
    mariadb = rendering.service("brandclub-db-dev", "mariadb")
    assert mariadb.inputs["taskSpec"]["placement"]["constraints"] == ["node.role == manager"]


def test_replicated_app_services_spread_over_nodes_and_singletons_do_not() -> None:
    rendering = render("prod", SPREAD)
    spread = {}
    for name, service in rendering.services.items():
        placement = service.inputs["taskSpec"]["placement"]
        spread[name] = (placement.get("prefs"), placement.get("maxReplicas"))
    replicated = ["backend", "frontend", "websocket", "queue-default", "queue-short", "queue-long"]
    for service in replicated:
        assert spread[f"brandclub-prod_{service}"] == (["node.id"], 1), service
    for name in ["brandclub-prod_scheduler", "brandclub-prod_backup", "traefik_traefik"]:
        assert spread[name] == (None, None), name
    for name in ["mariadb", "redis-cache", "redis-queue"]:
        assert spread[f"brandclub-db-prod_{name}"] == (None, None), name
    # dev runs one replica of each: nothing to spread.
    for name, service in render("dev").services.items():
        assert "prefs" not in service.inputs["taskSpec"]["placement"], name


def test_traefik_runs_where_placement_ingress_says() -> None:
    constraints = ["node.role == manager", "node.labels.brandclub.ingress == true"]
    rendering = render("prod", {"brandclub:placement": {"ingress": constraints}})
    traefik = rendering.service("traefik", "traefik")
    assert traefik.inputs["taskSpec"]["placement"]["constraints"] == constraints


def _sites_mounts(rendering: Any, volume_name: str) -> dict[str, dict[str, Any]]:
    found = {}
    for name, service in rendering.services.items():
        for mount in service.container.get("mounts", []):
            if mount["target"].endswith("/sites"):
                assert mount["source"] == volume_name, name
                found[name] = mount.get("volumeOptions")
    return found


def _mount_options(fields: list[str]) -> tuple[str | None, dict[str, str]]:
    driver, options = None, {}
    for field in fields:
        key, _, value = field.partition("=")
        if key == "volume-driver":
            driver = value
        elif key == "volume-opt":
            option, _, setting = value.partition("=")
            options[option] = setting
    return driver, options


def _check_shared(overrides: dict[str, Any], expected: dict[str, str]) -> None:
    rendering = render("prod", {**SPREAD, **overrides})
    volume = rendering.named(SITES_RESOURCE)
    storage = overrides["brandclub:storage"]["sites"]
    assert volume.inputs["name"].startswith(f"brandclub-prod-sites-{storage['kind']}-")
    assert volume.inputs["driver"] == "local"
    assert volume.inputs["driverOpts"] == expected
    mounts = _sites_mounts(rendering, volume.inputs["name"])
    # Every app service of prod runs Frappe and mounts sites (mailpit, which does not, is
    # dev's; the restore drill keeps its throwaway sites in its own container): all with the
    # same options.
    expected_mounts = set(app_services(rendering)) - {"restore-drill"}
    assert set(mounts) == {f"brandclub-prod_{name}" for name in expected_mounts}
    for name, options in mounts.items():
        assert options == {"driverName": "local", "driverOptions": expected}, name
    mounting = [job for job in jobs(rendering).values() if "/sites" in str(job.inputs)]
    assert mounting
    for job in mounting:
        lines = job.inputs["environment"]["JOB_MOUNTS"].splitlines()
        sites = [next(csv.reader([line])) for line in lines if "/frappe-bench/sites" in line]
        assert len(sites) == 1, lines
        fields = sites[0]
        assert f"source={volume.inputs['name']}" in fields
        assert _mount_options(fields) == ("local", expected), job.name


def test_a_shared_path_reaches_the_volume_every_mount_and_every_job() -> None:
    _check_shared(SHARED_PATH, {"type": "none", "o": "bind", "device": "/mnt/shared/prod-sites"})


def test_nfs_options_reach_every_mount_intact_through_the_jobs_csv() -> None:
    # The `o` option holds commas: the job's --mount must quote it, or the CLI splits it.
    _check_shared(
        NFS,
        {
            "type": "nfs",
            "o": "addr=10.0.0.5,nfsvers=4.1,hard,timeo=600",
            "device": ":/exports/prod-sites",
        },
    )


def test_local_storage_keeps_the_volume_and_the_mounts_as_they_were() -> None:
    rendering = render("prod")
    volume = rendering.named(SITES_RESOURCE)
    assert volume.inputs["name"] == "brandclub-prod-sites"
    assert "driverOpts" not in volume.inputs and "driver" not in volume.inputs
    assert set(_sites_mounts(rendering, "brandclub-prod-sites").values()) == {None}


def test_switching_storage_is_a_replacement_of_the_protected_volume() -> None:
    """The same resource with another Docker name: Pulumi plans a replacement (driver options
    and name force one), which it refuses while the volume is protected; the old volume is
    retained on delete. Never a second resource beside the old one, never the old name with new
    options."""
    local = render("prod").named(SITES_RESOURCE)
    shared = render("prod", SHARED_PATH).named(SITES_RESOURCE)
    assert shared.urn == local.urn
    assert shared.inputs["name"] != local.inputs["name"]
    for volume in (local, shared):
        assert volume.options["protect"] is True
        assert volume.options["retainOnDelete"] is True


def test_other_options_are_another_volume_name() -> None:
    first = SharedPathStorage(kind="path", path="/mnt/a")
    second = SharedPathStorage(kind="path", path="/mnt/b")
    assert storage_suffix(first) != storage_suffix(second)
    assert storage_suffix(first).startswith("-path-")
    assert driver_options(first)["device"] == "/mnt/a"
