"""The dev stack on the local swarm, deployed the way the README tells an operator to.

The stack files come from the export (``python -m brandclub render``) with a test overlay that
points the images at the locally built ones and shortens the timings; secrets, the external
networks and the site are created by hand as the export's manifest asks.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
PULUMI_STACK = "dev"
SITE = "dev.brandclub.com"
SITES_VOLUME = "brandclub-dev-sites"
SITES_PATH = "/home/frappe/frappe-bench/sites"
ROOT_PASSWORD_PATH = "/run/secrets/mariadb-root-password"
SITE_JOB = "brandclub-live-create-site"
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
    "brandclub:healthcheck": {
        "interval": "2s",
        "timeout": "2s",
        "retries": 2,
        "startPeriod": "10s",
    },
    "brandclub:rollout": {"delay": "1s", "monitor": "10s", "convergeTimeout": "3m"},
}


@dataclass
class Rendered:
    directory: Path
    manifest: dict[str, Any]

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


def render(out: Path, image_tag: str, root_password: str) -> Rendered:
    """The export's stack files; the password only names the secret as ``pulumi up`` would."""
    overlay = out / "overlay.yaml"
    out.mkdir(parents=True, exist_ok=True)
    overlay.write_text(
        yaml.safe_dump({"config": {**TEST_OVERLAY, "brandclub:imageTag": image_tag}})
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "brandclub",
            "render",
            "--stack",
            PULUMI_STACK,
            "--out",
            str(out),
            "--config",
            str(overlay),
        ],
        env={**os.environ, "BRANDCLUB_DB_ROOT_PASSWORD": root_password},
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    directory = out / PULUMI_STACK
    return Rendered(directory, json.loads((directory / "manifest.json").read_text()))


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
    created_networks: list[str] = field(default_factory=list)
    converge_seconds: dict[str, float] = field(default_factory=dict)
    # Quotes and shell characters on purpose: the entrypoint must pass it to MariaDB intact.
    root_password: str = field(default_factory=lambda: secrets.token_urlsafe(18) + "'!$\\")

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
        self.rendered = render(self.workdir / image_tag, image_tag, self.root_password)
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
        for secret in self._rendered.manifest["secrets"]:
            labels = [f"--label={k}={v}" for k, v in {**secret["labels"], TEST_LABEL: "1"}.items()]
            docker("secret", "create", *labels, secret["name"], "-", stdin=self.root_password)
        started = time.monotonic()
        deploy_stack(self._rendered, self.data_stack)
        wait_converged(self.services(self.data_stack), CONVERGE_TIMEOUT)
        self.converge_seconds["data"] = round(time.monotonic() - started, 1)
        self.create_site()
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

    def create_site(self) -> None:
        """A one-shot swarm job creates the site's database and configs, as create-site does."""
        secret = next(
            entry["name"]
            for entry in self._rendered.manifest["secrets"]
            if "mariadb-root-password" in entry["name"]
        )
        networks = self._rendered.compose(self.data_stack)["networks"]
        docker(
            "service",
            "create",
            "--detach",
            "--name",
            SITE_JOB,
            "--label",
            f"{TEST_LABEL}=1",
            "--mode",
            "replicated-job",
            "--restart-condition",
            "none",
            "--endpoint-mode",
            "dnsrr",
            *(arg for net in networks.values() for arg in ("--network", net["name"])),
            "--mount",
            f"type=volume,source={SITES_VOLUME},target={SITES_PATH}",
            "--secret",
            f"source={secret},target={ROOT_PASSWORD_PATH}",
            f"{APP_REPOSITORY}:v1",
            "bench",
            "new-site",
            SITE,
            "--db-root-password-file",
            ROOT_PASSWORD_PATH,
        )

        def finished() -> str | None:
            states = docker("service", "ps", "--format", "{{.CurrentState}}", SITE_JOB).split("\n")
            state = states[0].split()[0] if states and states[0] else ""
            return state if state in ("Complete", "Failed", "Rejected") else None

        state = wait_for("the site job", finished, 180)
        logs = docker("service", "logs", "--raw", SITE_JOB, check=False)
        self.remove_site_job()
        assert state == "Complete", f"site job ended {state}:\n{logs}"

    def remove_site_job(self) -> None:
        docker("service", "rm", SITE_JOB, check=False)
        # A finished job's container outlives its service and would keep the sites volume.
        label = f"label=com.docker.swarm.service.name={SITE_JOB}"
        for container in docker("ps", "-aq", "--filter", label).split():
            docker("rm", "-f", container, check=False)

    def deploy_app(self, image_tag: str) -> Rendered:
        """Render with another image tag and deploy only the app stack, as a rollout does."""
        rendered = render(self.workdir / image_tag, image_tag, self.root_password)
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
        self.remove_site_job()
        remove_stacks(reversed(self._rendered.stacks))
        remove_all("volume", sorted(self._rendered.volumes | {SITES_VOLUME}))
        # By label too: an aborted run's secret carries another password's fingerprint.
        labelled = docker("secret", "ls", "-q", "--filter", f"label={TEST_LABEL}").split()
        named = [secret["name"] for secret in self._rendered.manifest["secrets"]]
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
