"""Architecture section 5 for each environment: which services run where, with how many
replicas, on which networks, with which volumes, and the data-layer tuning.

The worker rows and the replica counts are read from the catalogue and the stack files, so a new
worker row with its numbers needs no edit here; what is fixed by design (which optional service
runs where, who joins which network) is stated.
"""

from __future__ import annotations

import pytest

from components.platform import catalogue
from harness import Rendering, pinned, stack_file_config

MiB = 1024**2
GiB = 1024**3

SITES = "/home/frappe/frappe-bench/sites"
LOGS = "/home/frappe/frappe-bench/logs"
# The Frappe processes other than the workers; every worker row is one more.
FIXED_PROCESSES = {"backend", "frontend", "websocket", "scheduler"}
# The optional app services each environment runs (mailpit catches dev's and local's mail, prod
# backs up and drills restores of its backups); every other app row runs everywhere.
OPTIONAL = {
    "dev": {"mailpit"},
    "staging": set(),
    "prod": {"backup", "restore-drill"},
    "local": {"mailpit"},
}
DATA_SERVICES = {"mariadb", "redis-cache", "redis-queue"}


def workers() -> set[str]:
    """The catalogue's worker rows, read when called (a test may add one)."""
    return {row.name for row in catalogue.APP_SERVICES if row.queues}


def frappe_processes() -> set[str]:
    return FIXED_PROCESSES | workers()


def expected_services(stack: str) -> dict[str, dict[str, int]]:
    """swarm stack -> service -> replicas: the app services' replicas are the stack file's."""
    settings = stack_file_config(stack)["brandclub:services"]
    app = frappe_processes() | OPTIONAL[stack]
    services = {
        f"brandclub-{stack}": {name: settings[name]["replicas"] for name in app},
        f"brandclub-db-{stack}": dict.fromkeys(DATA_SERVICES, 1),
    }
    if stack in RUNS_TRAEFIK:
        services["traefik"] = {"traefik": 1}
    return services


# The stacks that run a Traefik (ingress.manage).
RUNS_TRAEFIK = {"prod", "local"}

# Network roles per service; websocket joins traefik-public where Traefik routes /socket.io
# to it directly (staging and prod). Only websocket and frontend share the realtime network.
INTERNAL, DATABASE, REALTIME, PUBLIC = "internal", "database", "realtime", "public"
# Every worker talks SQL and reaches the queue Redis, like the backend.
NETWORKS = {
    "backend": {INTERNAL, DATABASE},
    "frontend": {INTERNAL, REALTIME, PUBLIC},
    "websocket": {INTERNAL, REALTIME},
    "scheduler": {INTERNAL, DATABASE},
    "backup": {INTERNAL, DATABASE},
    # On traefik-public for its metrics only: Traefik routes nothing to it.
    "restore-drill": {INTERNAL, DATABASE, PUBLIC},
    "mailpit": {INTERNAL},
    "mariadb": {DATABASE},
    "redis-cache": {INTERNAL},
    "redis-queue": {INTERNAL},
    "traefik": {PUBLIC},
}
WEBSOCKET_DIRECT = {"dev": False, "staging": True, "prod": True, "local": False}

# (buffer pool, memory limit, slow query log) and (maxmemory, appendonly) per environment.
MARIADB = {
    "dev": (512 * MiB, 1 * GiB, False),
    "staging": (768 * MiB, 1536 * MiB, False),
    "prod": (1 * GiB, 2 * GiB, True),
    "local": (256 * MiB, 1 * GiB, False),
}
REDIS = {
    "dev": {"redis-cache": (256 * MiB, "no"), "redis-queue": (256 * MiB, "no")},
    "staging": {"redis-cache": (384 * MiB, "no"), "redis-queue": (384 * MiB, "no")},
    "prod": {"redis-cache": (512 * MiB, "no"), "redis-queue": (512 * MiB, "yes")},
    "local": {"redis-cache": (128 * MiB, "no"), "redis-queue": (128 * MiB, "no")},
}


