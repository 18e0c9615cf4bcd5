"""The preflight job (issue 9 items 12 and 13): where it runs in a rollout, what it is told, and
the script run for real with stand-in processes, curl and Redis: a release whose backend answers
500, whose worker never registers or whose realtime server never answers fails `pulumi up`
before any service changes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.frappe_jobs import job_script
from components.health_checks import HEALTH_LIBRARY
from fake_commands import FakeBin, run_script
from fake_health import FAKE_CURL, fake_health_bench
from harness import Rendering, depends_on, env_of, jobs

SITE = "brandclub.com"

# --- in the program ---------------------------------------------------------------------------


def test_preflight_runs_after_migrate_and_before_every_app_service(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    found = jobs(rendering)
    assert list(found)[-2:] == ["migrate", "preflight"]
    assert "jobs-migrate" in depends_on(rendering, found["preflight"])
    for service in rendering.children_of("brandclub:swarm:AppLayer"):
        if service.type == "docker:index/service:Service":
            assert "jobs-preflight" in depends_on(rendering, service), service.name


def test_preflight_checks_the_site_with_a_short_worker(rendered: dict[str, Rendering]) -> None:
    preflight = jobs(rendered["prod"])["preflight"]
    assert env_of(preflight) == {
        "SITE_NAME": SITE,
        "PREFLIGHT_WORKER_QUEUES": "short",
        # short's 300 s job timeout + 60 s, from the table the workers' grace periods use.
        "PREFLIGHT_WORKER_GRACE": "360",
    }
    environment = preflight.inputs["environment"]
    assert environment["JOB_NETWORKS"].split() == [
        "brandclub-prod-network",
        "brandclub-prod-mariadb",
    ]
    # The same health-check text the services run, inlined.
    assert HEALTH_LIBRARY.read_text().rstrip("\n") in environment["JOB_SCRIPT"]
    assert environment["JOB_SCRIPT"] == job_script("preflight.sh")


def test_every_new_image_is_preflighted(rendered: dict[str, Rendering]) -> None:
    assert jobs(rendered["prod"])["preflight"].options["ignoreChanges"] == []


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
FAKE_START_SH = _RUNS_UNTIL_TERM.format(
    name="backend",
    on_stop="",
    on_start='echo "Booting Gunicorn"\n'
    'if [[ -n ${FAKE_BACKEND_CRASH:-} ]]; then echo "ImportError: no module" >&2; exit 3; fi',
)
FAKE_NODE = _RUNS_UNTIL_TERM.format(name="websocket", on_stop="", on_start="")
# bench worker registers as RQ does for Frappe v15 (a bare uuid name, the host in the hash's
# `hostname` field, queues with the bench-id prefix) unless
# FAKE_WORKER_REGISTERS=no; FAKE_WORKER_IGNORES_TERM=yes makes it outlive its grace period.
FAKE_BENCH_WORKER = """
register() {
  python3 - "$FAKE_REDIS" "$1" "$$" <<'PY'
import json, socket, sys, uuid
path, queues, pid = sys.argv[1:]
key = f"rq:worker:{uuid.uuid4().hex}"
worker = {"hostname": socket.gethostname(), "pid": pid}
worker["queues"] = ",".join(f"bench-1:{q}" for q in queues.split(","))
data = {"rq:workers": [key], key: worker}
json.dump(data if queues else {"rq:workers": []}, open(path, "w"))
PY
}
[[ $1 == worker && $2 == --queue ]] || exit 2
[[ ${FAKE_WORKER_REGISTERS:-yes} == yes ]] && register "$3"
if [[ ${FAKE_WORKER_IGNORES_TERM:-} == yes ]]; then
  trap 'echo worker-ignored-term >> "$FAKE_STOPPED"' TERM
else
  trap 'echo worker >> "$FAKE_STOPPED"; register ""; exit 0' TERM
fi
exec 3<> <(:)  # idles as the stand-ins above do
while :; do read -r -t 60 -u 3 || :; done
"""


@pytest.fixture
def preflight(tmp_path: Path) -> tuple[FakeBin, Path]:
    fakes = FakeBin(tmp_path)
    fakes.add("curl", FAKE_CURL)
    fakes.add("start.sh", FAKE_START_SH)
    fakes.add("node", FAKE_NODE)
    fakes.add("bench", FAKE_BENCH_WORKER)
    bench = fake_health_bench(tmp_path, SITE)
    (bench.parent / "redis.json").write_text(json.dumps({"rq:workers": []}))
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
            PYTHONPATH=str(root / "fake-modules"),
            FAKE_REDIS=str(root / "redis.json"),
            FAKE_REDIS_LOG=str(root / "redis-log"),
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


@pytest.mark.waits
def test_a_working_release_passes_and_everything_it_started_is_stopped(
    preflight: tuple[FakeBin, Path],
) -> None:
    result, stopped = run_preflight(preflight)
    assert result.returncode == 0, result.stdout + result.stderr
    fakes, bench = preflight
    started = [call for call in fakes.calls() if call[0] != "curl"]
    assert sorted(map(tuple, started)) == sorted(
        [
            ("start.sh",),
            ("bench", "worker", "--queue", "short"),
            ("node", "apps/frappe/socketio.js"),
        ]
    )
    assert sorted(stopped) == ["backend", "websocket", "worker"]
    for name in ("backend", "worker", "websocket"):
        assert f"{name} healthy" in result.stdout
    # The worker deregistered when it stopped, as RQ's does.
    assert json.loads((bench.parent / "redis.json").read_text()) == {"rq:workers": []}


@pytest.mark.waits
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FAKE_STATUS_8000": "500"},
            "backend not healthy after 1s: backend: /api/method/ping answered 500",
        ),
        ({"FAKE_WORKER_REGISTERS": "no"}, "worker not healthy after 1s: worker: no worker of"),
        ({"FAKE_STATUS_9000": "000"}, "websocket not healthy after 1s: websocket: no engine.io"),
    ],
)
def test_a_broken_release_fails_before_any_service_moves(
    preflight: tuple[FakeBin, Path], env: dict[str, str], message: str
) -> None:
    result, stopped = run_preflight(preflight, **env)
    assert result.returncode == 1
    assert message in result.stderr
    # Nothing it started outlives it.
    assert sorted(stopped) == ["backend", "websocket", "worker"]


@pytest.mark.waits
def test_a_backend_that_crashes_shows_its_output(preflight: tuple[FakeBin, Path]) -> None:
    # gunicorn is gone, so nothing answers on its port.
    result, _ = run_preflight(preflight, FAKE_BACKEND_CRASH="yes", FAKE_STATUS_8000="000")
    assert result.returncode == 1
    assert "backend exited before it became healthy" in result.stderr
    assert "[backend] ImportError: no module" in result.stderr


@pytest.mark.waits
def test_a_site_in_maintenance_passes(preflight: tuple[FakeBin, Path]) -> None:
    """An operator's maintenance mode (every request 503) is not a broken release."""
    _, bench = preflight
    config = bench / "sites" / SITE / "site_config.json"
    config.write_text(json.dumps({"maintenance_mode": 1}))
    result, _ = run_preflight(preflight, FAKE_STATUS_8000="503")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.waits
def test_a_worker_that_outlives_its_grace_is_killed(preflight: tuple[FakeBin, Path]) -> None:
    result, stopped = run_preflight(
        preflight, FAKE_WORKER_IGNORES_TERM="yes", PREFLIGHT_WORKER_GRACE="1"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "worker did not stop within 1s, killing it" in result.stdout
    assert "worker-ignored-term" in stopped
