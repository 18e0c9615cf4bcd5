"""migrate.sh: every site held in maintenance around `bench --site all migrate`, then released."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_commands import FakeBin, make_bench, run_script, site_config

SITES: dict[str, dict[str, object]] = {
    "brandclub.com": {"db_name": "_a1"},
    "shop.brandclub.com": {"db_name": "_b2", "pause_scheduler": 1},
    "staff.brandclub.com": {"db_name": "_c3", "maintenance_mode": True},
}


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return make_bench(tmp_path, SITES)


def _set(site: str, key: str, value: int) -> list[str]:
    return ["bench", "--site", site, "set-config", "-p", key, str(value)]


HOLD = [
    call
    for site in SITES
    for call in (_set(site, "maintenance_mode", 1), _set(site, "pause_scheduler", 1))
]
RELEASE = [
    _set("brandclub.com", "maintenance_mode", 0),
    _set("brandclub.com", "pause_scheduler", 0),
    _set("shop.brandclub.com", "maintenance_mode", 0),
    _set("shop.brandclub.com", "pause_scheduler", 1),
    _set("staff.brandclub.com", "maintenance_mode", 1),
    _set("staff.brandclub.com", "pause_scheduler", 0),
]
MIGRATE = ["bench", "--site", "all", "migrate"]


def _modes(bench: Path) -> dict[str, tuple[object, object]]:
    return {
        site: (
            site_config(bench, site).get("maintenance_mode"),
            site_config(bench, site).get("pause_scheduler"),
        )
        for site in SITES
    }


AFTER = {
    "brandclub.com": (0, 0),
    "shop.brandclub.com": (0, 1),
    "staff.brandclub.com": (1, 0),
}


def test_holds_every_site_migrates_and_releases(fakes: FakeBin, bench: Path) -> None:
    result = run_script("migrate.sh", fakes.env(BENCH_DIR=str(bench)))

    assert result.returncode == 0, result.stderr
    assert fakes.calls() == [*HOLD, MIGRATE, *RELEASE]
    assert _modes(bench) == AFTER
    assert "migration finished" in result.stdout


def test_a_failed_migration_still_releases_and_keeps_its_status(
    fakes: FakeBin, bench: Path
) -> None:
    env = fakes.env(BENCH_DIR=str(bench), BENCH_FAIL="all migrate", BENCH_FAIL_STATUS="3")
    result = run_script("migrate.sh", env)

    assert result.returncode == 3
    assert fakes.calls() == [*HOLD, MIGRATE, *RELEASE]
    assert _modes(bench) == AFTER
    assert "migration failed with status 3" in result.stderr


def test_a_site_that_cannot_be_held_releases_the_others_and_skips_migrate(
    fakes: FakeBin, bench: Path
) -> None:
    env = fakes.env(
        BENCH_DIR=str(bench), BENCH_FAIL="shop.brandclub.com set-config -p pause_scheduler 1"
    )
    result = run_script("migrate.sh", env)

    assert result.returncode == 1
    assert fakes.calls() == [*HOLD[:4], *RELEASE[:4]]
    assert MIGRATE not in fakes.calls()


def test_a_site_left_in_maintenance_fails_the_job(fakes: FakeBin, bench: Path) -> None:
    env = fakes.env(
        BENCH_DIR=str(bench), BENCH_FAIL="brandclub.com set-config -p pause_scheduler 0"
    )
    result = run_script("migrate.sh", env)

    assert result.returncode == 1
    assert "could not restore maintenance_mode/pause_scheduler of brandclub.com" in result.stderr
    # the other sites are still released
    assert fakes.calls()[-4:] == RELEASE[2:]


def test_a_bench_without_sites_has_nothing_to_migrate(fakes: FakeBin, tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {})
    result = run_script("migrate.sh", fakes.env(BENCH_DIR=str(bench)))

    assert result.returncode == 0, result.stderr
    assert "no sites on this bench" in result.stdout
    assert fakes.calls() == []
