"""One rendering of the program for the live tier: the stack files, through the export's own
code (``python -m stacktools render``), the site jobs as pulumi-command runs them
(``run-swarm-job.sh`` with each command's environment), and the services' dependency layers.
Rendered with a test overlay that points the images at the locally built ones and shortens
timings; every mechanism stays the program's."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stacktools.engine import Registered, deep_merge, stack_file_config
from stacktools.engine import render as render_program
from stacktools.export import EXPORT_DEFAULTS, export, write
from tests.live.capacity import on_tier_engine
from tests.live.images.build import (
    APP_REPOSITORY,
    MAILPIT_IMAGE,
    MARIADB_IMAGE,
    REDIS_IMAGE,
    traefik_image,
)
from tests.live.rollout import SERVICE, service_layers

REPO = Path(__file__).resolve().parents[2]
PULUMI_STACK = "dev"
SITE = "dev.brandclub.com"
# dev's one domain, plus a second one that redirects to it (as prod's www.brandclub.com).
SECOND_DOMAIN = f"www.{SITE}"
DOMAINS = (SITE, SECOND_DOMAIN)
SITES_PATH = "/home/frappe/frappe-bench/sites"
SITE_JOBS = "brandclub:swarm:SiteJobs"
COMMAND = "command:local:Command"
SECRET = "docker:index/secret:Secret"
# A job waits at most JOB_TIMEOUT (run-swarm-job.sh's default: 30 minutes); the tier less.
JOB_RUN_TIMEOUT = 300
# Timings of jobs the tier shortens, as TEST_OVERLAY shortens the services': the boot check
# gives each process of the new image this long to become healthy (the program's default:
# 300 s).
JOB_TIMINGS: dict[str, dict[str, str]] = {
    "boot-check": {"PREFLIGHT_TIMEOUT": "30"},
}


def job_timings(job_name: str) -> dict[str, str] | None:
    """The tier's shorter timings for a rendered job (``jobs-<name>``), if any."""
    return JOB_TIMINGS.get(job_name.removeprefix("jobs-"))


# Only images, shape and timings change; the mechanisms (start-first, rollback on failure, health
# checks, networks, routing labels, Traefik's static configuration) stay exactly as the program
# sets them.
TEST_OVERLAY: dict[str, Any] = {
    "brandclub:endpointMode": "dnsrr",  # this kernel has no IPVS, so no VIPs
    "brandclub:images": {
        "app": APP_REPOSITORY,
        "mariadb": MARIADB_IMAGE,
        "redis": REDIS_IMAGE,
        "mailpit": MAILPIT_IMAGE,
        "traefik": traefik_image(),
    },
    "brandclub:mariadb": {"version": MARIADB_IMAGE.rsplit(":", 1)[1]},
    # One deployment carries the whole tier: dev in the shape the user's path has in prod.
    # Two domains (the second one redirects to the site's, as prod's www does), and 2 replicas
    # of every process Traefik or nginx routes to, so that balancing, stickiness and rolling
    # updates of two tasks are what the tier sees.
    "brandclub:domains": [SITE, SECOND_DOMAIN],
    "brandclub:services": {name: {"replicas": 2} for name in ("backend", "frontend", "websocket")},
    # The program's start period is 60 s; the stand-in backend, like gunicorn with --preload on
    # 2 cores, opens its port after about 18 s, so 30 s still covers every healthy start and
    # halves how long a release that never listens takes to be rolled back.
    "brandclub:healthcheck": {
        "interval": "2s",
        "timeout": "2s",
        "retries": 2,
        "startPeriod": "30s",
    },
    # Prod's parallelism (every replica of a service at once) and watch, so the rollouts the
    # tier proves are the ones prod runs.
    "brandclub:rollout": {
        **{
            key: stack_file_config("prod")["brandclub:rollout"][key]
            for key in ("parallelism", "monitor")
        },
        "delay": "1s",
        "convergeTimeout": "3m",
    },
}


@dataclass(frozen=True)
class PrivateAcme:
    """The ACME server Traefik orders from (the tier's Pebble) and the CA that signed its HTTPS
    certificate: the program's ingress.acmeCaServer and ingress.acmeCaCertificate."""

    server: str
    ca_certificate: str


def ingress_overlay(acme: PrivateAcme) -> dict[str, Any]:
    """Prod's ingress settings as Pulumi.prod.yaml states them (this stack runs Traefik; HSTS,
    noindex, the websocket's direct route, the log level), trusting ``acme`` instead of
    Let's Encrypt."""
    prod = stack_file_config("prod")["brandclub:ingress"]
    assert prod["manage"] and prod["websocketDirect"], "prod runs Traefik, websocket direct"
    return {
        "brandclub:ingress": {
            **prod,
            "acmeCaServer": acme.server,
            "acmeCaCertificate": acme.ca_certificate,
        }
    }


