"""migrate.sh: every finished site held in maintenance around its own `bench --site <site>
migrate` and the install of apps added later; released on success, kept held when a migration
fails (issue 9 items 8 and 16). A half-made site (create-site's marker "creating") is skipped,
loudly, and not held (issue 19 item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_commands import (
    BENCH_CLI,
    FakeBin,
    database_state,
    make_bench,
    new_database_server,
    run_script,
    site_config,
)

SITES: dict[str, dict[str, object]] = {
    "brandclub.com": {"db_name": "_a1", "db_password": "pa"},
    "shop.brandclub.com": {"db_name": "_b2", "db_password": "pb", "pause_scheduler": 1},
    "staff.brandclub.com": {"db_name": "_c3", "db_password": "pc", "maintenance_mode": True},
}
# What Frappe leaves of a site whose new-site failed at the database user: its site_config.json
# only. Sorted between the healthy sites, so `--site all` would reach it before the last ones.
HALF_MADE = "half.brandclub.com"
HALF_MADE_CONFIG = {"db_name": "_d4", "db_password": "pd", "db_type": "mariadb"}
STARTED_AT = "2026-12-01T03:04:05Z"


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return make_bench(tmp_path, SITES)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return new_database_server(
        tmp_path / "db.json",
        "root-pw",
        users={"_a1@%": "pa", "_b2@%": "pb", "_c3@%": "pc"},
        databases={
            "_a1": {"apps": ["frappe", "erpnext"], "enable_scheduler": 1},
            "_b2": {"apps": ["frappe"], "enable_scheduler": 1},
            "_c3": {"apps": ["frappe"], "enable_scheduler": 1},
        },
    )


def _env(frappe_fakes: FakeBin, bench: Path, db: Path, **extra: str) -> dict[str, str]:
    return frappe_fakes.env(BENCH_DIR=str(bench), STANDIN_DB=str(db), **extra)


# The modes are written into each site's config by the job itself (lib/site-modes.sh), not
# through bench: the only bench calls are the migrations and the app installs.


def _sites(fakes: FakeBin, command: str) -> list[str]:
    """The sites ``bench --site <site> <command>`` ran for, in the order it ran."""
    return [call[2] for call in fakes.calls("bench") if call[1] == "--site" and call[3] == command]


def _installed(fakes: FakeBin, site: str) -> list[str]:
    """The apps ``bench --site <site> install-app`` installed, in order."""
    return [
        call[4] for call in fakes.calls("bench") if call[1:4] == ["--site", site, "install-app"]
    ]


def _migrated_every_site_once(fakes: FakeBin) -> bool:
    # Each site once; the order among them is not the job's promise.
    return sorted(_sites(fakes, "migrate")) == sorted(SITES)


def _modes(bench: Path, *sites: str) -> dict[str, tuple[object, object]]:
    """(maintenance_mode, pause_scheduler) of ``sites`` (all of SITES by default)."""
    return {
        site: (
            site_config(bench, site).get("maintenance_mode"),
            site_config(bench, site).get("pause_scheduler"),
        )
        for site in sites or SITES
    }


def _records(bench: Path) -> dict[str, dict]:
    held = bench / "sites" / ".brandclub" / "held"
    return {path.stem: json.loads(path.read_text()) for path in sorted(held.glob("*.json"))}


def _migrations(db: Path) -> dict[str, int]:
    """How often each database was migrated (the stand-in counts them)."""
    return {
        name: database.get("migrations", 0)
        for name, database in database_state(db)["databases"].items()
    }


def _add_half_made_site(bench: Path, site: str = HALF_MADE, **marker: str) -> None:
    """A site create-site started and did not finish: Frappe's site_config.json, no database
    user or database, and the marker "creating"."""
    (bench / "sites" / site).mkdir()
    (bench / "sites" / site / "site_config.json").write_text(json.dumps(HALF_MADE_CONFIG))
    _mark(bench, site, state="creating", startedAt=STARTED_AT, **marker)


def _mark(bench: Path, site: str, **marker: str) -> None:
    markers = bench / "sites" / ".brandclub" / "sites"
    markers.mkdir(parents=True, exist_ok=True)
    (markers / f"{site}.json").write_text(json.dumps({"site": site, **marker}))


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
    assert _migrated_every_site_once(frappe_fakes)
    assert _modes(bench) == AFTER
    assert _records(bench) == {}
    assert _migrations(db) == {"_a1": 1, "_b2": 1, "_c3": 1}
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
    # Only the configured apps the site lacks, once every site is migrated.
    assert _installed(frappe_fakes, "brandclub.com") == ["hrms", "brandclub"]
    calls = frappe_fakes.calls("bench")
    first_install = next(i for i, call in enumerate(calls) if call[3] == "install-app")
    assert _migrated_every_site_once(frappe_fakes)
    assert all(call[3] != "migrate" for call in calls[first_install:])
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
    assert _migrated_every_site_once(frappe_fakes)
    assert _installed(frappe_fakes, "brandclub.com") == []


def test_a_failed_migration_keeps_every_site_held_and_fails_loudly(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """The database may be partly migrated: lifting maintenance would let the old release
    serve it. The job stops at the failed site; the previous modes stay recorded for the next
    successful run."""
    env = _env(
        frappe_fakes, bench, db, STANDIN_FAIL="shop.brandclub.com migrate", STANDIN_FAIL_STATUS="3"
    )
    result = run_script("migrate.sh", env)

    assert result.returncode == 3
    # It stops at the failed site: no site after it is migrated.
    assert _sites(frappe_fakes, "migrate")[-1] == "shop.brandclub.com"
    assert "staff.brandclub.com" not in _sites(frappe_fakes, "migrate")
    assert _modes(bench) == HELD
    assert {
        site: (r["maintenance_mode"], r["pause_scheduler"]) for site, r in _records(bench).items()
    } == {
        "brandclub.com": (0, 0),
        "shop.brandclub.com": (0, 1),
        "staff.brandclub.com": (1, 0),
    }
    assert "migration failed with status 3 on site shop.brandclub.com" in result.stderr
    assert (
        "site(s) brandclub.com shop.brandclub.com staff.brandclub.com stay in maintenance mode"
        in result.stderr
    )

    # The next run that succeeds gives the recorded values back, not the held 1/1.
    frappe_fakes.log.write_text("")
    again = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert again.returncode == 0, again.stderr
    assert _migrated_every_site_once(frappe_fakes)
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
        STANDIN_FAIL="install-app hrms",
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
        config.write_text(json.dumps({**SITES[site], "maintenance_mode": 1, "pause_scheduler": 1}))

    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 0, result.stderr
    assert _modes(bench) == AFTER
    assert _records(bench) == {}


def test_a_site_that_cannot_be_held_releases_the_others_and_skips_migrate(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """Nothing changed the database yet: the sites held before go back to their values at once.
    (Here the second site's config cannot be read.)"""
    (bench / "sites" / "shop.brandclub.com" / "site_config.json").write_text("{")
    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 1
    assert frappe_fakes.calls() == []
    assert _modes(bench, "brandclub.com") == {"brandclub.com": (0, 0)}
    assert _records(bench) == {}


def test_a_site_left_in_maintenance_fails_the_job(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """Here brandclub.com's record is unreadable by the time the job gives the modes back."""
    record = bench / "sites" / ".brandclub" / "held" / "brandclub.com.json"
    corrupt = f"""[[ "$*" != "--site brandclub.com migrate" ]] || printf '{{' > '{record}'"""
    frappe_fakes.add("bench", f"{corrupt}\n{BENCH_CLI}", record=False)
    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 1
    assert "could not restore maintenance_mode/pause_scheduler of brandclub.com" in result.stderr
    # the other sites are still released; the failed one keeps its record for the next run
    assert _modes(bench) == {**AFTER, "brandclub.com": (1, 1)}
    assert sorted(path.name for path in record.parent.iterdir()) == ["brandclub.com.json"]


def test_a_bench_without_sites_has_nothing_to_migrate(
    frappe_fakes: FakeBin, tmp_path: Path, db: Path
) -> None:
    bench = make_bench(tmp_path / "empty", {})
    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 0, result.stderr
    assert "no sites on this bench" in result.stdout
    assert frappe_fakes.calls() == []


def test_a_half_made_site_is_skipped_loudly_and_the_others_migrate_and_release(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """Issue 19 item 3: `bench --site all migrate` stopped at the half-made site (no database
    user) and kept every healthy site in maintenance. Now it is skipped and never held, the
    finished sites (marker "created", or none) are migrated one by one, and the job succeeds:
    create-site owns the half-made site."""
    _add_half_made_site(bench)
    _mark(bench, "brandclub.com", state="created")
    env = _env(frappe_fakes, bench, db, SITE_NAME="brandclub.com", INSTALL_APPS="erpnext")
    result = run_script("migrate.sh", env)

    assert result.returncode == 0, result.stderr
    assert _migrated_every_site_once(frappe_fakes)
    assert _installed(frappe_fakes, "brandclub.com") == []
    assert not [call for call in frappe_fakes.calls() if HALF_MADE in call]
    assert _modes(bench) == AFTER
    assert site_config(bench, HALF_MADE) == HALF_MADE_CONFIG
    assert _records(bench) == {}
    assert _migrations(db) == {"_a1": 1, "_b2": 1, "_c3": 1}
    warning = (
        f"WARNING: skipping site {HALF_MADE}: it is half-made (create-site started it at"
        f" {STARTED_AT} and did not finish;"
    )
    assert warning in result.stderr
    assert "the next create-site run cleans it up" in result.stderr
    assert "Runbook: a half-made site" in result.stderr
    assert "3 site(s); 1 half-made site(s) skipped" in result.stdout


def test_a_failing_healthy_site_keeps_the_healthy_sites_held_beside_a_half_made_one(
    frappe_fakes: FakeBin, bench: Path, db: Path
) -> None:
    """Skipping the half-made site changes nothing for the others: a failed migration keeps
    every held site in maintenance and fails the job; the half-made site is still untouched."""
    _add_half_made_site(bench)
    env = _env(frappe_fakes, bench, db, STANDIN_FAIL="staff.brandclub.com migrate")
    result = run_script("migrate.sh", env)

    assert result.returncode == 1
    assert _migrated_every_site_once(frappe_fakes)
    assert _modes(bench) == HELD
    assert list(_records(bench)) == list(SITES)
    assert site_config(bench, HALF_MADE) == HALF_MADE_CONFIG
    assert f"skipping site {HALF_MADE}" in result.stderr
    assert "migration failed with status 1 on site staff.brandclub.com" in result.stderr


def test_only_half_made_sites_leave_nothing_to_migrate(
    frappe_fakes: FakeBin, tmp_path: Path, db: Path
) -> None:
    """Nor is an app installed on a SITE_NAME that is half-made: create-site installs them."""
    bench = make_bench(tmp_path / "half", {})
    _add_half_made_site(bench)
    env = _env(frappe_fakes, bench, db, SITE_NAME=HALF_MADE, INSTALL_APPS="erpnext")
    result = run_script("migrate.sh", env)

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == []
    assert "no finished sites on this bench, nothing to migrate" in result.stdout
    assert f"skipping site {HALF_MADE}" in result.stderr


def test_site_names_are_taken_whole(frappe_fakes: FakeBin, tmp_path: Path, db: Path) -> None:
    """Folder names reach bench and the marker look-up as one word each, never split or
    globbed."""
    odd = "odd name*.test"
    bench = make_bench(tmp_path / "odd", {odd: SITES["brandclub.com"]})
    _add_half_made_site(bench, "half made?.test")
    result = run_script("migrate.sh", _env(frappe_fakes, bench, db))

    assert result.returncode == 0, result.stderr
    assert ["bench", "--site", odd, "migrate"] in frappe_fakes.calls()
    assert not [call for call in frappe_fakes.calls() if "half made?.test" in call]
    assert "skipping site half made?.test" in result.stderr
