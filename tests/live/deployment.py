"""The dev stack on the local swarm, deployed the way the README tells an operator to.

One offline rendering of the program (``brandclub.offline.render``, with a test overlay that
points the images at the locally built ones and shortens the timings) gives both the stack
files, through the export's own code (``python -m brandclub render``), and the program's site
jobs, which run as pulumi-command would run them: ``run-swarm-job.sh`` with each command's
environment. Secrets and the external networks are created by hand as the export's manifest
asks; the site is created by the program's own jobs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from brandclub.compose import EXPORT_DEFAULTS, export, write
from brandclub.offline import Registered, deep_merge
from brandclub.offline import render as render_program
from images.build import APP_REPOSITORY, MAILPIT_IMAGE, MARIADB_IMAGE, REDIS_IMAGE
from tests.live.swarm import (
    TEST_LABEL,
    ServiceState,
    docker,
    docker_ok,
    remove_all,
    remove_stacks,
    stack_services,
    wait_converged,
)

REPO = Path(__file__).resolve().parents[2]
PULUMI_STACK = "dev"
SITE = "dev.brandclub.com"
SITES_PATH = "/home/frappe/frappe-bench/sites"
SITE_JOBS = "brandclub:swarm:SiteJobs"
COMMAND = "command:local:Command"
SECRET = "docker:index/secret:Secret"
# A job waits at most JOB_TIMEOUT (run-swarm-job.sh's default: 30 minutes); the tier less.
JOB_RUN_TIMEOUT = 300
PROBE = "brandclub-live-probe"
PROBE_NETWORK = "traefik-public"
FRONTEND_URL = "http://brandclub-dev_frontend:8080"
CONVERGE_TIMEOUT = 240

# Only images and timings change; the mechanisms (start-first, rollback on failure, health
# checks, networks) stay exactly as the program sets them.
TEST_OVERLAY: dict[str, Any] = {
    "brandclub:endpointMode": "dnsrr",  # this kernel has no IPVS, so no VIPs
    "brandclub:images": {
        "app": APP_REPOSITORY,
        "mariadb": MARIADB_IMAGE,
        "redis": REDIS_IMAGE,
        "mailpit": MAILPIT_IMAGE,
    },
    "brandclub:mariadb": {"version": MARIADB_IMAGE.rsplit(":", 1)[1]},
    # The program's start period (60 s) stays: the stand-in backend, like gunicorn with
    # --preload on 2 cores, opens its port only after about 18 s.
    "brandclub:healthcheck": {"interval": "2s", "timeout": "2s", "retries": 2},
    "brandclub:rollout": {"delay": "1s", "monitor": "10s", "convergeTimeout": "3m"},
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
        mounts = [
            dict(f.split("=", 1) for f in line.split(",") if "=" in f)
            for line in self.environment["JOB_MOUNTS"].splitlines()
        ]
        return {mount["source"] for mount in mounts if mount.get("type") == "volume"}

    def run(self, **changed: str) -> JobRun:
        """Run the command as pulumi-command does: ``/bin/sh -c <create>`` from the project
        directory with its environment (``changed`` replaces values), on the local engine."""
        environment = {k: v for k, v in self.environment.items() if k != "DOCKER_HOST"}
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


def render(out: Path, image_tag: str, secrets: dict[str, str]) -> Rendered:
    """One rendering of the program, exported as ``python -m brandclub render`` does, and its
    site jobs; the secrets only name the Docker secrets as ``pulumi up`` would."""
    overrides = deep_merge(EXPORT_DEFAULTS, {**TEST_OVERLAY, "brandclub:imageTag": image_tag})
    rendering = render_program(PULUMI_STACK, overrides, secrets=secrets)
    write(export(rendering), out)
    directory = out / PULUMI_STACK
    (component,) = rendering.of_type(SITE_JOBS)
    below = rendering.children_of(SITE_JOBS)
    return Rendered(
        directory,
        json.loads((directory / "manifest.json").read_text()),
        jobs=[SiteJobCommand.of(r) for r in below if r.type == COMMAND],
        # The component names each secret "<component>-<role>".
        job_secrets=[
            JobSecret(r.name.removeprefix(f"{component.name}-"), r.inputs["name"], r.labels)
            for r in below
            if r.type == SECRET
        ],
    )


def deploy_stack(rendered: Rendered, stack: str) -> None:
    # No registry here: deploy the local images by tag, as they are.
    docker(
        "stack", "deploy", "--resolve-image", "never", "-c", str(rendered.stack_file(stack)), stack
    )


@dataclass
class DevDeployment:
    """dev's two stacks, the objects around them, and the probe the tests send requests from."""

    workdir: Path
    rendered: Rendered | None = None
    renderings: dict[str, Rendered] = field(default_factory=dict)
    created_networks: list[str] = field(default_factory=list)
    converge_seconds: dict[str, float] = field(default_factory=dict)
    # The site jobs of the first deployment, as they ran.
    job_runs: list[JobRun] = field(default_factory=list)
    # Quotes and shell characters on purpose: the entrypoint and the jobs must pass them intact.
    root_password: str = field(default_factory=lambda: secrets.token_urlsafe(18) + "'!$\\")
    # "xA1": three character classes for sure, whatever the random part (the strength check).
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12) + ' "$`xA1')
    secret_name_key: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def secret_values(self) -> dict[str, str]:
        """The program's secret config: values by config key, as ``pulumi config`` holds them."""
        return {
            "brandclub:dbRootPassword": self.root_password,
            "brandclub:adminPassword": self.admin_password,
            "brandclub:secretNameKey": self.secret_name_key,
        }

    def rendering(self, image_tag: str) -> Rendered:
        """The program rendered with ``image_tag`` (once per tag)."""
        if image_tag not in self.renderings:
            self.renderings[image_tag] = render(
                self.workdir / image_tag, image_tag, self.secret_values
            )
        return self.renderings[image_tag]

    @property
    def data_stack(self) -> str:
        return self._rendered.stacks[0]

    @property
    def app_stack(self) -> str:
        return self._rendered.stacks[-1]

    @property
    def _rendered(self) -> Rendered:
        assert self.rendered is not None, "render first"
        return self.rendered

    def service(self, stack: str, name: str) -> str:
        return f"{stack}_{name}"

    def services(self, stack: str) -> list[str]:
        return [self.service(stack, name) for name in self._rendered.compose(stack)["services"]]

    # --- bring-up -----------------------------------------------------------------------------

    def refuse_foreign_stacks(self) -> None:
        """Never touch a dev stack the tier did not create: ours carry a labelled secret."""
        if docker("secret", "ls", "-q", "--filter", f"label={TEST_LABEL}"):
            return
        found = [stack for stack in self._rendered.stacks if stack_services(stack)]
        found += [v for v in sorted(self._rendered.volumes) if docker_ok("volume", "inspect", v)]
        if found:
            raise RuntimeError(
                f"{', '.join(found)} exist on this swarm and were not created by the live tier; "
                "remove them or run the tier on another machine"
            )

    def up(self, image_tag: str) -> None:
        self.rendered = self.rendering(image_tag)
        self.refuse_foreign_stacks()
        self.down()  # leftovers of an aborted run
        for name in self._rendered.manifest["requiredNetworks"]:
            if not docker_ok("network", "inspect", name):
                docker(
                    "network",
                    "create",
                    "--driver",
                    "overlay",
                    "--attachable",
                    "--label",
                    f"{TEST_LABEL}=1",
                    name,
                )
                self.created_networks.append(name)
        job_secret_values = {"admin-password": self.admin_password}
        for name, labels, value in [
            *(
                (s["name"], s["labels"], self.root_password)
                for s in self._rendered.manifest["secrets"]
            ),
            *((s.name, s.labels, job_secret_values[s.role]) for s in self._rendered.job_secrets),
        ]:
            flags = [f"--label={k}={v}" for k, v in {**labels, TEST_LABEL: "1"}.items()]
            docker("secret", "create", *flags, name, "-", stdin=value)
        started = time.monotonic()
        deploy_stack(self._rendered, self.data_stack)
        wait_converged(self.services(self.data_stack), CONVERGE_TIMEOUT)
        self.converge_seconds["data"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        self.run_site_jobs()
        self.converge_seconds["siteJobs"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        deploy_stack(self._rendered, self.app_stack)
        wait_converged(self.services(self.app_stack), CONVERGE_TIMEOUT)
        self.converge_seconds["app"] = round(time.monotonic() - started, 1)
        docker(
            "run",
            "-d",
            "--name",
            PROBE,
            "--label",
            f"{TEST_LABEL}=1",
            "--network",
            PROBE_NETWORK,
            f"{APP_REPOSITORY}:{image_tag}",
            "sleep",
            "infinity",
        )

    def run_site_jobs(self) -> None:
        """The program's site jobs, in its order; a failed one stops the rollout, as in
        ``pulumi up``."""
        for job in self._rendered.jobs:
            run = job.run()
            self.job_runs.append(run)
            if run.returncode != 0:
                raise RuntimeError(f"site job {job.name} exited {run.returncode}:\n{run.stderr}")

    def remove_jobs(self) -> None:
        """Job services an aborted run left, and every job container: Swarm keeps the exited
        container of a removed job service on the node, and it keeps the volumes in use."""
        prefix = f"{self.app_stack}-job-"
        for service in docker("service", "ls", "--format", "{{.Name}}").split():
            if service.startswith(prefix):
                docker("service", "rm", service, check=False)
        label = "com.docker.swarm.service.name"
        listing = docker(
            "ps",
            "-a",
            "--filter",
            f"label={label}",
            "--format",
            f'{{{{.ID}}}} {{{{.Label "{label}"}}}}',
        )
        for line in listing.splitlines():
            container, service = line.split(" ", 1)
            if service.startswith(prefix):
                docker("rm", "-f", container, check=False)

    def deploy_app(self, image_tag: str) -> Rendered:
        """Render with another image tag and deploy only the app stack, as a rollout does."""
        rendered = self.rendering(image_tag)
        deploy_stack(rendered, self.app_stack)
        self.rendered = rendered
        return rendered

    def converge_app(self) -> dict[str, ServiceState]:
        return wait_converged(self.services(self.app_stack), CONVERGE_TIMEOUT)

    # --- requests from inside the swarm -------------------------------------------------------

    def probe(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "exec", PROBE, "probe", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def get(self, path: str) -> dict[str, Any]:
        result = self.probe("get", FRONTEND_URL + path)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def http(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        url: str = FRONTEND_URL,
    ) -> dict[str, Any]:
        """One request from the probe with exactly these headers; status, headers, body."""
        spec: dict[str, Any] = {"method": method, "url": url + path, "headers": dict(headers or {})}
        if form is not None:
            spec["body"] = urllib.parse.urlencode(form)
            spec["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
        result = self.probe("http", json.dumps(spec))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.probe("post", FRONTEND_URL + path, json.dumps(body))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def start_request_loop(self, count: int, interval: float, timeout: float) -> RequestLoop:
        stop_file = f"/tmp/stop-{time.monotonic_ns()}"
        command = [
            "docker",
            "exec",
            PROBE,
            "probe",
            "loop",
            FRONTEND_URL + "/api/method/version",
            str(count),
            str(interval),
            str(timeout),
            stop_file,
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return RequestLoop(process, stop_file, count * (interval + timeout) + 30)

    # --- tear-down ----------------------------------------------------------------------------

    def down(self) -> None:
        docker("rm", "-f", PROBE, check=False)
        self.remove_jobs()
        remove_stacks(reversed(self._rendered.stacks))
        job_volumes = {volume for job in self._rendered.jobs for volume in job.volumes}
        remove_all("volume", sorted(self._rendered.volumes | job_volumes))
        # By label too: an aborted run's secret carries another password's fingerprint.
        labelled = docker("secret", "ls", "-q", "--filter", f"label={TEST_LABEL}").split()
        named = [secret["name"] for secret in self._rendered.manifest["secrets"]]
        named += [secret.name for secret in self._rendered.job_secrets]
        remove_all("secret", sorted(set(named) | set(labelled)))
        leftover = docker("network", "ls", "-q", "--filter", f"label={TEST_LABEL}").split()
        remove_all("network", sorted(set(self.created_networks) | set(leftover)))
        self.created_networks.clear()


@dataclass
class RequestLoop:
    process: subprocess.Popen
    stop_file: str
    max_seconds: float

    def finish(self) -> dict[str, Any]:
        """Stop the loop and return its summary (sent, failed, versions, errors)."""
        subprocess.run(["docker", "exec", PROBE, "touch", self.stop_file], check=True)
        out, err = self.process.communicate(timeout=self.max_seconds)
        assert self.process.returncode == 0, err
        return json.loads(out)
