"""migrate.sh: every site held in maintenance around `bench --site all migrate` and the install
of apps added later; released on success, kept held when the migration fails (issue 9 items 8
and 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_commands import (
    FakeBin,
    database_state,
    make_bench,
    new_database_server,
    run_script,
    site_config,
)

SITES: dict[str, dict[str, object]] = {
    "brandclub.com": {"db_name": "_a1", "db_password": "pa"},
    "shop.brandclub.com": {"db_name": "_b2", "pause_scheduler": 1},
    "staff.brandclub.com": {"db_name": "_c3", "maintenance_mode": True},
}


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return make_bench(tmp_path, SITES)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return new_database_server(
        tmp_path / "db.json",
        "root-pw",
        users={"_a1@%": "pa"},
        databases={"_a1": {"apps": ["frappe", "erpnext"], "enable_scheduler": 1}},
    )


def _env(frappe_fakes: FakeBin, bench: Path, db: Path, **extra: str) -> dict[str, str]:
    return frappe_fakes.env(BENCH_DIR=str(bench), FAKE_DB=str(db), **extra)


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
LIST_APPS = ["bench", "--site", "brandclub.com", "list-apps"]


def _modes(bench: Path) -> dict[str, tuple[object, object]]:
    return {
        site: (
            site_config(bench, site).get("maintenance_mode"),
            site_config(bench, site).get("pause_scheduler"),
        )
        for site in SITES
    }


def _records(bench: Path) -> dict[str, dict]:
    held = bench / "sites" / ".brandclub" / "held"
    return {path.stem: json.loads(path.read_text()) for path in sorted(held.glob("*.json"))}


AFTER = {
    "brandclub.com": (0, 0),
    "shop.brandclub.com": (0, 1),
    "staff.brandclub.com": (1, 0),
}
HELD = dict.fromkeys(SITES, (1, 1))


def test_holds_every_site_migrates_and_releases(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [*HOLD, MIGRATE, *RELEASE]
    assert _modes(bench) == AFTER
    assert _records(bench) == {}
    assert "migration finished" in result.stdout
    assert "site brandclub.com: maintenance_mode 1, pause_scheduler 1 (were: 0 0)" in result.stdout
    assert "site brandclub.com: maintenance_mode 0, pause_scheduler 0 (restored)" in result.stdout


def test_apps_added_to_the_configuration_are_installed(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    env = _env(
        frappe_fakes, bench, db, SITE_NAME="brandclub.com", INSTALL_APPS="erpnext hrms brandclub"
    )
    result = run_script("migrate.sh", env)

    assert result.returncode == 0, result.stderr
    install = [
        ["bench", "--site", "brandclub.com", "install-app", app] for app in ("hrms", "brandclub")
    ]
    assert frappe_fakes.calls() == [*HOLD, MIGRATE, LIST_APPS, *install, *RELEASE]
    assert database_state(db)["databases"]["_a1"]["apps"] == [
        "frappe",
        "erpnext",
        "hrms",
        "brandclub",
    ]
    assert "installing hrms on brandclub.com (configured, not installed yet)" in result.stdout


def test_nothing_to_install_when_every_app_is_there(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, bench, db, SITE_NAME="brandclub.com", INSTALL_APPS="erpnext")
    result = run_script("migrate.sh", env)

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [*HOLD, MIGRATE, LIST_APPS, *RELEASE]


def test_a_failed_migration_keeps_every_site_held_and_fails_loudly(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """The database may be partly migrated: lifting maintenance would let the old release
    serve it. The previous modes stay recorded for the next successful run."""
    env = _env(frappe_fakes, bench, db, BENCH_FAIL="all migrate", BENCH_FAIL_STATUS="3")
    result = run_script("migrate.sh", env)

    assert result.returncode == 3
    assert frappe_fakes.calls() == [*HOLD, MIGRATE]
    assert _modes(bench) == HELD
    assert {
        site: (r["maintenance_mode"], r["pause_scheduler"]) for site, r in _records(bench).items()
    } == {
        "brandclub.com": (0, 0),
        "shop.brandclub.com": (0, 1),
        "staff.brandclub.com": (1, 0),
    }
    assert "migration failed with status 3" in result.stderr
    assert (
        "site(s) brandclub.com shop.brandclub.com staff.brandclub.com stay in maintenance mode"
        in result.stderr
    )

    # The next run that succeeds gives the recorded values back, not the held 1/1.
    frappe_fakes.log.write_text("")
    again = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert again.returncode == 0, again.stderr
    assert frappe_fakes.calls() == [*HOLD, MIGRATE, *RELEASE]
    assert _modes(bench) == AFTER
    assert _records(bench) == {}
    assert "(were: 0 1, as recorded by a migrate run of" in again.stdout


def test_a_failed_app_install_keeps_the_sites_held(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    env = _env(
        frappe_fakes,
        bench,
        db,
        SITE_NAME="brandclub.com",
        INSTALL_APPS="erpnext hrms",
        BENCH_FAIL="install-app hrms",
    )
    result = run_script("migrate.sh", env)

    assert result.returncode == 1
    assert "bench --site brandclub.com install-app hrms failed" in result.stderr
    assert _modes(bench) == HELD


def test_a_killed_run_cannot_overwrite_the_operators_choice(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """A run killed (SIGKILL: no trap runs) while holding the sites left them at 1/1 and left
    its records; the next run must not take 1/1 for the operator's choice."""
    held = bench / "sites" / ".brandclub" / "held"
    held.mkdir(parents=True)
    for site, (maintenance, scheduler) in AFTER.items():
        record = {"maintenance_mode": maintenance, "pause_scheduler": scheduler}
        record |= {"heldBy": "migrate", "since": "2026-11-20T02:00:00Z"}
        (held / f"{site}.json").write_text(json.dumps(record))
        config = bench / "sites" / site / "site_config.json"
        config.write_text(
            json.dumps({"db_name": "_x", "maintenance_mode": 1, "pause_scheduler": 1})
        )

    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 0, result.stderr
    assert _modes(bench) == AFTER
    assert _records(bench) == {}


def test_a_site_that_cannot_be_held_releases_the_others_and_skips_migrate(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """Nothing changed the database yet: the sites go back to their values at once."""
    env = _env(
        frappe_fakes, bench, db, BENCH_FAIL="shop.brandclub.com set-config -p maintenance_mode 1"
    )
    result = run_script("migrate.sh", env)

    assert result.returncode == 1
    assert frappe_fakes.calls() == [*HOLD[:3], *RELEASE[:4]]
    assert MIGRATE not in frappe_fakes.calls()
    assert _records(bench) == {}


def test_a_site_left_in_maintenance_fails_the_job(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, bench, db, BENCH_FAIL="brandclub.com set-config -p pause_scheduler 0")
    result = run_script("migrate.sh", env)

    assert result.returncode == 1
    assert "could not restore maintenance_mode/pause_scheduler of brandclub.com" in result.stderr
    # the other sites are still released; the failed one keeps its record for the next run
    assert frappe_fakes.calls()[-4:] == RELEASE[2:]
    assert list(_records(bench)) == ["brandclub.com"]


def test_a_bench_without_sites_has_nothing_to_migrate(
    frappe_fakes: FakeBin, tmp_path: Path, db: Path
) -> None:
    bench = make_bench(tmp_path / "empty", {})
    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 0, result.stderr
    assert "no sites on this bench" in result.stdout
    assert frappe_fakes.calls() == []
