"""configurator.sh: the bench's global config, with a stand-in `bench` and a real bench folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_commands import FAKE_BENCH, FakeBin, make_bench, run_script

REDIS_QUEUE = "redis://:queue-pass@redis-queue:6379"


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    bench = make_bench(tmp_path, {})
    for app in ("frappe", "erpnext", "brandclub"):
        (bench / "apps" / app).mkdir(parents=True)
    return bench


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    fakes = FakeBin(tmp_path)
    fakes.add("bench", FAKE_BENCH)
    return fakes


def _env(fakes: FakeBin, bench: Path, **extra: str) -> dict[str, str]:
    defaults = dict(
        BENCH_DIR=str(bench),
        DB_HOST="mariadb",
        DB_PORT="3306",
        REDIS_CACHE="redis://redis-cache:6379",
        REDIS_QUEUE=REDIS_QUEUE,
        REDIS_SOCKETIO=REDIS_QUEUE,
        SOCKETIO_PORT="9000",
    )
    return fakes.env(**{**defaults, **extra})


EXPECTED = [
    ["bench", "set-config", "-g", "db_host", "mariadb"],
    ["bench", "set-config", "-gp", "db_port", "3306"],
    ["bench", "set-config", "-g", "redis_cache", "redis://redis-cache:6379"],
    ["bench", "set-config", "-g", "redis_queue", REDIS_QUEUE],
    ["bench", "set-config", "-g", "redis_socketio", REDIS_QUEUE],
    ["bench", "set-config", "-gp", "socketio_port", "9000"],
]


def test_lists_the_apps_and_sets_the_global_config(fakes: FakeBin, bench: Path) -> None:
    result = run_script("configurator.sh", _env(fakes, bench))

    assert result.returncode == 0, result.stderr
    assert (bench / "sites" / "apps.txt").read_text() == "brandclub\nerpnext\nfrappe\n"
    assert fakes.calls() == EXPECTED
    assert "queue-pass" not in result.stdout + result.stderr


def test_keeps_bench_backups_as_long_as_asked(fakes: FakeBin, bench: Path) -> None:
    result = run_script("configurator.sh", _env(fakes, bench, KEEP_BACKUPS_FOR_HOURS="192"))

    assert result.returncode == 0, result.stderr
    assert fakes.calls() == [
        *EXPECTED,
        ["bench", "set-config", "-gp", "keep_backups_for_hours", "192"],
    ]


def test_a_missing_variable_fails_before_changing_anything(fakes: FakeBin, bench: Path) -> None:
    env = _env(fakes, bench)
    del env["REDIS_CACHE"]
    env["SOCKETIO_PORT"] = ""
    result = run_script("configurator.sh", env)

    assert result.returncode == 1
    assert ("missing required environment variable(s): REDIS_CACHE SOCKETIO_PORT") in result.stderr
    assert fakes.calls() == []
    assert not (bench / "sites" / "apps.txt").exists()


@pytest.mark.parametrize("variable", ["DB_PORT", "SOCKETIO_PORT", "KEEP_BACKUPS_FOR_HOURS"])
def test_numbers_must_be_numbers(fakes: FakeBin, bench: Path, variable: str) -> None:
    result = run_script("configurator.sh", _env(fakes, bench, **{variable: "7d"}))

    assert result.returncode == 1
    assert f"{variable} must be a whole number, got '7d'" in result.stderr
    assert fakes.calls() == []


def test_stops_at_the_first_failing_setting(fakes: FakeBin, bench: Path) -> None:
    result = run_script("configurator.sh", _env(fakes, bench, BENCH_FAIL="redis_cache"))

    assert result.returncode == 1
    assert fakes.calls() == EXPECTED[:3]
