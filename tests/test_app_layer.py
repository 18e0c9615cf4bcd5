"""AppLayer: commands, environment, health, rollout policy, resources, and that it only
*references* networks."""

from __future__ import annotations

import pytest
import yaml

from harness import DELETE, REPO, Rendering, pinned, render

APP_LAYER = "brandclub:swarm:AppLayer"
BENCH = "/home/frappe/frappe-bench"

COMMANDS = {
    "backend": None,
    "frontend": ["nginx-entrypoint.sh"],
    "websocket": ["node", f"{BENCH}/apps/frappe/socketio.js"],
    "queue-default": ["bench", "worker", "--queue", "default"],
    "queue-short": ["bench", "worker", "--queue", "short,default"],
    "queue-long": ["bench", "worker", "--queue", "long,default,short"],
    "scheduler": ["bench", "schedule"],
}
SINGLETONS = {"scheduler", "backup"}


def _app_services(rendering: Rendering) -> dict[str, object]:
    prefix = f"brandclub-{rendering.stack}_"
    return {
        name.removeprefix(prefix): service
        for name, service in rendering.services.items()
        if name.startswith(prefix)
    }


def _stack_services_config(stack: str) -> dict:
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    return document["config"]["brandclub:services"]


def test_frappe_commands_are_frappe_dockers(rendered: dict[str, Rendering], stack: str) -> None:
    services = _app_services(rendered[stack])
    for name, command in COMMANDS.items():
        # The image's CMD, never its ENTRYPOINT, which links the baked assets at start.
        assert services[name].container.get("args") == command, name
        assert "commands" not in services[name].container, name


def test_frontend_environment(rendered: dict[str, Rendering], stack: str) -> None:
    env = rendered[stack].service(f"brandclub-{stack}", "frontend").container["env"]
    site = {"dev": "dev.brandclub.com", "staging": "staging.brandclub.com"}.get(
        stack, "brandclub.com"
    )
    assert env == {
        "BACKEND": "backend:8000",
        "SOCKETIO": "websocket:9000",
        "FRAPPE_SITE_NAME_HEADER": site,
        "UPSTREAM_REAL_IP_ADDRESS": "10.0.0.0/8",
        "UPSTREAM_REAL_IP_HEADER": "X-Forwarded-For",
        "UPSTREAM_REAL_IP_RECURSIVE": "off",
        "PROXY_READ_TIMEOUT": "120",
        "CLIENT_MAX_BODY_SIZE": "50m",
    }


def test_backend_gunicorn_settings_come_from_config() -> None:
    rendering = render("dev", {"brandclub:frappe": {"gunicornWorkers": 5, "gunicornThreads": 2}})
    env = rendering.service("brandclub-dev", "backend").container["env"]
    assert env == {"GUNICORN_WORKERS": "5", "GUNICORN_THREADS": "2", "GUNICORN_TIMEOUT": "120"}


def test_replicas_and_resources_follow_the_stack_file(
    rendered: dict[str, Rendering], stack: str
) -> None:
    from components.units import parse_size

    for name, settings in _stack_services_config(stack).items():
        service = rendered[stack].service(f"brandclub-{stack}", name)
        resources = service.inputs["taskSpec"]["resources"]
        assert service.replicas == settings["replicas"], name
        assert resources["limits"]["memoryBytes"] == parse_size(settings["limits"]["memory"])
        assert resources["limits"]["nanoCpus"] == round(settings["limits"]["cpus"] * 1e9)
        assert resources["reservation"]["memoryBytes"] == parse_size(
            settings["reservations"]["memory"]
        )
        assert resources["reservation"]["nanoCpus"] == round(settings["reservations"]["cpus"] * 1e9)


