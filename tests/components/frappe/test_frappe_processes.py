"""The app services' processes (components/frappe/processes.py): commands, environment, health
checks, rollout policy, resources and worker grace, as each stack renders them."""

from __future__ import annotations

import base64

import pytest

from components.config.units import canonical_duration, duration_ns
from components.frappe.health_checks import HEALTH_LIBRARY
from components.frappe.processes import BACKEND_START_COMMAND, FRONTEND_SCRIPT
from components.platform.catalogue import (
    APP_SERVICES,
    FRAPPE_QUEUE_TIMEOUTS,
    QUEUE_TIMEOUTS,
    WORKER_STOP_MARGIN,
    worker_stop_grace_seconds,
)
from components.platform.drain import DRAIN_SECONDS, DRAIN_TARGET
from components.swarm.configs import DRAIN, HEALTH_CHECKS
from harness import Rendering, app_services, render, stack_file_config

BENCH = "/home/frappe/frappe-bench"
CONFIG = "docker:index/serviceConfig:ServiceConfig"

COMMANDS = {
    "backend": None,
    # Keeps nginx's websocket task list current, then runs the image's nginx-entrypoint.sh.
    "frontend": ["bash", "-c", FRONTEND_SCRIPT],
    "websocket": ["node", f"{BENCH}/apps/frappe/socketio.js"],
    "queue-default": ["bench", "worker", "--queue", "default"],
    "queue-short": ["bench", "worker", "--queue", "short,default"],
    "queue-long": ["bench", "worker", "--queue", "long,default,short"],
    "scheduler": ["bench", "schedule"],
}
SINGLETONS = {"scheduler", "backup", "restore-drill"}


# Traefik or nginx route to these through a cache of their task addresses: they drain.
ROUTED = {"backend", "frontend", "websocket"}


def test_frappe_commands_are_frappe_dockers(rendered: dict[str, Rendering], stack: str) -> None:
    """frappe_docker's commands; the routed services' run under the drain (the backend's
    start.sh named)."""
    services = app_services(rendered[stack])
    for name, command in COMMANDS.items():
        # The image's CMD, never its ENTRYPOINT, which links the baked assets at start.
        if name in ROUTED:
            own = command if command is not None else list(BACKEND_START_COMMAND)
            command = ["bash", DRAIN_TARGET, str(DRAIN_SECONDS), *own]
        assert services[name].container.get("args") == command, name
        assert "commands" not in services[name].container, name


def test_without_a_drain_the_commands_are_the_images_own() -> None:
    services = app_services(render("prod", {"brandclub:rollout": {"drainSeconds": 0}}))
    for name, command in COMMANDS.items():
        assert services[name].container.get("args") == command, name
        if name in ROUTED:
            assert services[name].container["stopGracePeriod"] == "30s", name
        mounted = [c["fileName"] for c in services[name].container.get("configs") or []]
        assert DRAIN_TARGET not in mounted, name


@pytest.mark.parametrize("seconds", [8, 10, 45])
def test_routed_services_drain_and_their_grace_period_covers_it(seconds: int) -> None:
    """backend, frontend and websocket keep serving ``drainSeconds`` after Swarm signals them
    (the script mounted where their command runs it), and Swarm waits that much longer before
    it kills them; nothing else drains."""
    rendering = render("prod", {"brandclub:rollout": {"drainSeconds": seconds}})
    [config] = [c for c in rendering.of_type(CONFIG) if "-drain-" in c.inputs["name"]]
    assert base64.b64decode(config.inputs["data"]).decode() == DRAIN.content
    for name, service in app_services(rendering).items():
        container = service.container
        mounted = [c["fileName"] for c in container.get("configs") or []]
        if name in ROUTED:
            assert container["args"][:3] == ["bash", DRAIN_TARGET, str(seconds)], name
            assert DRAIN_TARGET in mounted, name
            assert container["stopGracePeriod"] == canonical_duration(f"{30 + seconds}s"), name
        else:
            assert DRAIN_TARGET not in (container.get("args") or []), name
            assert DRAIN_TARGET not in mounted, name


def test_frontend_environment(rendered: dict[str, Rendering], stack: str) -> None:
    env = rendered[stack].service(f"brandclub-{stack}", "frontend").container["env"]
    site = {
        "dev": "dev.brandclub.com",
        "staging": "staging.brandclub.com",
        "local": "brandclub.localhost",
    }.get(stack, "brandclub.com")
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
    assert env == {
        "GUNICORN_WORKERS": "5",
        "GUNICORN_THREADS": "2",
        "GUNICORN_TIMEOUT": "120",
        "FORWARDED_ALLOW_IPS": "*",
    }


