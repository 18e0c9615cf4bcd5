"""Issue 23 item 1 on the swarm: the restore drill, with the real MariaDB and the live image.

dev gets prod's backup and restore-drill services for this module (the program's own rendering
with ``backup.drill.enabled``, deployed as ``pulumi up`` would: the prepare-backup-dir job, then
the new services), a backup is taken by the backup service's own script, and drills run in the
drill's task as an operator runs one now (``bash /tmp/restore-drill.sh once``):

- a drill restores the newest backup into a throwaway database on the live MariaDB, passes every
  check, reports in ``/status.json`` and ``/metrics`` (read on ``traefik-public``, where
  Traefik's metrics are), and leaves no ``drill_`` database or user behind; meanwhile the live
  site's tables are unchanged (their checksums) and a request loop through the frontend sees no
  error;
- a drill killed halfway (its container SIGKILLed while the throwaway database exists) leaves a
  database and a user that the next drill drops before it restores.

The services are removed again at the end, so the modules after this one find dev as it was.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from components.frappe.processes import DRILL_STATE_PATH
from tests.live.deployment import DevDeployment
from tests.live.helpers import LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT, notes, site_config, sql
from tests.live.rendering import Rendered
from tests.live.swarm import (
    docker,
    exec_in,
    running_tasks,
    the_task,
    wait_converged,
    wait_for,
)

pytestmark = pytest.mark.live

TAG = "v1"
SERVICE_SIZE = {
    "replicas": 1,
    "limits": {"cpus": 1.0, "memory": "1G"},
    "reservations": {"cpus": 0.05, "memory": "256M"},
}
# The stand-in site's tables: its users, ToDos the fixture writes, and the notes the tier's
# tests write (the stand-in's own doctype).
DOCTYPES = ["User", "ToDo", "Brandclub Note"]
# Rows a naive counter of the dump would get wrong: parentheses, commas, quotes.
TODOS = ("call (back), then close", "it's done", "a);(b")
METRICS_PORT = 9150
DRILL_SCRIPT = "/tmp/restore-drill.sh"
# A drill restores, migrates, boots the image's backend (18 s here) and logs in.
DRILL_TIMEOUT = 240


def drill_settings(host_path: Path) -> dict[str, Any]:
    """prod's backup and drill on dev's rendering; both loops' times 12 hours away, so only the
    test starts a backup or a drill."""
    later = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    return {
        "brandclub:services": {"backup": SERVICE_SIZE, "restore-drill": SERVICE_SIZE},
        "brandclub:backup": {
            "hostPath": str(host_path),
            "time": later,
            "drill": {
                "enabled": True,
                "time": later,
                "doctypes": DOCTYPES,
                "metricsPort": METRICS_PORT,
            },
        },
    }


def container_of(dev: DevDeployment, service: str) -> str:
    return the_task(dev.service(dev.app_stack, service)).container_id


def throwaway_names(dev: DevDeployment) -> tuple[list[str], list[str]]:
    """The drill_ databases and users on the live MariaDB."""
    databases = [row[0] for row in sql(dev, "SHOW DATABASES LIKE 'drill\\_%'")]
    users = [row[0] for row in sql(dev, "SELECT user FROM mysql.user WHERE user LIKE 'drill\\_%'")]
    return databases, users


def live_checksums(dev: DevDeployment) -> dict[str, str]:
    """Every table of the live site's database with its checksum."""
    database = site_config(dev)["db_name"]
    tables = [row[0] for row in sql(dev, f"SHOW TABLES FROM `{database}`")]
    listed = ", ".join(f"`{database}`.`{table}`" for table in tables)
    return {row[0]: row[1] for row in sql(dev, f"CHECKSUM TABLE {listed}")}


def run_drill(container: str) -> subprocess.CompletedProcess:
    return exec_in(container, "bash", DRILL_SCRIPT, "once", timeout=DRILL_TIMEOUT)


def on_traefik_public(dev: DevDeployment, path: str) -> str:
    """What the drill's metrics server answers to ``path`` from traefik-public (the probe),
    where Traefik's metrics are scraped too."""
    url = f"http://{dev.service(dev.app_stack, 'restore-drill')}:{METRICS_PORT}{path}"
    result = dev.probe("http", json.dumps({"url": url}))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == 200, answer
    return answer["body"]


def metrics(dev: DevDeployment) -> dict[str, float]:
    values = {}
    for line in on_traefik_public(dev, "/metrics").splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@pytest.fixture(scope="module")