def _short(swarm_name: str) -> str:
    return swarm_name.split("_", 1)[1]


def _role_names(stack: str) -> dict[str, str]:
    return {
        INTERNAL: f"brandclub-{stack}-network",
        DATABASE: f"brandclub-{stack}-mariadb",
        REALTIME: f"brandclub-{stack}-realtime",
        PUBLIC: "traefik-public",
    }


def test_service_set_and_replicas_are_exactly_the_architecture(
    rendered: dict[str, Rendering], stack: str
) -> None:
    actual: dict[str, dict[str, int]] = {}
    for swarm_name, service in rendered[stack].services.items():
        swarm_stack, short = swarm_name.split("_", 1)
        actual.setdefault(swarm_stack, {})[short] = service.replicas
    assert actual == expected_services(stack)


def test_every_service_is_on_exactly_its_networks(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    names = _role_names(stack)
    for swarm_name, service in rendering.services.items():
        short = _short(swarm_name)
        roles = set(NETWORKS[short] if short not in workers() else {INTERNAL, DATABASE})
        if short == "websocket" and WEBSOCKET_DIRECT[stack]:
            roles.add(PUBLIC)
        assert rendering.service_networks(service) == {names[r] for r in roles}, swarm_name


def test_only_the_entry_points_join_traefik_public(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    public = {
        _short(name)
        for name, service in rendering.services.items()
        if "traefik-public" in rendering.service_networks(service)
    }
    expected = {"frontend"} | ({"websocket"} if WEBSOCKET_DIRECT[stack] else set())
    expected |= {"traefik"} if stack in RUNS_TRAEFIK else set()
    # prod's restore drill, whose metrics are scraped there (never routed, never published).
    expected |= {"restore-drill"} if "restore-drill" in OPTIONAL[stack] else set()
    assert public == expected


def test_frontend_and_websocket_can_never_reach_mariadb(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    database_network = f"brandclub-{stack}-mariadb"
    for short in ("frontend", "websocket"):
        service = rendering.service(f"brandclub-{stack}", short)
        assert database_network not in rendering.service_networks(service)
    mariadb = rendering.service(f"brandclub-db-{stack}", "mariadb")
    assert rendering.service_networks(mariadb) == {database_network}


def test_volumes_and_mounts(rendered: dict[str, Rendering], stack: str) -> None:
    rendering = rendered[stack]
    volumes = {v.inputs["name"] for v in rendering.of_type("docker:index/volume:Volume")}
    # local never had the retired cache volume, and keeps no ACME certificates.
    purposes = {"sites", "logs", "mariadb", "redis-queue"}
    purposes |= {"redis-cache"} if stack != "local" else set()
    expected_volumes = {f"brandclub-{stack}-{purpose}" for purpose in purposes}
    if stack == "prod":
        expected_volumes.add("traefik-certificates")
    assert volumes == expected_volumes

    for swarm_name, service in rendering.services.items():
        short = _short(swarm_name)
        mounts = {
            (m["target"], m["source"], m["type"]) for m in service.container.get("mounts") or []
        }
        if short in frappe_processes() | {"backup"}:
            expected = {
                (SITES, f"brandclub-{stack}-sites", "volume"),
                (LOGS, f"brandclub-{stack}-logs", "volume"),
            }
            if short == "backup":
                expected.add(("/backups", "/opt/brand-club/backups", "bind"))
        elif short == "restore-drill":
            # No sites volume: its throwaway sites stay in its own container. The backups
            # read-only, its results in their own folder.
            expected = {
                ("/backups", "/opt/brand-club/backups", "bind"),
                ("/restore-drill", "/opt/brand-club/backups/.restore-drill", "bind"),
            }
            read_only = {m["target"]: m.get("readOnly", False) for m in service.container["mounts"]}
            assert read_only == {"/backups": True, "/restore-drill": False}
        elif short == "mariadb":
            expected = {("/var/lib/mysql", f"brandclub-{stack}-mariadb", "volume")}
        elif short == "redis-queue":
            expected = {("/data", f"brandclub-{stack}-{short}", "volume")}
        elif short == "traefik":
            expected = {("/var/run/docker.sock", "/var/run/docker.sock", "bind")}
            if stack == "prod":
                expected.add(("/certificates", "traefik-certificates", "volume"))
        else:
            expected = set()
        assert mounts == expected, swarm_name


def test_mariadb_tuning(rendered: dict[str, Rendering], stack: str) -> None:
    buffer_pool, memory_limit, slow_log = MARIADB[stack]
    mariadb = rendered[stack].service(f"brandclub-db-{stack}", "mariadb")
    args = mariadb.container["args"]
    assert f"--innodb-buffer-pool-size={buffer_pool}" in args
    assert mariadb.inputs["taskSpec"]["resources"]["limits"]["memoryBytes"] == memory_limit
    assert ("--slow-query-log=1" in args) is slow_log
    assert any(a.startswith("--long-query-time=") for a in args) is slow_log


@pytest.mark.parametrize("redis", ["redis-cache", "redis-queue"])
def test_redis_tuning(rendered: dict[str, Rendering], stack: str, redis: str) -> None:
    maxmemory, appendonly = REDIS[stack][redis]
    service = rendered[stack].service(f"brandclub-db-{stack}", redis)
    args = service.container["args"]
    assert args[args.index("--maxmemory") + 1] == str(maxmemory)
    assert args[args.index("--appendonly") + 1] == appendonly
    policy = args[args.index("--maxmemory-policy") + 1]
    assert policy == ("noeviction" if redis == "redis-queue" else "allkeys-lru")
    assert service.inputs["taskSpec"]["resources"]["limits"]["memoryBytes"] > maxmemory


def test_images_follow_the_branch_of_each_environment(
    rendered: dict[str, Rendering], stack: str
) -> None:
    # local, which no branch deploys, runs frappe_docker's published ERPNext v15 image.
    image = {
        "dev": "ghcr.io/brand-club/brandclub:develop",
        "staging": "ghcr.io/brand-club/brandclub:staging",
        "prod": "ghcr.io/brand-club/brandclub:main",
        "local": "frappe/erpnext:v15.96.1",
    }[stack]
    app = rendered[stack].service(f"brandclub-{stack}", "backend")
    assert app.container["image"] == pinned(image)


def test_no_service_replaces_its_images_entrypoint(
    rendered: dict[str, Rendering], stack: str
) -> None:
    # The Frappe image's ENTRYPOINT links the baked assets into the sites volume; the MariaDB and
    # Redis images' drop root and prepare the data directory. Only the CMD is ever set.
    for name, service in rendered[stack].services.items():
        assert "commands" not in service.container, name
    for redis in ("redis-cache", "redis-queue"):
        args = rendered[stack].service(f"brandclub-db-{stack}", redis).container["args"]
        assert args[0] == "redis-server"


DURATION_FIELDS = (
    ("updateConfig", "delay"),
    ("updateConfig", "monitor"),
    ("rollbackConfig", "delay"),
    ("rollbackConfig", "monitor"),
    ("taskSpec", "containerSpec", "healthcheck", "interval"),
    ("taskSpec", "containerSpec", "healthcheck", "timeout"),
    ("taskSpec", "containerSpec", "healthcheck", "startPeriod"),
    ("taskSpec", "containerSpec", "stopGracePeriod"),
    ("taskSpec", "restartPolicy", "delay"),
    ("taskSpec", "restartPolicy", "window"),
)


def test_values_are_spelled_as_the_swarm_reads_them_back(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """Anything else is a diff on every preview and drift on every refresh."""
    from components.config.units import canonical_duration

    for name, service in rendered[stack].services.items():
        for path in DURATION_FIELDS:
            value = service.inputs
            for key in path:
                value = value[key]
            assert value == canonical_duration(value), (name, path, value)
        for config in ("updateConfig", "rollbackConfig"):
            ratio = service.inputs[config]["maxFailureRatio"]
            assert ratio == f"{float(ratio):.1f}", (name, ratio)
