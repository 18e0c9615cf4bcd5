"""prod, in its shape, on the three-node swarm: rendered by the program with the live tier's
stand-in images and shorter timings, exported as ``python -m stacktools render`` writes it, its
site jobs run as pulumi-command runs them, every docker command against node 1 (the manager).

On top of prod's own settings: the data node label (prod's ``brandclub.data``) goes on node 1,
replicas spread one per node (``placement.maxReplicasPerNode: 1``), ``sites`` on a directory of
this machine that every node sees at the same path (``storage.sites.kind: path``). Traefik is
the single-node tier's subject and is not deployed here (``ingress.manage: false``), so the
requests come from a container on traefik-public straight to the frontend.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from stacktools.engine import deep_merge, stack_file_config
from stacktools.export import EXPORT_DEFAULTS
from tests.live.deployment import PROBE, DevDeployment, deploy_stack
from tests.live.images.build import APP_REPOSITORY
from tests.live.rendering import (
    TEST_OVERLAY,
    Rendered,
    exported,
)
from tests.live.swarm import docker
from tests.multinode.cluster import NODES, Node
from tests.multinode.images import APP_TAG

STACK = "prod"
SITE = stack_file_config(STACK)["brandclub:domains"][0]
DATA_LABEL = stack_file_config(STACK)["brandclub:placement"]["dataNodeLabel"]
# Storage every node mounts at the same path, and the backups' host directory (data node).
SHARED_ROOT = Path("/srv/brandclub-multinode")
SHARED_SITES = SHARED_ROOT / "sites"
BACKUPS = SHARED_ROOT / "backups"
FRONTEND_URL = f"http://brandclub-{STACK}_frontend:8080"
# The Frappe image's user, who owns the site files.
FRAPPE_UID = 1000
CONVERGE_TIMEOUT = 240
ROUTED = ("backend", "frontend", "websocket")
DATA_SERVICES = ("mariadb", "redis-cache", "redis-queue")

OVERLAY: dict[str, Any] = {
    **{
        key: TEST_OVERLAY[key]
        for key in (
            "brandclub:endpointMode",
            "brandclub:images",
            "brandclub:mariadb",
        )
    },
    # One task per node on three nodes leaves a service of two replicas room for one start-first
    # surge task, not for prod's two at once (the capacity preflight would refuse it).
    "brandclub:rollout": {**TEST_OVERLAY["brandclub:rollout"], "parallelism": 1},
    # Three engines and twenty containers on two cores: a check that takes 2 s on one node
    # takes longer here, and a worker killed for a slow check never converges.
    "brandclub:healthcheck": {
        **TEST_OVERLAY["brandclub:healthcheck"],
        "interval": "5s",
        "timeout": "10s",
        "retries": 3,
    },
    "brandclub:imageTag": APP_TAG,
    "brandclub:ingress": {"manage": False},
    "brandclub:backup": {"hostPath": str(BACKUPS)},
    "brandclub:placement": {"maxReplicasPerNode": 1},
    "brandclub:storage": {"sites": {"kind": "path", "path": str(SHARED_SITES)}},
}


def render(out: Path, secrets: dict[str, str]) -> Rendered:
    """prod with the overlay, exported and with its site jobs, as the live tier renders dev."""
    overrides = deep_merge(EXPORT_DEFAULTS, deep_merge(stack_file_config(STACK), OVERLAY))
    # Only the images of the stand-ins: the Traefik image is not loaded on the nodes.
    overrides["brandclub:images"] = {
        k: v for k, v in overrides["brandclub:images"].items() if k != "traefik"
    }
    return exported(STACK, overrides, secrets, out)


@dataclass(frozen=True)
class Task:
    id: str
    service: str
    node: str  # hostname
    state: str
    container_id: str


def node_names() -> dict[str, str]:
    """Node id -> hostname."""
    lines = docker("node", "ls", "--format", "{{.ID}} {{.Hostname}}").splitlines()
    return dict(line.split(" ", 1) for line in lines)


def tasks(service: str, desired: str | None = "running") -> list[Task]:
    """The service's tasks (those Swarm wants running, or all of its history) and their nodes;
    read on the manager, which knows every node's tasks."""
    flags = ["--filter", f"desired-state={desired}"] if desired else []
    ids = docker("service", "ps", "-q", "--no-trunc", *flags, service).split()
    names = node_names()
    found = []
    for task in json.loads(docker("inspect", *ids)) if ids else []:
        status = task["Status"]
        found.append(
            Task(
                task["ID"],
                service,
                names.get(task.get("NodeID", ""), ""),
                status["State"],
                status.get("ContainerStatus", {}).get("ContainerID", ""),
            )
        )
    return found


