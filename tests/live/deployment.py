"""The dev stack on the local swarm, deployed the way docs/operations.md tells an operator to.

One offline rendering of the program (``stacktools.engine.render``, with a test overlay that
points the images at the locally built ones and shortens the timings) gives both the stack
files, through the export's own code (``python -m stacktools render``), and the program's site
jobs, which run as pulumi-command would run them: ``run-swarm-job.sh`` with each command's
environment. Secrets and the external networks are created by hand as the export's manifest
asks; the site is created by the program's own jobs.
"""

from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from components.platform.catalogue import TRAEFIK_STACK
from stacktools.engine import deep_merge
from tests.live.images.build import APP_REPOSITORY
from tests.live.rendering import (
    DOMAINS,
    SITE,
    JobRun,
    PrivateAcme,
    Rendered,
    SiteJobCommand,
    job_timings,
    render,
)
from tests.live.rollout import Rollout, changed_jobs, deploy_layer
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

PROBE = "brandclub-live-probe"
PROBE_NETWORK = "traefik-public"
# A client on the host's network, where a browser is: it reaches Traefik's published ports at
# the host's address, the site's domains resolving there, and trusts Pebble's root.
CLIENT = "brandclub-live-client"
CLIENT_ROOT = "/etc/brandclub-live/pebble-root.pem"
FRONTEND_URL = "http://brandclub-dev_frontend:8080"
TRAEFIK_SERVICE = f"{TRAEFIK_STACK}_traefik"
CONVERGE_TIMEOUT = 240
# Where each Docker secret's value comes from: the secret config key, as pulumi up reads it.
# The stacks' one secret is MariaDB's root password (pinned: created once, components/
# data_layer.py); the site jobs' secrets go by role (components/frappe/jobs.py).
STACK_SECRET_KEY = "brandclub:dbRootPassword"
JOB_SECRET_KEYS = {
    "admin-password": "brandclub:adminPassword",
    "db-root-password": "brandclub:dbRootPassword",
    "db-root-password-previous": "brandclub:dbRootPasswordPrevious",
}


def deploy_stack(rendered: Rendered, stack: str) -> None:
    # No registry here: deploy the local images by tag, as they are.
    docker(
        "stack", "deploy", "--resolve-image", "never", "-c", str(rendered.stack_file(stack)), stack
    )


