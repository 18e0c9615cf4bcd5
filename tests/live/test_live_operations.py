"""Issue 24 items 1 to 3 on the swarm: operations that cost no request and run nothing twice.

- Rotating MariaDB's root password (the program's two ``pulumi up``s) under a request loop
  through the frontend: 0 failed requests, and MariaDB's task is the one from before (its spec
  never changed). Before the fix the new secret changed MariaDB's spec and Swarm restarted it
  stop-first: HTTP 500s for as long as the database was down.
- A rotation with a wrong ``dbRootPasswordPrevious`` fails in its job and changes nothing else:
  the current password still logs in, MariaDB keeps its task, no other job ran with the new
  secret; the documented repair (the right previous password, ``pulumi up`` again) completes it.
  Before the fix MariaDB already mounted the new secret (and had restarted onto it).
- Updating the backup service: never two loop containers, and the old one exits at once
  (status 0) instead of at the end of its grace period. Before the fix bash ignored SIGTERM as
  PID 1, and Swarm, which waits at most a minute for the old task of a stop-first update,
  started the replacement beside it.

Each test leaves the deployment as it found it (the root password back to the deployment's own:
the tests after these log in with it).
"""

from __future__ import annotations

import itertools
import secrets
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from components.frappe.processes import BACKUPS_PATH
from tests.live.deployment import DevDeployment
from tests.live.helpers import (
    LOOP_COUNT,
    LOOP_INTERVAL,
    LOOP_TIMEOUT,
    ensure_app_version,
    mariadb,
    served_version,
)
from tests.live.rendering import Rendered
from tests.live.rollout import Rollout, task_template
from tests.live.swarm import TEST_LABEL, docker, the_task, wait_converged, wait_for

pytestmark = pytest.mark.live

ROOT_PASSWORD = "brandclub:dbRootPassword"
PREVIOUS_ROOT_PASSWORD = "brandclub:dbRootPasswordPrevious"
ROTATION_JOB = "jobs-rotate-db-root-password"
TAG = "v1"
# The password on stdin, never in an argument; TCP, as the site and the jobs connect.
ROOT_LOGIN = (
    'IFS= read -r -d "" password; MYSQL_PWD=$password exec mariadb --host=127.0.0.1 '
    '--user=root --batch --skip-column-names -e "SELECT 1"'
)


def new_password() -> str:
    # Quotes and shell characters on purpose, as the deployment's own; "xA1" for the strength
    # check whatever the random part.
    return secrets.token_urlsafe(18) + "'!$\\xA1"


