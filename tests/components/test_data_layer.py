"""DataLayer: networks, volumes, MariaDB/Redis services, the root password, protection."""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest
import yaml

from components.platform.catalogue import RETIRED_VOLUME_ENVIRONMENTS
from components.platform.mariadb_series import FRAPPE_CHARSET_FLAGS, SUPPORTED_SERIES
from harness import (
    DELETE,
    REPO,
    TEST_ROOT_PASSWORD,
    TEST_SECRETS,
    Rendering,
    depends_on,
    find_plain_secret,
    is_secret,
    jobs,
    pinned,
    render,
    render_error,
)

DATA_LAYER = "brandclub:swarm:DataLayer"
RETIRED_CACHE_VOLUME = "data-redis-cache-volume-retired"
DATA_SERVICES = ("mariadb", "redis-cache", "redis-queue")


def _networks(rendering: Rendering) -> dict[str, dict]:
    return {
        n.inputs["name"]: n.inputs
        for n in rendering.children_of(DATA_LAYER)
        if n.type == "docker:index/network:Network"
    }


def test_data_layer_owns_the_environment_networks(
    rendered: dict[str, Rendering], stack: str
) -> None:
    networks = _networks(rendered[stack])
    assert set(networks) == {
        f"brandclub-{stack}-network",
        f"brandclub-{stack}-mariadb",
        f"brandclub-{stack}-realtime",
    }
    internal = networks[f"brandclub-{stack}-network"]
    assert internal["driver"] == "overlay" and internal["attachable"] is True
    database = networks[f"brandclub-{stack}-mariadb"]
    assert database["driver"] == "overlay" and database["internal"] is True
    assert not database.get("attachable")
    # Websocket to frontend only, never out of the swarm.
    realtime = networks[f"brandclub-{stack}-realtime"]
    assert realtime["driver"] == "overlay" and realtime["internal"] is True
    assert not realtime.get("attachable")


def test_data_layer_owns_every_volume(rendered: dict[str, Rendering], stack: str) -> None:
    volumes = {
        v.inputs["name"]
        for v in rendered[stack].children_of(DATA_LAYER)
        if v.type == "docker:index/volume:Volume"
    }
    purposes = ("mariadb", "redis-queue", "sites", "logs")
    # The retired cache volume, only where it ever existed (RETIRED_VOLUME_ENVIRONMENTS).
    purposes += ("redis-cache",) if stack in RETIRED_VOLUME_ENVIRONMENTS else ()
    assert volumes == {f"brandclub-{stack}-{p}" for p in purposes}


