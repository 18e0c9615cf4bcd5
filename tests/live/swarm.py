"""The live tier's hands on this machine's Docker: the daemon, the swarm, stacks and tasks.

Everything goes through the ``docker`` command line, as an operator would type it; every wait is
bounded by a deadline and fails with what the swarm showed last.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.live.images.build import apt_install

DOCKERD_LOG = Path("/var/log/brandclub-live/dockerd.log")
# Marks what the tier creates outside a stack (secrets, networks, jobs, probe containers) so that
# a later run may remove leftovers of an aborted one and nothing else.
TEST_LABEL = "brandclub.live-test"
# A task is done moving once it is in one of these; anything else is on its way.
UPDATE_IN_PROGRESS = {"updating", "rollback_started", "paused", "rollback_paused"}
# How an update can end other than "completed": Swarm gave up on the new spec.
UPDATE_FAILED = {"rollback_started", "rollback_completed", "rollback_paused", "paused"}


class DockerError(RuntimeError):
    pass


def docker(*args: str, check: bool = True, timeout: float = 120, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, input=stdin
    )
    if check and result.returncode != 0:
        raise DockerError(f"docker {' '.join(args)}: {result.stderr.strip() or result.stdout}")
    return result.stdout.strip()


def docker_ok(*args: str, timeout: float = 30) -> bool:
    try:
        return (
            subprocess.run(["docker", *args], capture_output=True, timeout=timeout).returncode == 0
        )
    except (subprocess.TimeoutExpired, FileNotFoundError):  # no docker client yet: not running
        return False


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0, diagnose=None
) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f"\n{diagnose()}" if diagnose else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# --- the daemon and the swarm -----------------------------------------------------------------


@dataclass
class Daemon:
    """This machine's dockerd and swarm, and which of the two the tier brought up itself."""

    process: subprocess.Popen | None = None
    initialised_swarm: bool = False

    @classmethod
    def ensure(cls, start_timeout: float = 60) -> Daemon:
        daemon = cls()
        if not docker_ok("info"):
            daemon._start(start_timeout)
        state = docker("info", "--format", "{{.Swarm.LocalNodeState}}")
        if state == "inactive":
            docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            daemon.initialised_swarm = True
        elif state != "active":
            raise RuntimeError(f"this node's swarm state is {state!r}; expected active or inactive")
        return daemon

    def _start(self, timeout: float) -> None:
        if not shutil.which("dockerd"):
            apt_install("docker.io")
        DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
        with DOCKERD_LOG.open("ab") as log:
            self.process = subprocess.Popen(
                ["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not docker_ok("info"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError("dockerd did not come up:\n" + "\n".join(tail))
            time.sleep(0.5)

    def stop(self) -> None:
        """Undo what ``ensure`` did: leave a swarm it initialised, stop a dockerd it started."""
        if self.initialised_swarm:
            docker("swarm", "leave", "--force", check=False)
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- services and tasks -----------------------------------------------------------------------


def inspect(*ids: str) -> list[dict[str, Any]]:
    return json.loads(docker("inspect", *ids)) if ids else []


def stack_services(stack: str) -> list[str]:
    names = docker("stack", "services", "--format", "{{.Name}}", stack, check=False)
    return sorted(names.split()) if names else []


@dataclass(frozen=True)
class Task:
    id: str
    service: str
    image: str
    state: str
    container_id: str
    health: str | None
    started_at: str | None


def running_tasks(service: str) -> list[Task]:
    """Tasks the swarm wants running, with their containers' health."""
    ids = docker("service", "ps", "-q", "--filter", "desired-state=running", service).split()
    tasks = inspect(*ids)
    containers = {
        container["Id"]: container
        for container in inspect(
            *(t["Status"]["ContainerStatus"]["ContainerID"] for t in tasks if _has_container(t))
        )
    }
    found = []
    for task in tasks:
        container = containers.get(task["Status"].get("ContainerStatus", {}).get("ContainerID"))
        state = (container or {}).get("State", {})
        found.append(
            Task(
                id=task["ID"],
                service=service,
                image=task["Spec"]["ContainerSpec"]["Image"],
                state=task["Status"]["State"],
                container_id=container["Id"] if container else "",
                health=state.get("Health", {}).get("Status"),
                started_at=state.get("StartedAt"),
            )
        )
    return found


def _has_container(task: dict[str, Any]) -> bool:
    return bool(task["Status"].get("ContainerStatus", {}).get("ContainerID"))


@dataclass(frozen=True)
class ServiceState:
    name: str
    image: str
    replicas: int
    update_state: str | None
    version: int
    tasks: tuple[Task, ...]
    # When the service's current (or last) update started, as Docker reports it.
    update_started: str | None = None
    update_message: str | None = None

    @property
    def converged(self) -> bool:
        """Exactly the wanted replicas run the spec's image, healthy, and no update is moving."""
        return (
            self.update_state not in UPDATE_IN_PROGRESS
            and len(self.tasks) == self.replicas
            and all(
                t.state == "running" and t.health in ("healthy", None) and t.image == self.image
                for t in self.tasks
            )
        )

    def update_outcome(self, requested_at: datetime) -> str | None:
        """How the update asked for at ``requested_at`` ended: "completed" (every task on the
        new spec, healthy), "failed" (Swarm rolled back or paused; a completed rollback is not
        a converged rollout), or None while it is on its way or not started yet."""
        started = parse_docker_time(self.update_started)
        if started is None or started < requested_at:
            return None
        if self.update_state in UPDATE_FAILED:
            # A rollback still moving is reported once it has settled.
            return None if self.update_state == "rollback_started" else "failed"
        if self.update_state == "completed" and self.converged:
            return "completed"
        return None

    def describe(self) -> str:
        tasks = ", ".join(f"{t.state}/{t.health}/{t.image.rsplit(':', 1)[-1]}" for t in self.tasks)
        return (
            f"{self.name}: image {self.image} replicas {self.replicas} "
            f"update {self.update_state} tasks [{tasks}]"
        )


def service_image(name: str) -> str:
    image = "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
    return docker("service", "inspect", "--format", image, name)


def service_state(name: str) -> ServiceState:
    (service,) = inspect(name)
    spec = service["Spec"]
    return ServiceState(
        name=name,
        image=spec["TaskTemplate"]["ContainerSpec"]["Image"],
        replicas=spec["Mode"]["Replicated"]["Replicas"],
        update_state=(service.get("UpdateStatus") or {}).get("State"),
        version=service["Version"]["Index"],
        tasks=tuple(running_tasks(name)),
        update_started=(service.get("UpdateStatus") or {}).get("StartedAt"),
        update_message=(service.get("UpdateStatus") or {}).get("Message"),
    )


def parse_docker_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    if not value or value.startswith("0001-"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", value)
    if match is None:
        raise ValueError(f"not a Docker time: {value!r}")
    fraction = (match[2] or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match[3] == "Z" else match[3]
    return datetime.fromisoformat(f"{match[1]}.{fraction}{zone}")


def wait_converged(services: Iterable[str], timeout: float) -> dict[str, ServiceState]:
    """Wait until every service has converged; returns the final states."""
    names = list(services)
    last: dict[str, ServiceState] = {}

    def all_converged() -> dict[str, ServiceState] | None:
        last.update({name: service_state(name) for name in names})
        return dict(last) if all(state.converged for state in last.values()) else None

    return wait_for(
        f"{len(names)} services to converge",
        all_converged,
        timeout,
        diagnose=lambda: "\n".join(state.describe() for state in last.values()),
    )


def single_task(service: str) -> Task | None:
    """The one task of a one-replica service once it runs; None while there is not exactly one."""
    tasks = [task for task in running_tasks(service) if task.state == "running"]
    return tasks[0] if len(tasks) == 1 else None


def the_task(service: str) -> Task:
    task = single_task(service)
    assert task is not None, f"{service}: expected exactly one running task"
    return task


def wait_replaced(service: str, killed: Task, timeout: float) -> Task:
    """Wait for the swarm to run a new, healthy container in place of ``killed``."""

    def replacement() -> Task | None:
        task = single_task(service)
        fresh = task and task.container_id != killed.container_id and task.health == "healthy"
        return task if fresh else None

    return wait_for(f"{service} to replace its killed container", replacement, timeout)


def container_ip(container_id: str, network: str) -> str:
    (container,) = inspect(container_id)
    return container["NetworkSettings"]["Networks"][network]["IPAddress"]


def exec_in(container_id: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "exec", container_id, *command], capture_output=True, text=True, timeout=timeout
    )


# --- clean-up ---------------------------------------------------------------------------------


def remove_stacks(stacks: Iterable[str], timeout: float = 120) -> None:
    stacks = list(stacks)
    for stack in stacks:
        docker("stack", "rm", stack, check=False)
    # Removing a stack stops its tasks gracefully (routed services drain first); nothing is
    # served any more, so end them now.
    for stack in stacks:
        running = docker("ps", "-q", "--filter", f"label=com.docker.stack.namespace={stack}")
        if running:
            docker("kill", *running.split(), check=False)

    def gone() -> bool:
        return not any(
            docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={stack}")
            or stack_services(stack)
            for stack in stacks
        )

    wait_for(f"stacks {', '.join(stacks)} to be removed", gone, timeout)


def remove_all(kind: str, names: Iterable[str], timeout: float = 60) -> None:
    """Remove named volumes/networks/secrets that exist; retry while tasks still let go."""
    pending = [name for name in names if docker_ok(kind, "inspect", name)]

    def removed() -> bool:
        for name in list(pending):
            if docker_ok(kind, "rm", name) or not docker_ok(kind, "inspect", name):
                pending.remove(name)
        return not pending

    wait_for(f"{kind}s {', '.join(pending)} to be removed", removed, timeout)


# --- this machine's addresses -----------------------------------------------------------------


def host_address() -> str:
    """The host's own address on its default route: where a client on the host's network reaches
    the ports Traefik publishes (in host mode), with that address as its source. (Loopback would
    go through Docker's userland proxy, which hides the client's address.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("203.0.113.1", 9))  # a UDP "connect" only picks the route; nothing is sent
        return probe.getsockname()[0]


def gateway_address() -> str:
    """The host's address on the bridge that swarm containers leave by (docker_gwbridge): where
    a container, Traefik's, reaches a server on the host."""
    found = docker(
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
        "docker_gwbridge",
        check=False,
    ).split()
    return found[0] if found else host_address()