def running_nodes(service: str) -> list[str]:
    return sorted(t.node for t in tasks(service) if t.state == "running")


def node(hostname: str) -> Node:
    return next(n for n in NODES if n.hostname == hostname)


@dataclass
class ProdDeployment(DevDeployment):
    """prod's data and app stacks on the swarm of ``tests.multinode.cluster``."""

    frontend_url: ClassVar[str] = FRONTEND_URL
    site: ClassVar[str] = SITE
    replicas: dict[str, int] = field(default_factory=dict)

    def rendering(
        self, image_tag: str, extra: dict[str, Any] | None = None, name: str | None = None
    ) -> Rendered:
        assert image_tag == APP_TAG and extra is None, "the tier deploys one release"
        if APP_TAG not in self.renderings:
            self.renderings[APP_TAG] = render(self.workdir / APP_TAG, self.secret_values)
        return self.renderings[APP_TAG]

    def up(self, image_tag: str = APP_TAG) -> None:
        self.rendered = self.rendering(image_tag)
        for path in (SHARED_SITES, BACKUPS):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        os.chown(SHARED_SITES, FRAPPE_UID, FRAPPE_UID)
        for name in self._rendered.manifest["requiredNetworks"]:
            docker("network", "create", "--driver", "overlay", "--attachable", name)
            self.created_networks.append(name)
        for entry in self._rendered.manifest.get("networksToCreate", []):
            docker(*shlex.split(entry["command"])[1:])
        self.create_secrets()
        started = time.monotonic()
        deploy_stack(self._rendered, self.data_stack)
        self.wait_converged(self.services(self.data_stack))
        self.converge_seconds["data"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        self.run_site_jobs()
        self.converge_seconds["siteJobs"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        deploy_stack(self._rendered, self.app_stack)
        self.wait_converged(self.services(self.app_stack))
        self.converge_seconds["app"] = round(time.monotonic() - started, 1)
        image = f"{APP_REPOSITORY}:{image_tag}"
        docker("run", "-d", "--name", PROBE, "--network", "traefik-public", image, "sleep", "inf")

    def desired_replicas(self, service: str) -> int:
        if service not in self.replicas:
            spec = json.loads(docker("service", "inspect", service))[0]["Spec"]
            self.replicas[service] = spec["Mode"]["Replicated"]["Replicas"]
        return self.replicas[service]

    def short_of_replicas(self, services: list[str]) -> dict[str, str]:
        """Services with fewer running (healthy: Swarm holds a task in "starting" until its
        health check passes) tasks than replicas, and where their tasks are."""
        short = {}
        for service in services:
            found = tasks(service)
            running = [t for t in found if t.state == "running"]
            if len(running) != self.desired_replicas(service) or len(found) != len(running):
                short[service] = ", ".join(f"{t.node}:{t.state}" for t in found) or "no task"
        return short

    def wait_converged(self, services: list[str], timeout: float = CONVERGE_TIMEOUT) -> float:
        """Seconds until every service runs all its replicas and nothing else."""
        started = time.monotonic()
        while short := self.short_of_replicas(services):
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not converged after {timeout:.0f}s: {short}")
            time.sleep(1)
        return time.monotonic() - started

    def exec_in_task(self, task: Task, *command: str) -> str:
        """A command in a task's container, through the engine of the node that runs it."""
        return node(task.node).docker("exec", task.container_id, *command)
