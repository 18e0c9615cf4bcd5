"""The prod backup loop, run for real with a stand-in `bench` on PATH and a temp backup root."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from components.frappe_processes import BACKUP_SCRIPT

SCRIPT = Path(__file__).resolve().parents[1] / "components" / "scripts" / "backup-loop.sh"

FAKE_BENCH = """#!/usr/bin/env bash
# Records its arguments; fails for the site named in FAIL_SITE.
echo "$*" >> "$BENCH_CALLS"
[[ $2 == "${FAIL_SITE:-}" ]] && exit 1
path=${@: -1}
echo backup > "$path/database.sql.gz"
"""


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _next_run_in(now: str, time: str) -> int:
    result = subprocess.run(
        ["bash", str(SCRIPT), "next-run-in", str(_epoch(now))],
        env={**os.environ, "BACKUP_TIME": time},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return int(result.stdout)


@pytest.mark.parametrize(
    ("now", "time", "seconds"),
    [
        ("2026-11-26T01:59:59", "02:00", 1),
        ("2026-11-26T02:00:00", "02:00", 86400),  # just ran: next is tomorrow, never zero
        ("2026-11-26T02:00:01", "02:00", 86399),
        ("2026-11-26T23:59:59", "00:00", 1),  # across midnight
        ("2026-12-31T23:30:00", "00:15", 45 * 60),  # across a year
        ("2026-03-29T00:30:00", "02:00", 90 * 60),  # a European DST night: UTC has none
        ("2026-11-26T10:00:00", "09:05", 23 * 3600 + 5 * 60),
    ],
)
def test_time_to_next_run(now: str, time: str, seconds: int) -> None:
    assert _next_run_in(now, time) == seconds


@pytest.fixture
def bench_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bench = bin_dir / "bench"
    bench.write_text(FAKE_BENCH)
    bench.chmod(0o755)
    bench_dir = tmp_path / "frappe-bench"
    for site in ("brandclub.com", "shop.brandclub.com"):
        (bench_dir / "sites" / site).mkdir(parents=True)
        (bench_dir / "sites" / site / "site_config.json").write_text("{}")
    (bench_dir / "sites" / "assets").mkdir()  # not a site: no site_config.json
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "BENCH_DIR": str(bench_dir),
        "BACKUP_ROOT": str(tmp_path / "backups"),
        "BACKUP_RETENTION_DAYS": "7",
        "BENCH_CALLS": str(tmp_path / "calls"),
        "BACKUP_ONCE": "1",
    }


def _run_once(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )


def test_backs_up_every_site_into_a_dated_directory(bench_env: dict[str, str]) -> None:
    result = _run_once(bench_env)
    assert result.returncode == 0, result.stderr
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    root = Path(bench_env["BACKUP_ROOT"])
    for site in ("brandclub.com", "shop.brandclub.com"):
        assert (root / site / today / "database.sql.gz").is_file()
        assert f"ok site={site}" in result.stdout
    calls = Path(bench_env["BENCH_CALLS"]).read_text().splitlines()
    assert sorted(calls) == sorted(
        f"--site {site} backup --with-files --backup-path {root / site / today}"
        for site in ("brandclub.com", "shop.brandclub.com")
    )


def test_prunes_dated_directories_past_retention(bench_env: dict[str, str]) -> None:
    site_root = Path(bench_env["BACKUP_ROOT"]) / "brandclub.com"
    today = datetime.now(UTC).date()
    kept = [today - timedelta(days=n) for n in (1, 6, 7)]
    pruned = [today - timedelta(days=n) for n in (8, 30)]
    for day in kept + pruned:
        (site_root / day.isoformat()).mkdir(parents=True)
    (site_root / "notes").mkdir()  # not a dated directory: never touched

    result = _run_once(bench_env)
    assert result.returncode == 0, result.stderr
    for day in kept:
        assert (site_root / day.isoformat()).is_dir(), day
    for day in pruned:
        assert not (site_root / day.isoformat()).exists(), day
        assert f"pruned {site_root / day.isoformat()}" in result.stdout
    assert (site_root / "notes").is_dir()


def test_a_failing_site_is_logged_and_fails_the_run(bench_env: dict[str, str]) -> None:
    result = _run_once({**bench_env, "FAIL_SITE": "shop.brandclub.com"})
    assert result.returncode == 1
    assert "FAILED site=shop.brandclub.com" in result.stdout
    assert "ok site=brandclub.com" in result.stdout


def test_the_service_runs_this_script() -> None:
    assert SCRIPT.read_text() == BACKUP_SCRIPT