@dataclass
class DevDeployment:
    """dev's stacks (data, Traefik, app), the objects around them, and the containers the tests
    send requests from."""

    # Where get/post send their requests: the app stack's frontend, on the probe's network.
    frontend_url: ClassVar[str] = FRONTEND_URL
    # The site the stacks serve (the first domain).
    site: ClassVar[str] = SITE

    workdir: Path
    acme: PrivateAcme
    # Where clients reach Traefik's published ports, and Pebble's root for the client.
    host_address: str = "127.0.0.1"
    pebble_root: Path | None = None
    rendered: Rendered | None = None
    renderings: dict[str, Rendered] = field(default_factory=dict)
    created_networks: list[str] = field(default_factory=list)
    # Each site job's environment as last applied (what pulumi-command compares to).
    applied_jobs: dict[str, dict[str, str]] = field(default_factory=dict)
    rollouts: list[Rollout] = field(default_factory=list)
    converge_seconds: dict[str, float] = field(default_factory=dict)
    # When the first deploy's app services had converged: Traefik's routers (and so its
    # certificate orders) exist from then on.
    app_converged_at: float | None = None
    # The site jobs of the first deployment, as they ran.
    job_runs: list[JobRun] = field(default_factory=list)
    # Quotes and shell characters on purpose: the entrypoint and the jobs must pass them intact.
    root_password: str = field(default_factory=lambda: secrets.token_urlsafe(18) + "'!$\\")
    # "xA1": three character classes for sure, whatever the random part (the strength check).
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12) + ' "$`xA1')
    secret_name_key: str = field(default_factory=lambda: secrets.token_hex(32))
    # Settings over the tier's overlay in every rendering of this deployment (the release
    # benchmark's choice of health-check and rollout timings); a rendering's ``extra`` goes last.
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def secret_values(self) -> dict[str, str]:
        """The program's secret config: values by config key, as ``pulumi config`` holds them."""
        return {
            "brandclub:dbRootPassword": self.root_password,
            "brandclub:adminPassword": self.admin_password,
            "brandclub:secretNameKey": self.secret_name_key,
        }

    def rendering(
        self,
        image_tag: str,
        extra: dict[str, Any] | None = None,
        name: str | None = None,
        secrets: dict[str, str] | None = None,
    ) -> Rendered:
        """The program rendered with ``image_tag`` (once per tag); ``extra`` changes settings
        over the tier's overlay and ``secrets`` secret config values (a rotation's), cached
        under ``name``."""
        key = name or image_tag
        assert (extra is None and secrets is None) == (name is None), (
            "a rendering with extra settings or secrets needs a name"
        )
        if key not in self.renderings:
            values = {**self.secret_values, **(secrets or {})}
            settings = deep_merge(self.settings, extra or {})
            out = self.workdir / key
            self.renderings[key] = render(out, image_tag, values, self.acme, settings)
        return self.renderings[key]

    @property
    def data_stack(self) -> str:
        return self._rendered.stacks[0]

    @property
    def app_stack(self) -> str:
        return self._rendered.stacks[-1]

    @property
    def ingress_stack(self) -> str:
        assert TRAEFIK_STACK in self._rendered.stacks, "the tier's dev runs Traefik"
        return TRAEFIK_STACK

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
        # Networks the program owns that no stack service of theirs joins (the realtime one):
        # created with the export's own command, labelled so a later run may remove them.
        for entry in self._rendered.manifest.get("networksToCreate", []):
            if not docker_ok("network", "inspect", entry["name"]):
                command = shlex.split(entry["command"])
                docker(*command[1:-1], "--label", f"{TEST_LABEL}=1", command[-1])
                self.created_networks.append(entry["name"])
        self.create_secrets()
        started = time.monotonic()
        deploy_stack(self._rendered, self.data_stack)
        # Traefik comes up while the data services and the site jobs do; it has no routes until
        # the app's services exist.
        deploy_stack(self._rendered, self.ingress_stack)
        wait_converged(self.services(self.data_stack), CONVERGE_TIMEOUT)
        self.converge_seconds["data"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        self.run_site_jobs()
        self.converge_seconds["siteJobs"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        for index, layer in enumerate(self._rendered.layers[self.app_stack]):
            outcome = deploy_layer(
                self.app_stack,
                self._rendered.stack_file(self.app_stack),
                layer,
                CONVERGE_TIMEOUT,
                f"layer{index}",
            )
            assert not outcome.failed, f"{outcome.failed} rolled back on the first deploy"
        self.converge_seconds["app"] = round(time.monotonic() - started, 1)
        self.app_converged_at = time.monotonic()
        wait_converged(self.services(self.ingress_stack), CONVERGE_TIMEOUT)
        image = f"{APP_REPOSITORY}:{image_tag}"
        label = ["--label", f"{TEST_LABEL}=1"]
        docker(
            "run",
            "-d",
            "--name",
            PROBE,
            *label,
            "--network",
            PROBE_NETWORK,
            image,
            "sleep",
            "infinity",
        )
        assert self.pebble_root is not None
        hosts = [f"--add-host={domain}:{self.host_address}" for domain in DOMAINS]
        docker(
            *("run", "-d", "--name", CLIENT, *label, "--network", "host", *hosts),
            *("--volume", f"{self.pebble_root}:{CLIENT_ROOT}:ro"),
            *("--env", f"SSL_CERT_FILE={CLIENT_ROOT}"),
            *(image, "sleep", "infinity"),
        )

    def create_secrets(
        self, rendered: Rendered | None = None, values: dict[str, str] | None = None
    ) -> list[str]:
        """The Docker secrets ``pulumi up`` would create for ``rendered`` (the stacks' and the
        site jobs'; default: the current rendering) from the secret config ``values`` (default:
        the deployment's), named as the rendering names them, labelled as the tier's so clean-up
        finds them. A secret that exists keeps its value, as Docker's are immutable and the
        program pins MariaDB's. Returns the names created."""
        rendered = rendered or self._rendered
        values = values or self.secret_values
        wanted = [
            (s["name"], s["labels"], values[STACK_SECRET_KEY]) for s in rendered.manifest["secrets"]
        ]
        wanted += [
            (s.name, s.labels, values[JOB_SECRET_KEYS[s.role]]) for s in rendered.job_secrets
        ]
        created = []
        for name, labels, value in wanted:
            if docker_ok("secret", "inspect", name):
                continue
            flags = [f"--label={k}={v}" for k, v in {**labels, TEST_LABEL: "1"}.items()]
            docker("secret", "create", *flags, name, "-", stdin=value)
            created.append(name)
        return created

    def run_site_jobs(self) -> None:
        """The program's site jobs, in its order; a failed one stops the rollout, as in
        ``pulumi up``."""
        for job in self._rendered.jobs:
            run = self.run_job(job)
            self.job_runs.append(run)
            if run.returncode != 0:
                raise RuntimeError(f"site job {job.name} exited {run.returncode}:\n{run.stderr}")

    def run_job(self, job: SiteJobCommand, **changed: str) -> JobRun:
        """One site job as pulumi-command runs it; the boot check with the tier's shorter
        timeout. Its environment counts as applied once it succeeds."""
        extra = job_timings(job.name)
        run = job.run(extra, **changed)
        if run.returncode == 0 and not changed:
            self.applied_jobs[job.name] = dict(job.environment)
        return run

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

    def rollout(self, image_tag: str, run_jobs: bool = True) -> Rollout:
        """``pulumi up`` of the app with another image tag, in the program's order: the site
        jobs whose inputs changed (boot-check, migrate), then the services layer by layer, the
        backend first; it stops where pulumi up would (a failed job, a rolled-back service).
        ``run_jobs=False`` skips the jobs, to see what Swarm alone does with a bad release."""
        return self._roll_app(self.rendering(image_tag), image_tag, run_jobs)

    def apply(self, rendered: Rendered, values: dict[str, str], label: str) -> Rollout:
        """``pulumi up`` of a rendering whose secrets (or data layer) changed, in the program's
        order: the Docker secrets it names that do not exist yet (from the secret config
        ``values``), the data stack (Swarm updates a service whose spec changed, and only that),
        then the site jobs whose inputs changed and the app's services as in ``rollout``."""
        self.create_secrets(rendered, values)
        deploy_stack(rendered, self.data_stack)
        wait_converged(self.services(self.data_stack), CONVERGE_TIMEOUT)
        return self._roll_app(rendered, label, run_jobs=True)

    def _roll_app(self, rendered: Rendered, label: str, run_jobs: bool) -> Rollout:
        result = Rollout(label)
        self.rollouts.append(result)
        started = time.monotonic()
        for job in changed_jobs(self.applied_jobs, rendered.jobs) if run_jobs else []:
            run = self.run_job(job)
            result.job_seconds[job.name] = run.seconds
            if run.returncode != 0:
                result.failed_job, result.failed_job_log = job.name, run.stderr
                break
        else:
            for index, layer in enumerate(rendered.layers[self.app_stack]):
                outcome = deploy_layer(
                    self.app_stack,
                    rendered.stack_file(self.app_stack),
                    layer,
                    CONVERGE_TIMEOUT,
                    f"layer{index}",
                )
                result.layers.append(outcome)
                if outcome.failed:
                    break
            else:
                self.rendered = rendered
        result.seconds = round(time.monotonic() - started, 1)
        return result

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
        result = self.probe("get", self.frontend_url + path)
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
        result = self.probe("post", self.frontend_url + path, json.dumps(body))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def realtime_spec(self, url: str, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
        """What ``realtime`` does: log in through the program's frontend as a browser on the
        site would (Host is the site, as Traefik passes it), join the site's namespace at
        ``url`` with ``headers``, and have the site publish an event to the Administrator's
        room. Over a WebSocket unless ``transports`` says otherwise."""
        site = {"Host": self.site}
        return {
            "url": url,
            "namespace": f"/{self.site}",
            "headers": headers,
            "login": {
                "url": f"{self.frontend_url}/api/method/login",
                "usr": "Administrator",
                "pwd": self.admin_password,
                "headers": site,
            },
            "publish": {
                "url": f"{self.frontend_url}/api/method/brandclub.publish_realtime",
                "event": "brandclub_probe",
                "message": {"sent": time.time()},
                "headers": site,
            },
            "timeout": 15,
            "transports": ["websocket"],
            **extra,
        }

    def polling_through_frontend(self, count: int) -> tuple[list[dict], list[dict]]:
        """``count`` socket.io polling sessions through the frontend, one after the other, each
        its own login: every summary (connected, error, transport), and the sessions that
        failed: not connected, not polling, or without the event the site published to them.
        With several websocket tasks, a request that reached a task other than the one that
        answered the handshake fails its session (400 "Session ID unknown")."""
        specs = [
            self.realtime_spec(self.frontend_url, {"Host": self.site}, transports=["polling"])
            for _ in range(count)
        ]
        sessions = [self.realtime(spec) for spec in specs]
        summaries = [
            {key: joined.get(key) for key in ("connected", "error", "transport")}
            for joined in sessions
        ]
        failed = [
            joined
            for spec, joined in zip(specs, sessions, strict=True)
            if not joined["connected"]
            or joined.get("transport") != "polling"
            or joined["event"] != spec["publish"]["message"]
        ]
        return summaries, failed

    def realtime(
        self, spec: dict[str, Any], timeout: float = 90, container: str = PROBE
    ) -> dict[str, Any]:
        """The probe's socket.io client: log in, join a namespace, wait for an event (from the
        probe on traefik-public, or from the client on the host's network)."""
        result = subprocess.run(
            ["docker", "exec", container, "probe", "realtime", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def start_request_loop(
        self, count: int, interval: float, timeout: float, url: str = FRONTEND_URL
    ) -> RequestLoop:
        stop_file = f"/tmp/stop-{time.monotonic_ns()}"
        command = [
            "docker",
            "exec",
            PROBE,
            "probe",
            "loop",
            url + "/api/method/version",
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
        docker("rm", "-f", PROBE, CLIENT, check=False)
        for service in docker("service", "ls", "-q", "--filter", f"label={TEST_LABEL}").split():
            docker("service", "rm", service, check=False)
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