def test_rolling_updates_start_first_and_roll_back(
    rendered: dict[str, Rendering], stack: str
) -> None:
    for name, service in _app_services(rendered[stack]).items():
        update = service.inputs["updateConfig"]
        rollback = service.inputs["rollbackConfig"]
        assert update["failureAction"] == "rollback", name
        assert rollback["failureAction"] == "pause", name
        # A singleton never overlaps two tasks, not even during an update.
        expected_order = "stop-first" if name in SINGLETONS else "start-first"
        assert update["order"] == rollback["order"] == expected_order, name
        assert service.inputs["taskSpec"]["restartPolicy"]["condition"] == "any", name


def test_every_app_service_has_a_health_check(rendered: dict[str, Rendering], stack: str) -> None:
    healthcheck = {
        # As the stack files say them, in the spelling the swarm reads back (120s is 2m).
        "dev": ("30s", "10s", 3, "2m"),
        "staging": ("15s", "5s", 3, "1m"),
        "prod": ("15s", "5s", 3, "1m"),
    }[stack]
    for name, service in _app_services(rendered[stack]).items():
        check = service.container["healthcheck"]
        assert check["tests"][0] in ("CMD", "CMD-SHELL"), name
        assert (check["interval"], check["timeout"], check["retries"], check["startPeriod"]) == (
            healthcheck
        ), name


@pytest.mark.parametrize(
    ("service", "probe"),
    [
        ("backend", "/dev/tcp/127.0.0.1/8000"),
        ("frontend", "/dev/tcp/127.0.0.1/8080"),
        ("websocket", "/dev/tcp/127.0.0.1/9000"),
        ("queue-long", "/dev/tcp/redis-queue/6379"),
        ("scheduler", "/dev/tcp/redis-queue/6379"),
    ],
)
def test_health_checks_probe_the_process_port(
    rendered: dict[str, Rendering], service: str, probe: str
) -> None:
    tests = rendered["prod"].service("brandclub-prod", service).container["healthcheck"]["tests"]
    assert probe in tests[-1]


def test_app_layer_creates_no_network(rendered: dict[str, Rendering], stack: str) -> None:
    types = {r.type for r in rendered[stack].children_of(APP_LAYER)}
    assert "docker:index/network:Network" not in types
    # Nor a volume: the data layer owns the sites volume, which site jobs need first.
    assert types == {"docker:index/service:Service"}


