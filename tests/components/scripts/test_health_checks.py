"""The health-check library (components/scripts/lib/health-checks.sh) run for real, with a
stand-in curl and the stand-in Redis client (tests/stand_ins/redis): what each check accepts and
refuses (issue 9 item 12).
The services run these functions as their Docker health checks and the boot-check job
(preflight.sh) runs them against a new image, so these tests cover both."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from components.frappe.health_checks import HEALTH_LIBRARY, health_test
from components.swarm.configs import HEALTH_CHECKS
from fake_commands import FakeBin
from fake_health import FAKE_CURL, fake_health_bench, redis_env

SITE = "brandclub.com"


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return fake_health_bench(tmp_path, SITE)


def run_check(
    fakes: FakeBin, bench: Path, check: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the check exactly as a service's Docker health check does (the exec form)."""
    test = health_test(check, *args)  # type: ignore[arg-type]
    assert test[:3] == ("CMD", "bash", HEALTH_CHECKS.target)
    # The library a service mounts at HEALTH_CHECKS.target is this repository file.
    return subprocess.run(
        ["bash", str(HEALTH_LIBRARY), *test[3:]],
        env=fakes.env(
            BENCH_DIR=str(bench),
            **redis_env(bench.parent),
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.fixture
def curl(fakes: FakeBin) -> FakeBin:
    fakes.add("curl", FAKE_CURL)
    return fakes


def _site_config(bench: Path, **values: object) -> None:
    path = bench / "sites" / SITE / "site_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def _common_config(bench: Path, **values: object) -> None:
    path = bench / "sites" / "common_site_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


# --- backend ----------------------------------------------------------------------------------


def test_backend_asks_frappe_for_the_site(curl: FakeBin, bench: Path) -> None:
    result = run_check(curl, bench, "backend_healthy", SITE)
    assert result.returncode == 0, result.stdout + result.stderr
    [call] = curl.calls("curl")
    assert "http://127.0.0.1:8000/api/method/ping" in call
    assert call[call.index("--header") + 1] == f"Host: {SITE}"


@pytest.mark.parametrize("status", ["500", "502", "404", "000"])
def test_backend_that_does_not_answer_pong_is_unhealthy(
    curl: FakeBin, bench: Path, status: str
) -> None:
    result = run_check(curl, bench, "backend_healthy", SITE, FAKE_CURL_STATUS=status)
    assert result.returncode == 1
    assert "backend:" in result.stdout


def test_503_is_healthy_only_while_the_site_is_in_maintenance(curl: FakeBin, bench: Path) -> None:
    """A migration holds the site in maintenance (every request 503); the running backends must
    not be killed and rolled back for it. Any other 503 is a failure."""
    assert run_check(curl, bench, "backend_healthy", SITE, FAKE_CURL_STATUS="503").returncode == 1
    _site_config(bench, maintenance_mode=1)
    result = run_check(curl, bench, "backend_healthy", SITE, FAKE_CURL_STATUS="503")
    assert result.returncode == 0, result.stdout + result.stderr


def test_maintenance_is_read_as_frappe_merges_it(curl: FakeBin, bench: Path) -> None:
    """The bench-wide value counts unless the site sets its own, as in Frappe's config."""
    _common_config(bench, maintenance_mode=1)
    assert run_check(curl, bench, "backend_healthy", SITE, FAKE_CURL_STATUS="503").returncode == 0
    _site_config(bench, maintenance_mode=0)
    assert run_check(curl, bench, "backend_healthy", SITE, FAKE_CURL_STATUS="503").returncode == 1


# --- frontend and websocket -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "url"),
    [
        ("frontend_healthy", "http://127.0.0.1:8080/.brandclub/nginx-health"),
        ("websocket_healthy", "http://127.0.0.1:9000/socket.io/?EIO=4&transport=polling"),
    ],
)
def test_frontend_and_websocket_checks(curl: FakeBin, bench: Path, check: str, url: str) -> None:
    assert run_check(curl, bench, check).returncode == 0
    assert url in curl.calls("curl")[0]
    for status in ("403", "502", "000"):
        result = run_check(curl, bench, check, FAKE_CURL_STATUS=status)
        assert result.returncode != 0, status
        assert check.split("_")[0] in result.stdout


# --- workers ----------------------------------------------------------------------------------


def _workers(bench: Path, workers: dict[str, tuple[str, str]]) -> None:
    """Registered workers: name -> RQ's `hostname` and `queues` fields (rq/worker.py,
    register_birth)."""
    data: dict[str, object] = {"rq:workers": [f"rq:worker:{name}" for name in workers]}
    data.update(
        {
            f"rq:worker:{name}": {"hostname": hostname, "queues": queues}
            for name, (hostname, queues) in workers.items()
        }
    )
    (bench.parent / "redis.json").write_text(json.dumps(data))


def _worker_check(fakes: FakeBin, bench: Path, queues: str) -> subprocess.CompletedProcess[str]:
    return run_check(fakes, bench, "worker_registered", queues)


HOST = socket.gethostname()
# Frappe v15's start_worker gives RQ no name, so RQ names the worker uuid4().hex: the name
# holds no hostname (as the real Frappe 15.50.0 image registers).
UUID_NAME = "ae0569d50883476281b1b8dae2baa8df"


def test_worker_registered_for_its_queues_with_frappes_prefix(fakes: FakeBin, bench: Path) -> None:
    # Queues prefixed with the bench id; the host is the hash's `hostname` field.
    _workers(bench, {UUID_NAME: (HOST, "bench-1:long,bench-1:default,bench-1:short")})
    result = _worker_check(fakes, bench, "long,default,short")
    assert result.returncode == 0, result.stdout + result.stderr
    [connection] = [
        json.loads(line) for line in (bench.parent / "redis-log").read_text().splitlines()
    ]
    assert connection["url"] == "redis://redis-queue:6379"  # the bench's redis_queue


def test_worker_of_another_container_does_not_count(fakes: FakeBin, bench: Path) -> None:
    # Another container's worker, even one whose name happens to hold this host's name.
    _workers(
        bench,
        {
            UUID_NAME: ("othertask123", "bench-1:default"),
            f"0f3a.{HOST}.7.bench-1:default": ("othertask456", "bench-1:default"),
        },
    )
    result = _worker_check(fakes, bench, "default")
    assert result.returncode == 1
    assert f"no worker of {HOST}" in result.stdout


def test_worker_missing_one_of_its_queues_is_unhealthy(fakes: FakeBin, bench: Path) -> None:
    _workers(bench, {UUID_NAME: (HOST, "bench-1:long,bench-1:default")})
    assert _worker_check(fakes, bench, "long,default,short").returncode == 1
    assert _worker_check(fakes, bench, "long,default").returncode == 0


def test_no_worker_registered_is_unhealthy(fakes: FakeBin, bench: Path) -> None:
    _workers(bench, {})
    assert _worker_check(fakes, bench, "default").returncode == 1


def test_the_library_is_the_services_check_text() -> None:
    """One text: the service health test runs a function of the library the boot-check job
    sources."""
    library = HEALTH_LIBRARY.read_text()
    for check in ("backend_healthy", "frontend_healthy", "websocket_healthy", "worker_registered"):
        assert f"\n{check}() {{" in library
        assert health_test(check)[2:4] == (HEALTH_CHECKS.target, check)  # type: ignore[arg-type]


def test_run_as_a_file_only_a_check_can_be_named(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(HEALTH_LIBRARY), "touch", str(tmp_path / "ran")],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert "unknown check 'touch'" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_sourcing_the_library_runs_nothing(tmp_path: Path) -> None:
    """The boot-check job (and a checkout) sources the file with its own arguments."""
    script = f'source "{HEALTH_LIBRARY}"; echo sourced'
    result = subprocess.run(
        ["bash", "-c", script, "preflight", "backend_healthy", "x"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert (result.returncode, result.stdout) == (0, "sourced\n")
