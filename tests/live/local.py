"""The local stack (Pulumi.local.yaml) on the tier's swarm, from its export: the data stack, its
own Traefik (the real one, with no ACME resolver), the program's site jobs, the app stack.

It runs before dev's deployment (tests/live/conftest.py orders the modules) and is removed
before dev comes up: both publish Traefik on :80 and :443 and own ``traefik-public``. The
rendering, the export and the jobs are the tier's own (tests/live/rendering.py); only the stack
and its overlay differ: the tier's images and timings, local's own shape and site.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacktools.engine import deep_merge
from stacktools.export import EXPORT_DEFAULTS
from tests.live.deployment import (
    CONVERGE_TIMEOUT,
    JOB_SECRET_KEYS,
    STACK_SECRET_KEY,
    deploy_stack,
)
from tests.live.images.build import APP_VERSIONS
from tests.live.rendering import (
    TEST_OVERLAY,
    Rendered,
    exported,
    job_timings,
)
from tests.live.swarm import (
    TEST_LABEL,
    docker,
    docker_ok,
    remove_all,
    remove_stacks,
    wait_converged,
)

STACK = "local"
SITE = "brandclub.localhost"
# The tier's images (its first release of the stand-in app), endpoint mode and timings; local's
# own domains, replicas and ingress stay.
LOCAL_OVERLAY: dict[str, Any] = {
    **{
        key: value
        for key, value in TEST_OVERLAY.items()
        if key not in ("brandclub:domains", "brandclub:services")
    },
    "brandclub:imageTag": APP_VERSIONS[0],
}


def render_local(out: Path, secret_values: dict[str, str]) -> Rendered:
    """Pulumi.local.yaml under the tier's overlay, exported as ``python -m stacktools render``
    writes it, with its site jobs and layers."""
    return exported(STACK, deep_merge(EXPORT_DEFAULTS, LOCAL_OVERLAY), secret_values, out)


@dataclass
class LocalDeployment:
    workdir: Path
    rendered: Rendered | None = None
    created_networks: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    # What ./deploy.sh local generates (stacktools/local_stack.py), here for the tier alone.
    values: dict[str, str] = field(
        default_factory=lambda: {
            "brandclub:dbRootPassword": secrets.token_urlsafe(18) + "xA1!",
            "brandclub:adminPassword": secrets.token_urlsafe(18) + "xA1!",
            "brandclub:secretNameKey": secrets.token_hex(32),
        }
    )

    @property
    def _rendered(self) -> Rendered:
        assert self.rendered is not None, "render first"
        return self.rendered

    def services(self, stack: str) -> list[str]:
        return [f"{stack}_{name}" for name in self._rendered.compose(stack)["services"]]

    def up(self) -> None:
        started = time.monotonic()
        self.rendered = render_local(self.workdir, self.values)
        self.down()  # an aborted run's leftovers
        manifest = self._rendered.manifest
        label = f"--label={TEST_LABEL}=1"
        for entry in manifest.get("networksToCreate", []):
            if not docker_ok("network", "inspect", entry["name"]):
                command = entry["command"].split()
                docker(*command[1:-1], label, command[-1])
                self.created_networks.append(entry["name"])
        root = self.values[STACK_SECRET_KEY]
        for name, labels, value in [
            *((s["name"], s["labels"], root) for s in manifest["secrets"]),
            *(
                (s.name, s.labels, self.values[JOB_SECRET_KEYS[s.role]])
                for s in self._rendered.job_secrets
            ),
        ]:
            flags = [f"--label={k}={v}" for k, v in {**labels, TEST_LABEL: "1"}.items()]
            docker("secret", "create", *flags, name, "-", stdin=value)
        # The order of pulumi up: the data layer and Traefik, the site jobs, then the app.
        stacks = self._rendered.stacks
        for stack in stacks[:-1]:
            deploy_stack(self._rendered, stack)
        wait_converged(self.services(stacks[0]), CONVERGE_TIMEOUT)
        self.seconds["data"] = round(time.monotonic() - started, 1)
        for job in self._rendered.jobs:
            run = job.run(job_timings(job.name))
            if run.returncode != 0:
                raise RuntimeError(f"site job {job.name} exited {run.returncode}:\n{run.stderr}")
        self.seconds["siteJobs"] = round(time.monotonic() - started - self.seconds["data"], 1)
        deploy_stack(self._rendered, stacks[-1])
        wait_converged([s for stack in stacks for s in self.services(stack)], CONVERGE_TIMEOUT)
        self.seconds["up"] = round(time.monotonic() - started, 1)

    def job_containers(self) -> list[str]:
        """Containers of this stack's site jobs still on the node (their services are gone)."""
        prefix = f"{self._rendered.stacks[-1]}-job-"
        label = "com.docker.swarm.service.name"
        listing = docker("ps", "-a", "--filter", f"label={label}", "--format",
                         f'{{{{.ID}}}} {{{{.Label "{label}"}}}}')  # fmt: skip
        return [
            line.split(" ", 1)[0]
            for line in listing.splitlines()
            if line.split(" ", 1)[1].startswith(prefix)
        ]

    def down(self) -> None:
        """Everything the stack made, by name, volumes included (``./deploy.sh local destroy``)."""
        rendered = self._rendered
        prefix = f"{rendered.stacks[-1]}-job-"
        for service in docker("service", "ls", "--format", "{{.Name}}").split():
            if service.startswith(prefix):
                docker("service", "rm", service, check=False)
        for container in self.job_containers():
            docker("rm", "-f", container, check=False)
        remove_stacks(reversed(rendered.stacks))
        job_volumes = {volume for job in rendered.jobs for volume in job.volumes}
        remove_all("volume", sorted(rendered.volumes | job_volumes))
        named = [s["name"] for s in rendered.manifest["secrets"]]
        named += [s.name for s in rendered.job_secrets]
        remove_all("secret", sorted(set(named)))
        networks = {n.get("name", key) for key, n in self._networks().items()}
        remove_all("network", sorted(networks | set(self.created_networks)))
        self.created_networks.clear()

    def _networks(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for stack in self._rendered.stacks:
            found |= self._rendered.compose(stack).get("networks") or {}
        return found

    def leftovers(self) -> list[str]:
        """What of the stack still exists on the swarm (nothing, after :meth:`down`)."""
        rendered = self._rendered
        found = [s for stack in rendered.stacks for s in self.services(stack)
                 if docker_ok("service", "inspect", s)]  # fmt: skip
        found += [v for v in sorted(rendered.volumes) if docker_ok("volume", "inspect", v)]
        networks = {n.get("name", key) for key, n in self._networks().items()}
        found += [n for n in sorted(networks) if docker_ok("network", "inspect", n)]
        return found
