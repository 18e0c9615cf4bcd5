"""The boot-check job (issue 9 items 12 and 13, issue 19 item 5, issue 24 item 5): where it runs in
a rollout, what it is told, and its script (preflight.sh) run for real with stand-in processes,
curl and Redis. Before migrate: a release whose apps do not import, that cannot reach the
database or Redis, whose worker never registers or whose realtime server never answers fails
`pulumi up` before the schema is touched. No job after migrate starts the new backend: the
backend's own start-first update is that check (the live tier rolls a backend that never turns
healthy back before any other service moves)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest

from components.frappe.health_checks import HEALTH_LIBRARY
from components.frappe.jobs import job_script
from fake_commands import FakeBin, add_frappe, database_server, new_database_server, run_script
from fake_health import FAKE_CURL, SITE_DB, SITE_DB_PASSWORD, fake_health_bench, redis_env
from harness import Rendering, depends_on, env_of, jobs

SITE = "brandclub.com"

# --- in the program ---------------------------------------------------------------------------


def test_boot_check_runs_before_migrate_and_every_app_service_waits_for_migrate(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    found = jobs(rendering)
    # Migrate is the last job: nothing after it boots the new backend a second time.
    assert list(found)[-2:] == ["boot-check", "migrate"]
    assert "jobs-boot-check" in depends_on(rendering, found["migrate"])
    for service in rendering.children_of("brandclub:swarm:AppLayer"):
        if service.type == "docker:index/service:Service":
            assert "jobs-migrate" in depends_on(rendering, service), service.name


def test_boot_check_starts_a_short_worker(rendered: dict[str, Rendering]) -> None:
    boot = jobs(rendered["prod"])["boot-check"]
    assert env_of(boot) == {
        "SITE_NAME": SITE,
        "PREFLIGHT_WORKER_QUEUES": "short",
        # short's 300 s job timeout + 60 s, from the table the workers' grace periods use.
        "PREFLIGHT_WORKER_GRACE": "360",
    }
    environment = boot.inputs["environment"]
    assert environment["JOB_NETWORKS"].split() == [
        "brandclub-prod-network",
        "brandclub-prod-mariadb",
    ]
    # The same health-check text the services run, inlined.
    assert HEALTH_LIBRARY.read_text().rstrip("\n") in environment["JOB_SCRIPT"]
    assert environment["JOB_SCRIPT"] == job_script("preflight.sh")


def test_every_new_image_is_checked(rendered: dict[str, Rendering]) -> None:
    assert jobs(rendered["prod"])["boot-check"].options["ignoreChanges"] == []


# --- the script -------------------------------------------------------------------------------

# Each stand-in process records its start, runs until SIGTERM, then records its stop. It idles
# in bash's own `read` on a pipe nobody writes to: a trapped signal interrupts it at once, and
# no `sleep` process is started every few milliseconds while the preflight polls.
_RUNS_UNTIL_TERM = """
trap 'echo "{name}" >> "$FAKE_STOPPED"; {on_stop} exit 0' TERM
{on_start}
exec 3<> <(:)
while :; do read -r -t 60 -u 3 || :; done
"""
FAKE_NODE = _RUNS_UNTIL_TERM.format(name="websocket", on_stop="", on_start="")
REDIS_CACHE = "redis://redis-cache:6379"


def _forget_site_user(root: Path) -> None:
    """The site's database refuses its user (a password changed under it), as a release that
    cannot reach its database meets it."""
    with database_server(root / "db.json") as state:
        state["users"].clear()


@pytest.fixture
def preflight(tmp_path: Path) -> tuple[FakeBin, Path]:
    """The stand-ins the preflight starts, and a bench with the stand-in Frappe (fake_health):
    its ``bench`` lists the site's apps from the stand-in MariaDB and runs ``bench worker``,
    which registers in the stand-in Redis through the stand-in RQ."""
    fakes = FakeBin(tmp_path)
    fakes.add("curl", FAKE_CURL)
    fakes.add("node", FAKE_NODE)
    add_frappe(fakes)
    bench = fake_health_bench(tmp_path, SITE)
    new_database_server(
        tmp_path / "db.json",
        "db-root-password",
        users={f"{SITE_DB}@%": SITE_DB_PASSWORD},
        databases={SITE_DB: {"apps": ["frappe", "erpnext"]}},
    )
    common = bench / "sites" / "common_site_config.json"
    common.write_text(json.dumps({**json.loads(common.read_text()), "redis_cache": REDIS_CACHE}))
    return fakes, bench


def run_preflight(
    preflight: tuple[FakeBin, Path], **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fakes, bench = preflight
    root = bench.parent
    result = run_script(
        "preflight.sh",
        fakes.env(
            SITE_NAME=SITE,
            BENCH_DIR=str(bench),
            STANDIN_DB=str(root / "db.json"),
            **redis_env(root),
            FAKE_STOPPED=str(root / "stopped"),
            PREFLIGHT_TIMEOUT="1",
            PREFLIGHT_INTERVAL="0.2",
            **env,
        ),
        timeout=60,
    )
    stopped_file = root / "stopped"
    stopped = stopped_file.read_text().split() if stopped_file.exists() else []
    return result, stopped


def _workers(root: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The queue Redis after the run: the registered workers' keys, and every worker hash (a
    dead worker's stays 60 s, with its ``death``)."""
    data = json.loads((root / "redis.json").read_text())
    return data["rq:workers"], [
        value for key, value in data.items() if key.startswith("rq:worker:")
    ]