def root_logs_in(dev: DevDeployment, password: str) -> bool:
    """Whether MariaDB's root accepts ``password``, asked in MariaDB's own container."""
    result = subprocess.run(
        ["docker", "exec", "-i", the_task(mariadb(dev)).container_id, "bash", "-c", ROOT_LOGIN],
        input=password,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0


def mariadb_now(dev: DevDeployment) -> tuple[str, str | None]:
    """MariaDB's running task and its service's task template: both stay as they are when no
    data service changes."""
    service = mariadb(dev)
    return the_task(service).id, task_template(service)


class Rotations:
    """``pulumi up``s with other root-password settings, each its own rendering of ``TAG``."""

    def __init__(self, dev: DevDeployment) -> None:
        self.dev = dev

    def up(self, new: str, previous: str | None) -> Rollout:
        """One ``pulumi up`` with dbRootPassword ``new`` and dbRootPasswordPrevious
        ``previous`` (None: unset, the rotation's second step)."""
        values = {**self.dev.secret_values, ROOT_PASSWORD: new}
        if previous is not None:
            values[PREVIOUS_ROOT_PASSWORD] = previous
        # A name of its own: the deployment keeps each rendering by name, and every test's
        # rotation has other passwords.
        name = f"root-password-{next(RENDERING_NUMBERS)}"
        rendered: Rendered = self.dev.rendering(TAG, name=name, secrets=values)
        return self.dev.apply(rendered, values, name)

    def back_to_the_deployments_own(self, rotated: str) -> None:
        """Rotate back, as an operator would, from ``rotated`` where root has it now (a test that
        failed halfway may not have got there), and apply the deployment's own rendering
        again."""
        own = self.dev.root_password
        current = rotated if root_logs_in(self.dev, rotated) else own
        if current != own:
            back = self.up(own, previous=current)
            assert back.ok, back.report()
        again = self.dev.apply(self.dev.rendering(TAG), self.dev.secret_values, TAG)
        assert again.ok, again.report()
        assert root_logs_in(self.dev, own)


@pytest.fixture
def rotations(dev: DevDeployment) -> Rotations:
    """The deployment on ``TAG`` with its own rendering applied: whatever job a test before
    left with other inputs (a migrate, with its maintenance mode) runs now, not under the
    request loop."""
    ensure_app_version(dev, TAG)
    applied = dev.apply(dev.rendering(TAG), dev.secret_values, TAG)
    assert applied.ok, applied.report()
    assert root_logs_in(dev, dev.root_password)
    return Rotations(dev)


def test_rotating_the_root_password_costs_no_request(
    dev: DevDeployment, rotations: Rotations, live_report: dict[str, Any]
) -> None:
    own, new = dev.root_password, new_password()
    before = mariadb_now(dev)
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    try:
        # docs/secrets.md: set dbRootPasswordPrevious and the new dbRootPassword, pulumi up;
        # remove dbRootPasswordPrevious, pulumi up.
        rotating = rotations.up(new, previous=own)
        assert rotating.ok, rotating.report()
        done = rotations.up(new, previous=None)
        assert done.ok, done.report()
        assert root_logs_in(dev, new) and not root_logs_in(dev, own)
        after = mariadb_now(dev)
    finally:
        summary = loop.finish()
        live_report["rootPasswordRotation"] = {"requests": summary}
        rotations.back_to_the_deployments_own(new)
    live_report["rootPasswordRotation"]["jobSeconds"] = rotating.job_seconds
    # The rotation job ran, and the jobs after it with the new secret (create-site: a no-op).
    assert next(iter(rotating.job_seconds)) == ROTATION_JOB, rotating.report()
    assert "jobs-create-site" in rotating.job_seconds
    assert summary["sent"] > 50 and summary["failed"] == 0, summary
    assert after[0] == before[0], "MariaDB's task was replaced"
    assert after[1] == before[1], "MariaDB's spec changed"


def test_a_failed_rotation_changes_nothing_and_running_it_right_repairs_it(
    dev: DevDeployment, rotations: Rotations, live_report: dict[str, Any]
) -> None:
    own, new, wrong = dev.root_password, new_password(), new_password()
    before = mariadb_now(dev)
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    try:
        failed = rotations.up(new, previous=wrong)
        # The job fails clearly, and the pulumi up stops there: no other job ran, so nothing
        # but the failed job ever mounted the new password's secret.
        assert failed.failed_job == ROTATION_JOB, failed.report()
        assert "neither the new nor the previous root password logs in" in (failed.failed_job_log)
        assert list(failed.job_seconds) == [ROTATION_JOB]
        assert mariadb_now(dev) == before, "the failed rotation changed MariaDB"
        assert root_logs_in(dev, own) and not root_logs_in(dev, new)
        assert served_version(dev) == TAG

        # The repair (docs/secrets.md#rotating-a-secret, "A rotation that failed"): the password
        # MariaDB really has as dbRootPasswordPrevious, pulumi up again.
        repaired = rotations.up(new, previous=own)
        assert repaired.ok, repaired.report()
        assert root_logs_in(dev, new) and not root_logs_in(dev, own)
        after = mariadb_now(dev)
    finally:
        summary = loop.finish()
        live_report["failedRootPasswordRotation"] = {"requests": summary}
        rotations.back_to_the_deployments_own(new)
    assert summary["sent"] > 50 and summary["failed"] == 0, summary
    assert after == before, "MariaDB changed during the rotation and its repair"


# --- the backup service's updates (item 3) ------------------------------------------------------

BACKUP_TWIN = "brandclub-live-backup"
# Prod's backup service settings, on dev's rendering (the tier's stack).
BACKUP_SERVICE = {
    "replicas": 1,
    "limits": {"cpus": 1.0, "memory": "1G"},
    "reservations": {"cpus": 0.05, "memory": "256M"},
}
# Longer than Swarm waits for the old task of a stop-first update (a minute: swarmkit's
# restart supervisor, defaultOldTaskTimeout), so a loop that ignores SIGTERM shows as a second
# container before the watch ends.
UPDATE_WATCH_SECONDS = 90
# How soon the old loop's container must have exited after the update was asked for: Swarm's
# own steps plus the loop's prompt stop, far from its grace period.
OLD_LOOP_GONE_SECONDS = 15


# The rotations' renderings, numbered across the tests.
RENDERING_NUMBERS = itertools.count(1)


def loop_containers() -> list[str]:
    """The twin's running containers."""
    found = docker(
        "ps",
        "--filter",
        f"label=com.docker.swarm.service.name={BACKUP_TWIN}",
        "--format",
        "{{.ID}}",
    )
    return found.split()


@pytest.fixture
def backup_twin(
    dev: DevDeployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The program's backup service for dev, as prod runs it: its image, command, environment,
    stop grace period and update order, as a service of its own on this swarm (dev runs no
    backup service). The backup directory is a fresh one on this node; the run time is 12 hours
    away, so the loop sleeps throughout. No health check: it probes MariaDB on a network the
    twin does not join, and a task's stop does not depend on it."""
    rendered = dev.rendering(
        TAG, {"brandclub:services": {"backup": BACKUP_SERVICE}}, name="backup-service"
    )
    spec = rendered.compose(dev.app_stack)["services"]["backup"]
    host_dir = Path(tmp_path_factory.mktemp("backups"))
    host_dir.chmod(0o777)  # the loop runs as the image's frappe user
    environment = spec["environment"]
    if isinstance(environment, dict):
        environment = [f"{key}={value}" for key, value in environment.items()]
    later = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    environment = [pair for pair in environment if not pair.startswith("BACKUP_TIME=")]
    environment.append(f"BACKUP_TIME={later}")
    order = spec["deploy"]["update_config"]["order"]
    grace = spec["stop_grace_period"]
    flags = ["--name", BACKUP_TWIN, "--label", f"{TEST_LABEL}=1", "--replicas", "1"]
    flags += ["--update-order", order, "--stop-grace-period", grace, "--no-healthcheck"]
    flags += ["--mount", f"type=bind,source={host_dir},target={BACKUPS_PATH}"]
    for pair in environment:
        flags += ["--env", pair.replace("$$", "$")]
    # The stack file escapes every "$" of the script as "$$" for docker stack deploy's
    # interpolation; docker service create takes the command as it is.
    command = [part.replace("$$", "$") for part in spec["command"]]
    docker("service", "create", "--detach", *flags, spec["image"], *command)
    try:
        wait_converged([BACKUP_TWIN], 120)
        # Converged is the task's state; its container may still be starting.
        wait_for(
            "the backup loop's container",
            lambda: len(loop_containers()) == 1,
            60,
            diagnose=lambda: (
                docker("service", "ps", "--no-trunc", BACKUP_TWIN)
                + "\n"
                + docker("service", "logs", "--raw", "--tail", "30", BACKUP_TWIN, check=False)
            ),
        )
        yield {"order": order, "grace": grace, "hostDir": host_dir}
    finally:
        docker("service", "rm", BACKUP_TWIN, check=False)


def test_updating_the_backup_service_never_runs_two_loops(
    backup_twin: dict[str, Any], live_report: dict[str, Any]
) -> None:
    assert backup_twin["order"] == "stop-first"
    [old] = loop_containers()
    deadline = time.monotonic() + 30
    while "scheduled daily at" not in docker("logs", old) and time.monotonic() < deadline:
        time.sleep(0.5)
    asked = time.monotonic()
    docker("service", "update", "--detach", "--force", BACKUP_TWIN)
    most, old_gone, new = 0, None, None
    while time.monotonic() - asked < UPDATE_WATCH_SECONDS:
        running = loop_containers()
        most = max(most, len(running))
        if old_gone is None and old not in running:
            old_gone = round(time.monotonic() - asked, 1)
        others = [c for c in running if c != old]
        if old_gone is not None and others:
            new = others[0]
            break
        time.sleep(0.2)
    live_report["backupServiceUpdate"] = {
        "oldLoopGoneSeconds": old_gone,
        "mostLoopContainers": most,
        "gracePeriod": backup_twin["grace"],
    }
    assert most == 1, f"{most} loop containers ran at once"
    assert old_gone is not None and old_gone < OLD_LOOP_GONE_SECONDS, live_report
    assert docker("inspect", "--format", "{{.State.ExitCode}}", old) == "0"
    assert docker("logs", old).splitlines()[-1].endswith("backup: stopped")
    assert new is not None
    deadline = time.monotonic() + 30
    while "scheduled daily at" not in docker("logs", new) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "scheduled daily at" in docker("logs", new)
    assert "another backup loop holds" not in docker("logs", new)
