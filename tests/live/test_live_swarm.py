"""The dev stack on a real single-node swarm: what the architecture promises, observed.

The tests run in this order and share one deployment; each one first establishes the state it
needs (e.g. "the app runs v2") instead of trusting the test before it, and the destructive ones
(killing containers) come last.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from images.build import APP_REPOSITORY, BROKEN_VERSION
from images.standin import answers
from tests.live.deployment import PROBE, PROBE_NETWORK, DevDeployment
from tests.live.swarm import (
    ServiceState,
    docker,
    exec_in,
    inspect,
    service_image,
    service_state,
    the_task,
    wait_for,
    wait_replaced,
)

pytestmark = pytest.mark.live

# Bounded request loops: at most LOOP_COUNT requests, LOOP_INTERVAL apart, each with a timeout.
LOOP_COUNT = 1200
LOOP_INTERVAL = 0.05
LOOP_TIMEOUT = 5.0
# The Frappe processes whose health check exercises the image itself (a port it must open).
PORT_CHECKED = ("backend", "frontend", "websocket")


def app_images(dev: DevDeployment) -> dict[str, str]:
    """The image of every service that runs the app image (all but mailpit)."""
    images = {name: service_image(name) for name in dev.services(dev.app_stack)}
    return {name: image for name, image in images.items() if image.startswith(APP_REPOSITORY)}


def ensure_app_version(dev: DevDeployment, tag: str) -> None:
    """Precondition: every Frappe service runs ``tag`` and has converged."""
    wanted = f"{APP_REPOSITORY}:{tag}"
    if set(app_images(dev).values()) != {wanted}:
        dev.deploy_app(tag)
    dev.converge_app()
    assert set(app_images(dev).values()) == {wanted}


def served_version(dev: DevDeployment) -> str:
    return dev.get("/api/method/version")["version"]


def notes(dev: DevDeployment) -> list[str]:
    return dev.get("/api/resource/Note")["data"]


def mariadb(dev: DevDeployment) -> str:
    return dev.service(dev.data_stack, "mariadb")


def timed_rollout(dev: DevDeployment, tag: str) -> tuple[float, dict[str, ServiceState]]:
    started = time.monotonic()
    dev.deploy_app(tag)
    # The swarm starts updating asynchronously: wait until it has taken the new spec.
    wanted = f"{APP_REPOSITORY}:{tag}"
    wait_for(f"the app services to take {wanted}", lambda: wanted in app_images(dev).values(), 30)
    states = dev.converge_app()
    return round(time.monotonic() - started, 1), states


def test_dev_stack_deploys_and_converges(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    for stack in (dev.data_stack, dev.app_stack):
        deployed = set(docker("stack", "services", "--format", "{{.Name}}", stack).split())
        assert deployed == set(dev.services(stack))
        for name in dev.services(stack):
            state = service_state(name)
            assert state.converged, state.describe()
            assert len(state.tasks) == state.replicas >= 1
            assert all(task.health == "healthy" for task in state.tasks), state.describe()
    assert served_version(dev) == "v1"
    print(f"dev converged from nothing in {dev.converge_seconds}")


def answers_from(container_id: str, protocol: str, host: str, port: int) -> bool:
    result = exec_in(container_id, "probe", "answers", protocol, host, str(port), "3")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def addresses(container_id: str) -> list[str]:
    (container,) = inspect(container_id)
    return [network["IPAddress"] for network in container["NetworkSettings"]["Networks"].values()]


def test_isolation(dev: DevDeployment) -> None:
    ensure_app_version(dev, "v1")
    database = the_task(mariadb(dev)).container_id
    mariadb_targets = [("mariadb", address, 3306) for address in addresses(database)]
    data_targets = list(mariadb_targets)
    for name in ("redis-cache", "redis-queue"):
        redis = the_task(dev.service(dev.data_stack, name)).container_id
        data_targets += [("redis", address, 6379) for address in addresses(redis)]

    # Inside the environment: only the processes that talk SQL reach MariaDB.
    backend = the_task(dev.service(dev.app_stack, "backend")).container_id
    assert answers_from(backend, "mariadb", "mariadb", 3306), "backend cannot reach mariadb:3306"
    for name in ("frontend", "websocket"):
        task = the_task(dev.service(dev.app_stack, name)).container_id
        assert answers_from(task, "redis", "redis-queue", 6379), f"{name} lost Redis"
        for protocol, host, port in [("mariadb", "mariadb", 3306), *mariadb_targets]:
            assert not answers_from(task, protocol, host, port), f"{name} reaches {host}:{port}"

    # Outside the swarm: no published port, and neither the host, nor a container on the
    # default bridge, nor one on the public overlay gets an answer from a data service.
    for name in dev.services(dev.data_stack):
        ports = docker("service", "inspect", "--format", "{{json .Endpoint.Ports}}", name)
        assert ports in ("null", "[]"), f"{name} publishes {ports}"
    outside = [*data_targets, ("mariadb", "127.0.0.1", 3306), ("redis", "127.0.0.1", 6379)]
    from_host = [target for target in outside if answers(*target, timeout=3)]
    assert from_host == [], f"the host reaches {from_host}"
    checks = " ".join(f"{protocol}:{host}:{port}" for protocol, host, port in data_targets)
    from_bridge = docker(
        "run",
        "--rm",
        "--network",
        "bridge",
        f"{APP_REPOSITORY}:v1",
        "bash",
        "-c",
        'for t in $0; do IFS=: read -r p h n <<<"$t"; probe answers "$p" "$h" "$n" 3 && echo "$t"; '
        "done; true",
        checks,
    )
    assert from_bridge == "", f"a container on the default bridge reaches {from_bridge}"
    from_public = [t for t in data_targets if answers_from(PROBE, *t)]
    assert from_public == [], f"a container on {PROBE_NETWORK} reaches {from_public}"


def test_data_survives_app_rollout(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    ensure_app_version(dev, "v1")
    title = f"written under v1 at {time.time():.0f}"
    dev.post("/api/resource/Note", {"title": title})
    database_before = the_task(mariadb(dev))
    data_versions = {name: service_state(name).version for name in dev.services(dev.data_stack)}

    seconds, _ = timed_rollout(dev, "v2")

    assert served_version(dev) == "v2"
    assert title in notes(dev)
    database_after = the_task(mariadb(dev))
    assert (database_after.container_id, database_after.started_at) == (
        database_before.container_id,
        database_before.started_at,
    ), "the MariaDB task was restarted by an app rollout"
    assert {name: service_state(name).version for name in data_versions} == data_versions
    live_report["rolloutV1toV2Seconds"] = seconds


def test_zero_downtime_rollout(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    ensure_app_version(dev, "v2")
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    time.sleep(2)  # requests are flowing before the update starts
    seconds, _ = timed_rollout(dev, "v3")
    time.sleep(2)
    summary = loop.finish()
    live_report["zeroDowntimeRollout"] = {"convergeSeconds": seconds, "requests": summary}
    print(f"v2 -> v3 converged in {seconds}s under load: {summary}")
    assert summary["failed"] == 0, summary["errors"]
    assert summary["versions"].get("v2", 0) > 0 and summary["versions"].get("v3", 0) > 0
    assert summary["sent"] < LOOP_COUNT, "the loop ran out before the rollout converged"
    assert served_version(dev) == "v3"


def test_failing_health_check_rolls_back(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    ensure_app_version(dev, "v3")
    port_checked = [dev.service(dev.app_stack, name) for name in PORT_CHECKED]
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    started = time.monotonic()
    dev.deploy_app(BROKEN_VERSION)

    def rolled_back() -> bool:
        return all(
            service_state(name).update_state == "rollback_completed" for name in port_checked
        )

    wait_for(
        "the broken release to be rolled back",
        rolled_back,
        240,
        diagnose=lambda: "\n".join(service_state(name).describe() for name in port_checked),
    )
    seconds = round(time.monotonic() - started, 1)
    summary = loop.finish()
    live_report["failedRollout"] = {"rolledBackSeconds": seconds, "requests": summary}
    print(f"broken release rolled back in {seconds}s; requests meanwhile: {summary}")
    for name in port_checked:
        state = service_state(name)
        assert state.image == f"{APP_REPOSITORY}:v3", state.describe()
        assert state.converged, state.describe()
    assert summary["failed"] == 0, summary["errors"]
    assert set(summary["versions"]) == {"v3"}


def notes_once_answering(dev: DevDeployment) -> list[str]:
    """The notes, as soon as the site answers again after a restart."""

    def attempt() -> list[str] | None:
        try:
            return notes(dev)
        except AssertionError:
            return None

    return wait_for("the site to answer again", attempt, 60)


def test_killed_backend_is_replaced(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    backend = dev.service(dev.app_stack, "backend")
    dev.converge_app()
    before = notes(dev)
    assert before, "precondition: the earlier tests wrote rows"
    killed = the_task(backend)
    started = time.monotonic()
    docker("kill", killed.container_id)
    wait_replaced(backend, killed, 120)
    live_report["killedBackendReplacedSeconds"] = round(time.monotonic() - started, 1)
    dev.converge_app()
    assert notes_once_answering(dev) == before


def test_killed_mariadb_is_replaced(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    title = f"written before killing MariaDB at {time.time():.0f}"
    dev.post("/api/resource/Note", {"title": title})
    before = notes(dev)
    killed = the_task(mariadb(dev))
    started = time.monotonic()
    docker("kill", killed.container_id)
    replacement = wait_replaced(mariadb(dev), killed, 180)
    live_report["killedMariadbReplacedSeconds"] = round(time.monotonic() - started, 1)
    assert replacement.started_at != killed.started_at
    after = notes_once_answering(dev)
    assert title in after
    assert after == before