def test_gunicorn_trusts_nginx_forwarded_scheme_with_a_value_v15_gunicorn_accepts(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """Frappe v15's gunicorn (23.0.0) checks each FORWARDED_ALLOW_IPS entry with
    ipaddress.ip_address and compares peers by equality: a CIDR would stop it at start, and
    nginx's task address is not fixed. Without the variable Frappe sees http behind HTTPS."""
    import ipaddress

    value = (
        rendered[stack]
        .service(f"brandclub-{stack}", "backend")
        .container["env"]["FORWARDED_ALLOW_IPS"]
    )
    for entry in value.split(","):
        if entry.strip() != "*":
            ipaddress.ip_address(entry.strip())  # raises for a network, as gunicorn does
    assert value == "*"


def test_replicas_and_resources_follow_the_stack_file(
    rendered: dict[str, Rendering], stack: str
) -> None:
    from components.config.units import parse_size

    for name, settings in stack_file_config(stack)["brandclub:services"].items():
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
    for name, service in app_services(rendered[stack]).items():
        update = service.inputs["updateConfig"]
        rollback = service.inputs["rollbackConfig"]
        assert update["failureAction"] == "rollback", name
        assert rollback["failureAction"] == "pause", name
        # A singleton never overlaps two tasks, not even during an update.
        expected_order = "stop-first" if name in SINGLETONS else "start-first"
        assert update["order"] == rollback["order"] == expected_order, name
        assert service.inputs["taskSpec"]["restartPolicy"]["condition"] == "any", name


def test_every_app_service_has_a_health_check(rendered: dict[str, Rendering], stack: str) -> None:
    # As the stack file says it, in the spelling the swarm reads back (120s is 2m).
    stated = stack_file_config(stack)["brandclub:healthcheck"]
    healthcheck = (
        *(canonical_duration(stated[key]) for key in ("interval", "timeout")),
        stated["retries"],
        canonical_duration(stated["startPeriod"]),
    )
    for name, service in app_services(rendered[stack]).items():
        check = service.container["healthcheck"]
        assert check["tests"][0] in ("CMD", "CMD-SHELL"), name
        assert (check["interval"], check["timeout"], check["retries"], check["startPeriod"]) == (
            healthcheck
        ), name


@pytest.mark.parametrize(
    ("service", "check"),
    [
        # Frappe answers for the site, not just a port that opens.
        ("backend", ["backend_healthy", "brandclub.com"]),
        # nginx itself, independent of the backend.
        ("frontend", ["frontend_healthy"]),
        # The engine.io handshake of the socket.io server.
        ("websocket", ["websocket_healthy"]),
        # Registered in the queue Redis for the worker's own queues.
        ("queue-default", ["worker_registered", "default"]),
        ("queue-short", ["worker_registered", "short,default"]),
        ("queue-long", ["worker_registered", "long,default,short"]),
    ],
)
def test_health_checks_prove_the_process_works(
    rendered: dict[str, Rendering], service: str, check: list[str]
) -> None:
    rendering = rendered["prod"]
    container = rendering.service("brandclub-prod", service).container
    # The one library the boot-check job runs too, mounted as a Docker config, then the check
    # with its arguments.
    assert container["healthcheck"]["tests"] == ["CMD", "bash", HEALTH_CHECKS.target, *check]
    [mounted] = [c for c in container["configs"] if c["fileName"] == HEALTH_CHECKS.target]
    config = next(
        c
        for c in rendering.of_type("docker:index/serviceConfig:ServiceConfig")
        if c.inputs["name"] == mounted["configName"]
    )
    assert base64.b64decode(config.inputs["data"]).decode() == HEALTH_LIBRARY.read_text()


def test_backend_health_check_names_the_configured_site() -> None:
    rendering = render("prod", {"brandclub:frappe": {"siteName": "www.brandclub.com"}})
    tests = rendering.service("brandclub-prod", "backend").container["healthcheck"]["tests"]
    assert tests[3:] == ["backend_healthy", "www.brandclub.com"]


def test_only_the_scheduler_runs_under_dockers_init(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """Frappe's scheduler installs no SIGTERM handler and bench execs it: as PID 1 it would
    ignore Swarm's stop for the whole grace period, on every stop-first update (issue 24 item
    5). The others handle the signal themselves, or run under the drain's bash, which does."""
    under_init = {
        name
        for name, service in app_services(rendered[stack]).items()
        if service.container.get("init")
    }
    assert under_init == {"scheduler"}


def test_scheduler_still_probes_the_queue_redis(rendered: dict[str, Rendering]) -> None:
    # The scheduler registers as no worker; reaching its queue Redis is what it needs.
    tests = rendered["prod"].service("brandclub-prod", "scheduler").container["healthcheck"]
    assert "/dev/tcp/redis-queue/6379" in tests["tests"][-1]


def test_frappe_queue_timeouts_are_frappes() -> None:
    """Frappe v15's own queue timeouts (frappe/utils/background_jobs.py, get_queues_timeout)."""
    assert FRAPPE_QUEUE_TIMEOUTS == {"short": 300, "default": 300, "long": 1500}
    assert worker_stop_grace_seconds(("long", "default", "short")) == 1560


@pytest.mark.parametrize("worker", [row.name for row in APP_SERVICES if row.queues])
def test_worker_grace_outlasts_the_longest_job_of_its_queues(
    rendered: dict[str, Rendering], worker: str
) -> None:
    """The longest timeout of its queues plus 60 s, as bench's supervisor config gives the long
    worker (stopwaitsecs 1560), spelt as the swarm reads it back."""
    service = rendered["prod"].service("brandclub-prod", worker)
    queues = tuple(service.container["args"][-1].split(","))
    grace = max(QUEUE_TIMEOUTS[queue] for queue in queues) + WORKER_STOP_MARGIN
    assert duration_ns(service.container["stopGracePeriod"]) == grace * 10**9
    assert WORKER_STOP_MARGIN == 60