def test_app_services_reference_the_data_layer_networks_by_id(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    data_networks = {
        n.inputs["name"]: n
        for n in rendering.of_type("docker:index/network:Network")
        if n.parent.endswith("brandclub:swarm:DataLayer::data")
    }
    backend = rendering.service(f"brandclub-{stack}", "backend")
    ids = backend.network_ids
    assert ids == [f"brandclub-{stack}-network-id", f"brandclub-{stack}-mariadb-id"]
    # The id came from the data layer's resources, so Pulumi records the dependency.
    for network in data_networks.values():
        assert network.urn in backend.options["dependencies"]


def test_aliases_only_on_the_environments_own_networks(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    frontend = rendering.service(f"brandclub-{stack}", "frontend")
    for network in frontend.inputs["taskSpec"]["networksAdvanceds"]:
        name = rendering.network_name(network["id"])
        if name == "traefik-public":
            # Every environment's frontend is on traefik-public: a shared alias would make
            # "frontend" resolve across environments.
            assert not network.get("aliases")
        else:
            assert network["aliases"] == ["frontend"]


def test_app_volumes_mounted_where_frappe_expects_them(
    rendered: dict[str, Rendering], stack: str
) -> None:
    backend = rendered[stack].service(f"brandclub-{stack}", "backend")
    targets = {m["target"]: m["source"] for m in backend.container["mounts"]}
    assert targets == {
        f"{BENCH}/sites": f"brandclub-{stack}-sites",
        f"{BENCH}/logs": f"brandclub-{stack}-logs",
    }


def test_mailpit_only_in_dev(rendered: dict[str, Rendering]) -> None:
    mailpit = rendered["dev"].service("brandclub-dev", "mailpit")
    assert mailpit.container["image"].startswith("axllent/mailpit:")
    assert "mounts" not in mailpit.container or not mailpit.container["mounts"]
    assert "brandclub-staging_mailpit" not in rendered["staging"].services
    assert "brandclub-prod_mailpit" not in rendered["prod"].services


def test_backup_only_in_prod_runs_the_daily_loop(rendered: dict[str, Rendering]) -> None:
    backup = rendered["prod"].service("brandclub-prod", "backup")
    command = backup.container["args"]
    assert command[:2] == ["bash", "-c"] and "bench --site" in command[2]
    assert backup.container["image"] == pinned("ghcr.io/brand-club/brandclub:main")
    assert backup.container["env"] == {
        "BACKUP_TIME": "02:00",
        "BACKUP_RETENTION_DAYS": "7",
        "BACKUP_ROOT": "/backups",
        "BENCH_DIR": BENCH,
        "OFFSITE_KIND": "none",
    }
    assert backup.inputs["taskSpec"]["placement"]["constraints"] == ["node.role == manager"]
    assert "brandclub-dev_backup" not in rendered["dev"].services
    assert "brandclub-staging_backup" not in rendered["staging"].services


def test_app_image_tag_is_the_single_imagetag_key() -> None:
    rendering = render("staging", {"brandclub:imageTag": "release-42"})
    for name, service in _app_services(rendering).items():
        assert service.container["image"] == pinned("ghcr.io/brand-club/brandclub:release-42"), name
    for name in ("mariadb", "redis-cache", "redis-queue"):
        image = rendering.service("brandclub-db-staging", name).container["image"]
        assert "release-42" not in image


def test_every_image_is_configurable() -> None:
    images = {
        "app": "registry.local/brandclub",
        "mariadb": "local/mariadb:10.6",
        "redis": "local/redis:test",
        "traefik": "local/traefik:test",
        "mailpit": "local/mailpit:test",
    }
    prod = render("prod", {"brandclub:images": images, "brandclub:endpointMode": "dnsrr"})
    dev = render("dev", {"brandclub:images": images, "brandclub:endpointMode": "dnsrr"})
    assert prod.service("brandclub-prod", "backend").container["image"] == pinned(
        "registry.local/brandclub:main"
    )
    # Every image runs by digest (components/images.py).
    assert prod.service("brandclub-db-prod", "mariadb").container["image"] == pinned(
        "local/mariadb:10.6"
    )
    assert prod.service("brandclub-db-prod", "redis-queue").container["image"] == pinned(
        "local/redis:test"
    )
    assert prod.service("traefik", "traefik").container["image"] == pinned("local/traefik:test")
    assert dev.service("brandclub-dev", "mailpit").container["image"] == pinned(
        "local/mailpit:test"
    )
    for rendering in (prod, dev):
        for name, service in rendering.services.items():
            assert service.inputs["endpointSpec"]["mode"] == "dnsrr", name


def test_endpoint_mode_defaults_to_vip(rendered: dict[str, Rendering], stack: str) -> None:
    for name, service in rendered[stack].services.items():
        assert service.inputs["endpointSpec"]["mode"] == "vip", name


def test_sites_volume_is_data_layer_protected_in_prod(rendered: dict[str, Rendering]) -> None:
    volumes = {
        v.inputs["name"]: v
        for v in rendered["prod"].children_of("brandclub:swarm:DataLayer")
        if v.type == "docker:index/volume:Volume"
    }
    sites = volumes["brandclub-prod-sites"]
    assert sites.options["protect"] is True and sites.options["retainOnDelete"] is True


@pytest.mark.parametrize(
    ("stack", "branch"), [("dev", "develop"), ("staging", "staging"), ("prod", "main")]
)
def test_image_tag_defaults_to_the_environments_branch(stack: str, branch: str) -> None:
    rendering = render(stack, {"brandclub:imageTag": DELETE})
    backend = rendering.service(f"brandclub-{stack}", "backend")
    assert backend.container["image"] == pinned(f"ghcr.io/brand-club/brandclub:{branch}")