def drilled_dev(
    dev: DevDeployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevDeployment]:
    host_path = Path(tmp_path_factory.mktemp("drill-backups"))
    rendered: Rendered = dev.rendering(TAG, drill_settings(host_path), name="restore-drill")
    added = [dev.service(dev.app_stack, name) for name in ("backup", "restore-drill")]
    try:
        applied = dev.apply(rendered, dev.secret_values, "restore-drill")
        assert applied.ok, applied.report()
        wait_converged(added, 120)
        database = site_config(dev)["db_name"]
        rows = ", ".join(
            f"('drill-{n}', '{text.replace(chr(39), chr(39) * 2)}')" for n, text in enumerate(TODOS)
        )
        sql(dev, f"REPLACE INTO `{database}`.`tabToDo` (name, description) VALUES {rows}")
        # A backup now, by the backup service's own script (its loop sleeps 12 hours).
        spec = rendered.compose(dev.app_stack)["services"]["backup"]
        script = spec["command"][-1].replace("$$", "$")
        made = exec_in(container_of(dev, "backup"), "env", "BACKUP_ONCE=1", "bash", "-c", script)
        assert made.returncode == 0, made.stdout + made.stderr
        # The drill's task writes its text for `once` when it starts.
        wait_for(
            "the drill's script copy",
            lambda: (
                exec_in(container_of(dev, "restore-drill"), "test", "-f", DRILL_SCRIPT).returncode
                == 0
            ),
            60,
        )
        yield dev
    finally:
        for name in added:
            docker("service", "rm", name, check=False)
        dev.apply(dev.rendering(TAG), dev.secret_values, TAG)


def test_a_drill_restores_checks_reports_and_touches_nothing_live(
    drilled_dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    dev = drilled_dev
    before, notes_before = live_checksums(dev), notes(dev)
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    started = time.monotonic()
    result = run_drill(container_of(dev, "restore-drill"))
    seconds = round(time.monotonic() - started, 1)
    requests = loop.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(on_traefik_public(dev, "/status.json"))
    [site] = status["sites"]
    run = site["last_run"]
    live_report["restoreDrill"] = {
        "seconds": seconds,
        "checks": {check["name"]: check["seconds"] for check in run["checks"]},
        "requests": {key: requests[key] for key in ("sent", "failed")},
    }
    assert run["ok"] and site["healthy"], site
    assert [check["name"] for check in run["checks"]] == [
        "backup",
        "restore",
        "rows",
        "migrate",
        "login",
        "files",
    ]
    assert all(check["ok"] for check in run["checks"]), run["checks"]
    rows = next(check for check in run["checks"] if check["name"] == "rows")
    assert f"ToDo: {len(TODOS)}" in rows["message"], rows
    assert run["backup"]["path"].startswith("/backups/"), run["backup"]
    # Nothing the drill did reached the live site: its tables, its rows, its requests.
    assert live_checksums(dev) == before
    assert notes(dev) == notes_before
    assert requests["failed"] == 0, requests["errors"]
    assert throwaway_names(dev) == ([], [])
    found = metrics(dev)
    label = f'{{site="{dev.site}"}}'
    assert found[f"brandclub_restore_drill_last_run_ok{label}"] == 1
    assert found[f"brandclub_restore_drill_healthy{label}"] == 1
    assert 0 <= found[f"brandclub_backup_newest_age_seconds{label}"] < 3600
    assert found[f"brandclub_restore_drill_last_success_timestamp_seconds{label}"] > 0


def test_a_drill_killed_halfway_is_cleaned_up_by_the_next(drilled_dev: DevDeployment) -> None:
    dev = drilled_dev
    victim = container_of(dev, "restore-drill")
    docker("exec", "--detach", victim, "bash", DRILL_SCRIPT, "once")
    wait_for(
        "the drill's throwaway database",
        lambda: throwaway_names(dev)[0] != [],
        DRILL_TIMEOUT,
        interval=0.2,
    )
    docker("kill", victim)  # SIGKILL: no trap runs
    left = throwaway_names(dev)
    assert left[0] and left[1], left
    service = dev.service(dev.app_stack, "restore-drill")
    wait_for(
        "the drill's replacement task",
        lambda: [
            task
            for task in running_tasks(service)
            if task.container_id not in ("", victim) and task.state == "running"
        ],
        120,
    )
    replacement = container_of(dev, "restore-drill")
    wait_for(
        "the replacement's script copy",
        lambda: exec_in(replacement, "test", "-f", DRILL_SCRIPT).returncode == 0,
        60,
    )
    result = run_drill(replacement)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dropped leftovers of an earlier drill" in result.stdout + result.stderr
    assert throwaway_names(dev) == ([], [])
    # The state folder (a bind of the node's backup directory) kept the history across tasks.
    history = exec_in(replacement, "cat", f"{DRILL_STATE_PATH}/sites/{dev.site}/history.jsonl")
    assert len(history.stdout.splitlines()) >= 2