@dataclass(frozen=True)
class JobRun:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class SiteJobCommand:
    """One of the program's site jobs: a pulumi-command ``local.Command`` as registered."""

    name: str
    create: str
    environment: dict[str, str]
    ignore_changes: list[str]

    @classmethod
    def of(cls, command: Registered) -> SiteJobCommand:
        return cls(
            command.name,
            command.inputs["create"],
            dict(command.inputs["environment"]),
            command.options["ignoreChanges"],
        )

    @property
    def job_name(self) -> str:
        return self.environment["JOB_NAME"]

    @property
    def volumes(self) -> set[str]:
        # The docker CLI reads a --mount value as CSV (an NFS volume's options hold commas).
        mounts = [
            dict(f.split("=", 1) for f in fields if "=" in f)
            for fields in csv.reader(self.environment["JOB_MOUNTS"].splitlines())
        ]
        return {mount["source"] for mount in mounts if mount.get("type") == "volume"}

    def run(self, extra_env: dict[str, str] | None = None, **changed: str) -> JobRun:
        """Run the command as pulumi-command does: ``/bin/sh -c <create>`` from the project
        directory with its environment (``changed`` replaces values), on the local engine."""
        environment = {k: v for k, v in self.environment.items() if k != "DOCKER_HOST"}
        if extra_env:
            lines = [*changed.get("JOB_ENV", environment["JOB_ENV"]).splitlines()]
            lines += [f"{key}={value}" for key, value in extra_env.items()]
            changed = {**changed, "JOB_ENV": "\n".join(lines)}
        started = time.monotonic()
        result = subprocess.run(
            ["/bin/sh", "-c", self.create],
            cwd=REPO,
            env={**os.environ, **environment, **changed},
            capture_output=True,
            text=True,
            timeout=JOB_RUN_TIMEOUT,
        )
        seconds = round(time.monotonic() - started, 1)
        return JobRun(self.name, result.returncode, result.stdout, result.stderr, seconds)


@dataclass(frozen=True)
class JobSecret:
    role: str  # e.g. admin-password
    name: str
    labels: dict[str, str]


@dataclass
class Rendered:
    directory: Path
    manifest: dict[str, Any]
    # The site jobs in the order the program registers (and runs) them.
    jobs: list[SiteJobCommand]
    # Secrets only the site jobs mount (the export lists them as not exported).
    job_secrets: list[JobSecret]
    # Each stack's services in the program's dependency layers (tests/live/rollout.py).
    layers: dict[str, list[list[str]]] = field(default_factory=dict)

    def job(self, suffix: str) -> SiteJobCommand:
        return next(job for job in self.jobs if job.name.endswith(f"-{suffix}"))

    def stack_file(self, stack: str) -> Path:
        entry = next(s for s in self.manifest["stacks"] if s["name"] == stack)
        return self.directory / entry["file"]

    @property
    def stacks(self) -> list[str]:
        return [stack["name"] for stack in self.manifest["stacks"]]

    def compose(self, stack: str) -> dict[str, Any]:
        return yaml.safe_load(self.stack_file(stack).read_text())

    @property
    def volumes(self) -> set[str]:
        return {
            volume.get("name", key)
            for stack in self.stacks
            for key, volume in (self.compose(stack).get("volumes") or {}).items()
        }


def render(
    out: Path,
    image_tag: str,
    secrets: dict[str, str],
    acme: PrivateAcme,
    extra: dict[str, Any] | None = None,
) -> Rendered:
    """One rendering of the program, exported as ``python -m stacktools render`` does, and its
    site jobs; the secrets only name the Docker secrets as ``pulumi up`` would. ``extra``
    deep-merges over the tier's overlay (a setting a test changes)."""
    overlay = deep_merge(TEST_OVERLAY, ingress_overlay(acme))
    overlay = deep_merge(overlay, {**(extra or {}), "brandclub:imageTag": image_tag})
    overrides = deep_merge(EXPORT_DEFAULTS, overlay)
    return exported(PULUMI_STACK, overrides, secrets, out)


def exported(stack: str, overrides: dict[str, Any], secrets: dict[str, str], out: Path) -> Rendered:
    """The stack file of ``stack`` under ``overrides``, rendered by the offline engine, written by
    the export's own code under ``out/<stack>``, with the site jobs, their secrets and the
    services' rollout layers as ``pulumi up`` would order them. As a preview would, the
    rendering runs the capacity preflight against the tier's swarm (tests/live/capacity.py):
    a deploy the tier's nodes cannot hold stops here."""
    rendering = render_program(stack, overrides, secrets=secrets, commands=on_tier_engine)
    write(export(rendering), out)
    directory = out / stack
    (component,) = rendering.of_type(SITE_JOBS)
    below = rendering.children_of(SITE_JOBS)
    manifest = json.loads((directory / "manifest.json").read_text())
    services = rendering.of_type(SERVICE)
    layers = {
        swarm_stack["name"]: service_layers(
            s for s in services if s.inputs["name"].startswith(f"{swarm_stack['name']}_")
        )
        for swarm_stack in manifest["stacks"]
    }
    return Rendered(
        directory,
        manifest,
        jobs=[SiteJobCommand.of(r) for r in below if r.type == COMMAND],
        # The component names each secret "<component>-<role>".
        job_secrets=[
            JobSecret(r.name.removeprefix(f"{component.name}-"), r.inputs["name"], r.labels)
            for r in below
            if r.type == SECRET
        ],
        layers=layers,
    )
