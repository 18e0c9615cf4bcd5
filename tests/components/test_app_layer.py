"""AppLayer: the backend first, only *references* to networks and volumes, the Docker configs it
mounts, the optional services and the images."""

from __future__ import annotations

import base64
import hashlib

import pytest

from components.config.units import canonical_duration
from components.frappe.processes import BACKUP_STOP_GRACE_PERIOD, FRONTEND_SCRIPT
from components.swarm.configs import HEALTH_CHECKS
from harness import DELETE, REPO, Rendering, app_services, pinned, render

APP_LAYER = "brandclub:swarm:AppLayer"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
SITES_OF = {
    "dev": "dev.brandclub.com",
    "staging": "staging.brandclub.com",
    "prod": "brandclub.com",
    "local": "brandclub.localhost",
}
BENCH = "/home/frappe/frappe-bench"


def test_backend_rolls_out_before_every_other_frappe_service(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """Every other Frappe service waits for the backend's update to converge, so a backend that
    fails its health check is rolled back before any other service moves."""
    rendering = rendered[stack]
    backend = rendering.service(f"brandclub-{stack}", "backend")
    assert not any(
        rendering.by_urn(urn).type == "docker:index/service:Service"
        for urn in backend.options["dependencies"]
    )
    for name, service in app_services(rendering).items():
        if name in ("backend", "mailpit"):
            continue
        assert backend.urn in service.options["dependencies"], name
    if "mailpit" in app_services(rendering):
        # Not a Frappe process: it runs whatever the backend does.
        assert backend.urn not in app_services(rendering)["mailpit"].options["dependencies"]


def test_app_layer_creates_no_network(rendered: dict[str, Rendering], stack: str) -> None:
    types = {r.type for r in rendered[stack].children_of(APP_LAYER)}
    assert "docker:index/network:Network" not in types
    # Nor a volume: the data layer owns the sites volume, which site jobs need first. Its
    # own are the services and the frontend's nginx template (a Docker config), and in prod
    # the restore drill's root password (a Docker secret).
    secret = {"docker:index/secret:Secret"} if stack == "prod" else set()
    assert types == {"docker:index/service:Service", CONFIG, *secret}


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
    for name in (f"brandclub-{stack}-network", f"brandclub-{stack}-mariadb"):
        assert data_networks[name].urn in backend.options["dependencies"]
    websocket = rendering.service(f"brandclub-{stack}", "websocket")
    assert data_networks[f"brandclub-{stack}-realtime"].urn in websocket.options["dependencies"]


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
        elif name == f"brandclub-{stack}-realtime":
            assert network["aliases"] == [SITES_OF[stack]]
        else:
            assert network["aliases"] == ["frontend"]


def test_frontend_answers_to_the_site_name_only_on_the_realtime_network(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """Frappe's realtime server checks every session at http://<site>:8080 (the Origin nginx and
    Traefik send): the websocket must reach the frontend under the site's name, and nothing else
    may, or the backend's and workers' links to https://<site> would land on nginx."""
    rendering = rendered[stack]
    realtime = f"brandclub-{stack}-realtime"
    site = SITES_OF[stack]
    on_realtime = {}
    for name, service in app_services(rendering).items():
        for network in service.inputs["taskSpec"]["networksAdvanceds"]:
            if rendering.network_name(network["id"]) == realtime:
                on_realtime[name] = network.get("aliases") or []
    assert on_realtime == {"frontend": [site], "websocket": []}
    aliases_elsewhere = [
        alias
        for service in rendering.services.values()
        for network in service.inputs["taskSpec"]["networksAdvanceds"]
        if rendering.network_name(network["id"]) != realtime
        for alias in network.get("aliases") or []
    ]
    assert site not in aliases_elsewhere


def test_frontend_serves_the_programs_nginx_template(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    template = (REPO / "components" / "nginx" / "frappe.conf.template").read_text()
    [config] = [c for c in rendering.of_type(CONFIG) if "-nginx-template-" in c.inputs["name"]]
    fingerprint = hashlib.sha256(template.encode()).hexdigest()[:10]
    assert config.inputs["name"] == f"brandclub-{stack}-nginx-template-{fingerprint}"
    assert base64.b64decode(config.inputs["data"]).decode() == template
    frontend = rendering.service(f"brandclub-{stack}", "frontend")
    # Mounted where the image's nginx-entrypoint.sh reads its template.
    assert {
        "configId": f"{config.inputs['name']}-id",
        "configName": config.inputs["name"],
        "fileName": "/templates/nginx/frappe.conf.template",
    } in frontend.container["configs"]
    # The frontend's command ends by handing over to that entrypoint.
    assert frontend.container["args"][-3:] == ["bash", "-c", FRONTEND_SCRIPT]
    assert FRONTEND_SCRIPT.rstrip().endswith('exec "$NGINX_ENTRYPOINT"')
    assert ': "${NGINX_ENTRYPOINT:=nginx-entrypoint.sh}"' in FRONTEND_SCRIPT
    for name, service in app_services(rendering).items():
        if name != "frontend":
            mounted = [c["fileName"] for c in service.container.get("configs") or []]
            assert "/templates/nginx/frappe.conf.template" not in mounted, name


def test_health_checked_services_mount_the_library_they_run(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """A health test that names the library's path needs the config there, and only those."""
    for name, service in app_services(rendered[stack]).items():
        mounted = [c["fileName"] for c in service.container.get("configs") or []]
        runs_library = HEALTH_CHECKS.target in service.container["healthcheck"]["tests"]
        assert (HEALTH_CHECKS.target in mounted) == runs_library, name


def test_a_changed_file_is_a_new_config_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker configs are immutable: a new content must be a new config, never an update."""
    from components.swarm import configs

    def names() -> list[str]:
        return sorted(c.inputs["name"] for c in render("dev", cached=False).of_type(CONFIG))

    before = names()
    monkeypatch.setattr(
        configs.ServiceConfigFile,
        "content",
        property(lambda self: self.source.read_text() + "# changed\n"),
    )
    after = names()
    assert len(before) == len(after) == 3
    for old, new in zip(before, after, strict=True):
        assert old != new and old.rsplit("-", 1)[0] == new.rsplit("-", 1)[0]


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
    assert backup.inputs["taskSpec"]["placement"]["constraints"] == [
        "node.role == manager",
        "node.labels.brandclub.data == true",
    ]
    assert "brandclub-dev_backup" not in rendered["dev"].services
    assert "brandclub-staging_backup" not in rendered["staging"].services


def test_the_backup_service_rolls_stop_first_with_time_to_finish_a_run(
    rendered: dict[str, Rendering],
) -> None:
    """Issue 24 item 3: never two loops (stop-first, both ways), and Swarm gives a loop that is
    in the middle of its run the time to finish it (the loop itself stops at once otherwise)."""
    backup = rendered["prod"].service("brandclub-prod", "backup")
    assert backup.inputs["updateConfig"]["order"] == "stop-first"
    assert backup.inputs["rollbackConfig"]["order"] == "stop-first"
    assert backup.inputs["mode"]["replicated"]["replicas"] == 1
    grace = backup.container["stopGracePeriod"]
    assert grace == canonical_duration(BACKUP_STOP_GRACE_PERIOD) == "1h"


def test_app_image_tag_is_the_single_imagetag_key() -> None:
    rendering = render("staging", {"brandclub:imageTag": "release-42"})
    for name, service in app_services(rendering).items():
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