def _worker_name(root: Path) -> str:
    data = json.loads((root / "redis.json").read_text())
    [key] = [key for key in data if key.startswith("rq:worker:")]
    return key.removeprefix("rq:worker:")


@pytest.mark.waits
def test_a_release_that_boots_passes_and_stops_what_it_started(
    preflight: tuple[FakeBin, Path],
) -> None:
    result, stopped = run_preflight(preflight)
    assert result.returncode == 0, result.stdout + result.stderr
    fakes, bench = preflight
    started = [call for call in fakes.calls() if call[0] != "curl"]
    assert sorted(map(tuple, started)) == sorted(
        [
            ("bench", "--site", SITE, "list-apps"),
            ("bench", "worker", "--queue", "short"),
            ("node", "apps/frappe/socketio.js"),
        ]
    )
    assert stopped == ["websocket"]
    assert "apps import: erpnext frappe" in result.stdout
    assert f"database of {SITE} answers" in result.stdout
    assert "redis_cache and redis_queue answer" in result.stdout
    for name in ("worker", "websocket"):
        assert f"{name} healthy" in result.stdout
    log = (bench.parent / "redis-log").read_text().splitlines()
    pinged = [json.loads(line)["url"] for line in log]
    assert set(pinged) >= {REDIS_CACHE, "redis://redis-queue:6379"}
    # The worker registered as RQ does for Frappe 15 (a bare uuid name, this host, the queue
    # with the bench id), and on SIGTERM stopped and deregistered, as RQ's does.
    registered, [worker] = _workers(bench.parent)
    assert registered == []
    assert re.fullmatch(r"[0-9a-f]{32}", _worker_name(bench.parent))
    assert worker["hostname"] == socket.gethostname()
    assert worker["queues"].endswith(":short") and "death" in worker
    assert "shutdown_requested_date" not in worker  # idle: it stopped at once


@pytest.mark.waits
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            # erpnext's hooks fail to import, as a broken release's would.
            {"STANDIN_BROKEN": "http500"},
            "the new image's apps do not import (above); every request would fail the same way",
        ),
        (
            {"database": "refuses"},
            f"the new image cannot open {SITE}'s database as the site's user",
        ),
        ({"STANDIN_REDIS_DOWN": "redis://redis-cache:6379"}, "redis_cache: Connection refused"),
        # Workers that run but never register with RQ.
        ({"STANDIN_BROKEN": "worker"}, "worker not healthy after 1s: worker: no worker of"),
        ({"FAKE_STATUS_9000": "000"}, "websocket not healthy after 1s: websocket: no engine.io"),
    ],
)
def test_a_release_that_cannot_start_fails_before_migrate(
    preflight: tuple[FakeBin, Path], env: dict[str, str], message: str
) -> None:
    if env.pop("database", None):
        _forget_site_user(preflight[1].parent)
    result, stopped = run_preflight(preflight, **env)
    assert result.returncode == 1
    assert message in result.stderr
    # Nothing it started outlives it.
    assert set(stopped) <= {"websocket", "worker"}


@pytest.mark.waits
def test_a_worker_that_outlives_its_grace_is_killed(preflight: tuple[FakeBin, Path]) -> None:
    """A worker mid-job when SIGTERM comes finishes the job first (RQ's warm shutdown); one whose
    job outlasts the grace period is killed."""
    result, _ = run_preflight(
        preflight,
        STANDIN_WORKER_JOB_SECONDS="30",
        PREFLIGHT_WORKER_GRACE="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "worker did not stop within 1s, killing it" in result.stdout
    # It took the SIGTERM while busy and kept working: killed, it never deregistered.
    registered, [worker] = _workers(preflight[1].parent)
    assert registered == [f"rq:worker:{_worker_name(preflight[1].parent)}"]
    assert "shutdown_requested_date" in worker and "death" not in worker