def test_no_data_service_publishes_a_port_or_joins_traefik_public(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    for name in DATA_SERVICES:
        service = rendering.service(f"brandclub-db-{stack}", name)
        assert not service.inputs["endpointSpec"].get("ports"), name
        assert "traefik-public" not in rendering.service_networks(service), name
        assert not any(label.startswith("traefik.") for label in service.labels), name


def test_data_services_are_stop_first_pinned_and_health_checked(
    rendered: dict[str, Rendering], stack: str
) -> None:
    for name in DATA_SERVICES:
        service = rendered[stack].service(f"brandclub-db-{stack}", name)
        assert service.inputs["updateConfig"]["order"] == "stop-first"
        assert service.inputs["rollbackConfig"]["order"] == "stop-first"
        # prod's Pulumi.prod.yaml names the data node's label; dev and staging do not.
        pinned = ["node.labels.brandclub.data == true"] if stack == "prod" else []
        constraints = service.inputs["taskSpec"]["placement"]["constraints"]
        assert constraints == ["node.role == manager", *pinned], name


def test_mariadb_gets_frappe_charset_flags_for_its_series() -> None:
    flags_106 = render("dev").service("brandclub-db-dev", "mariadb").container["args"]
    for flag in (
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--skip-character-set-client-handshake",
        "--skip-innodb-read-only-compressed",
    ):
        assert flag in flags_106

    newer = render("dev", {"brandclub:mariadb": {"version": "11.8"}})
    mariadb = newer.service("brandclub-db-dev", "mariadb")
    assert mariadb.container["image"] == pinned("mariadb:11.8")
    assert "--character-set-server=utf8mb4" in mariadb.container["args"]
    # 11.x refuses to start with an option it no longer has.
    assert "--skip-innodb-read-only-compressed" not in mariadb.container["args"]


def test_new_environments_get_mariadb_11_8_with_frappe_dockers_flags() -> None:
    """A stack that names no series gets frappe_docker's: 11.8, charset flags only."""
    fresh = render("dev", {"brandclub:mariadb": {"version": DELETE}})
    mariadb = fresh.service("brandclub-db-dev", "mariadb")
    assert mariadb.container["image"] == pinned("mariadb:11.8")
    flags = [f for f in mariadb.container["args"] if not f.startswith("--innodb-buffer-pool")]
    assert flags == list(FRAPPE_CHARSET_FLAGS)
    # Upgrades the system tables after a later version bump.
    assert mariadb.container["env"]["MARIADB_AUTO_UPGRADE"] == "1"
    assert not any("end of life" in w for w in fresh.warnings)


def test_existing_stacks_state_their_series(stack: str) -> None:
    """The default moved to 11.8; a database made on 10.6 must never follow it unasked. local,
    made later, states the series its Frappe v15 image runs on."""
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    expected = "10.11" if stack == "local" else "10.6"
    assert document["config"]["brandclub:mariadb"]["version"] == expected


def test_root_password_is_a_docker_secret_never_an_environment_variable(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    mariadb = rendering.service(f"brandclub-db-{stack}", "mariadb")
    env = mariadb.container["env"]
    assert "MYSQL_ROOT_PASSWORD" not in env and "MARIADB_ROOT_PASSWORD" not in env
    [secret_mount] = mariadb.container["secrets"]
    assert env["MARIADB_ROOT_PASSWORD_FILE"] == secret_mount["fileName"]
    # The image's entrypoint reads the file after dropping to the mysql user: Docker's default
    # 0444 in the task's private tmpfs, not a root-only mode.
    assert "fileMode" not in secret_mount

    [secret] = [
        r for r in rendering.children_of(DATA_LAYER) if r.type == "docker:index/secret:Secret"
    ]
    # Pinned (issue 24 item 1): a name without a fingerprint, the value it was created with.
    assert secret.inputs["name"] == f"brandclub-db-{stack}-mariadb-initial-root-password"
    assert sorted(secret.options["ignoreChanges"]) == ["data", "name"]
    assert secret_mount["secretId"] == f"{secret.inputs['name']}-id"
    # The data input reaches the engine wrapped as a secret, so state and previews mask it.
    assert is_secret(secret.raw_inputs["data"])
    encoded = base64.b64encode(TEST_ROOT_PASSWORD.encode()).decode()
    assert secret.raw_inputs["data"]["value"] == encoded
    for resource in rendering.resources:
        assert find_plain_secret(resource.raw_inputs, TEST_ROOT_PASSWORD) == [], resource.name


def test_end_of_life_series_warns_at_deploy_time() -> None:
    assert any(
        "MariaDB 10.6 reached its community end of life" in w for w in render("dev").warnings
    )
    supported = render("dev", {"brandclub:mariadb": {"version": "10.11"}})
    # 10.11 is supported until 2028-02-16.
    if date.today() < SUPPORTED_SERIES["10.11"].community_end_of_life:
        assert not any("end of life" in w for w in supported.warnings)


@pytest.mark.parametrize(
    ("series", "today", "warns"),
    [
        ("10.6", date(2026, 7, 5), False),
        ("10.6", date(2026, 7, 6), True),
        ("10.11", date(2026, 11, 26), False),
        ("11.8", date(2030, 1, 1), True),
    ],
)
def test_end_of_life_warning_dates(series: str, today: date, warns: bool) -> None:
    warning = SUPPORTED_SERIES[series].end_of_life_warning(today)
    assert (warning is not None) is warns
    if warning:
        assert series in warning and "brandclub:mariadb.version" in warning


def test_prod_data_is_protected_and_volumes_retained(rendered: dict[str, Rendering]) -> None:
    children = rendered["prod"].children_of(DATA_LAYER)
    assert len(children) == 12  # 3 networks, 5 volumes, 1 secret, 3 services
    for resource in children:
        # The root-password secret holds no data and must stay replaceable for a rotation; the
        # retired cache volume holds nothing and must stay deletable.
        expected_protect = resource.type != "docker:index/secret:Secret" and resource.name != (
            RETIRED_CACHE_VOLUME
        )
        assert resource.options["protect"] is expected_protect, resource.name
        expected_retain = True if resource.type == "docker:index/volume:Volume" else None
        assert resource.options["retainOnDelete"] is expected_retain, resource.name


def test_dev_data_is_not_protected(rendered: dict[str, Rendering]) -> None:
    for resource in rendered["dev"].children_of(DATA_LAYER):
        assert not resource.options["protect"], resource.name
        expected_retain = resource.name == RETIRED_CACHE_VOLUME
        assert bool(resource.options["retainOnDelete"]) is expected_retain, resource.name


def test_redis_cache_persists_nothing(rendered: dict[str, Rendering], stack: str) -> None:
    """bench's cache config: `save ""`, no AOF; frappe_docker's cache has no volume (issue 9
    item 15). The queue keeps its volume and its configured AOF."""
    cache = rendered[stack].service(f"brandclub-db-{stack}", "redis-cache").container
    args = cache["args"]
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--appendonly") + 1] == "no"
    assert not cache.get("mounts")
    queue = rendered[stack].service(f"brandclub-db-{stack}", "redis-queue").container
    assert "--save" not in queue["args"]
    assert [m["target"] for m in queue["mounts"]] == ["/data"]


@pytest.mark.parametrize("stack", RETIRED_VOLUME_ENVIRONMENTS)
def test_the_cache_volume_is_retired_without_any_deletion(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """prod's brandclub-prod-redis-cache exists and was protected: Pulumi refuses to delete a
    protected resource, so it stays declared, same Docker name and labels (a label change would
    replace it), the old Pulumi name kept as an alias (no replacement), unprotected and retained
    on delete, so that dropping the declaration later never touches Docker."""
    volume = rendered[stack].named(RETIRED_CACHE_VOLUME)
    assert volume.inputs["name"] == f"brandclub-{stack}-redis-cache"
    labels = {i["label"]: i["value"] for i in volume.inputs["labels"]}
    assert labels == {"brandclub.environment": stack, "brandclub.layer": "data"}
    assert volume.options["aliases"] == [
        {"spec": {"name": "data-redis-cache-volume", "parentUrn": ""}}
    ]
    assert volume.options["protect"] is False
    assert volume.options["retainOnDelete"] is True
    mounted = {
        m["source"]
        for service in rendered[stack].services.values()
        for m in service.container.get("mounts") or []
    }
    assert volume.inputs["name"] not in mounted


def test_a_persisted_cache_is_refused() -> None:
    error, registered = render_error("prod", {"brandclub:redisCache": {"appendonly": True}})
    assert registered == []
    [problem] = [p for p in error.problems if p.key == "brandclub:redisCache.appendonly"]
    assert "false: the cache is never persisted" in problem.expected


def test_protection_is_switchable_per_stack() -> None:
    # prod refuses it unless it is being taken down on purpose (decommission).
    relaxed = render(
        "prod",
        {
            "brandclub:dataProtection": {
                "protect": False,
                "retainVolumes": False,
                "decommission": True,
            }
        },
    )
    for resource in relaxed.children_of(DATA_LAYER):
        assert not resource.options["protect"], resource.name
        if resource.name != RETIRED_CACHE_VOLUME:
            assert not resource.options["retainOnDelete"], resource.name


# --- Root password rotation (issue 24 items 1 and 2) ----------------------------------------------

ROTATED_ROOT_PASSWORD = "rotated-root-Zq8!pw"


def _rotation(stack: str) -> Rendering:
    """The first ``pulumi up`` of a rotation: the new password and the one MariaDB still has."""
    secrets = {
        **TEST_SECRETS,
        "brandclub:dbRootPassword": ROTATED_ROOT_PASSWORD,
        "brandclub:dbRootPasswordPrevious": TEST_ROOT_PASSWORD,
    }
    return render(stack, secrets=secrets)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_rotation_changes_no_data_service(rendered: dict[str, Rendering], stack: str) -> None:
    """Every data-layer resource, MariaDB's service spec above all, is registered byte for byte
    as before: Swarm has nothing to restart. The pinned secret's data is the one input that
    follows the config, and ignore_changes keeps the value the engine has."""
    before, after = rendered[stack], _rotation(stack)
    pinned = f"brandclub-db-{stack}-mariadb-initial-root-password"
    for resource in before.children_of(DATA_LAYER):
        again = after.named(resource.name)
        if resource.inputs.get("name") == pinned:
            assert {k: v for k, v in again.inputs.items() if k != "data"} == {
                k: v for k, v in resource.inputs.items() if k != "data"
            }
            assert "data" in again.options["ignoreChanges"]
            continue
        assert json.dumps(again.inputs, sort_keys=True) == json.dumps(
            resource.inputs, sort_keys=True
        ), resource.name
        assert again.options == resource.options, resource.name
    assert {r.name for r in after.children_of(DATA_LAYER)} == {
        r.name for r in before.children_of(DATA_LAYER)
    }


def test_a_rotation_changes_the_jobs_secret_and_only_the_rotation_job_mounts_it_first(
    rendered: dict[str, Rendering],
) -> None:
    """What a rotation does change: the jobs' own root-password secret (a new name, created
    beside the old one) and the jobs that mount it; of those, only the rotation job runs before
    the password is set, and every other one waits for it (nothing else points at the new
    password before the job has set it: a failed rotation leaves it unused)."""
    before, after = rendered["prod"], _rotation("prod")
    old = before.named("jobs-db-root-password").inputs["name"]
    new = after.named("jobs-db-root-password").inputs["name"]
    assert old != new and old.rsplit("-", 1)[0] == new.rsplit("-", 1)[0] == (
        "brandclub-prod-db-root-password"
    )
    mounting = {
        name: job
        for name, job in jobs(after).items()
        if f"source={new}," in job.inputs["environment"]["JOB_SECRETS"]
    }
    assert set(mounting) == {"rotate-db-root-password", "create-site"}
    assert "jobs-rotate-db-root-password" in depends_on(after, mounting["create-site"])
    # No service mounts it, in any layer.
    for service in after.of_type("docker:index/service:Service"):
        names = [s["secretName"] for s in service.container.get("secrets") or []]
        assert new not in names and old not in names, service.name
