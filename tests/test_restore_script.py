"""restore.sh: one site from the newest backup set of a day, with a stand-in `bench`."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_commands import FakeBin, make_bench, run_script, site_config

SITE = "brandclub.com"
ROOT_PASSWORD = "root-Pa55-word"
DAY = "2026-02-20"
NEWEST = "20260220_020000-brandclub_com"
OLDER = "20260220_010000-brandclub_com"
PARTS = ("database.sql.gz", "files.tar", "private-files.tar", "site_config_backup.json")


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    root = tmp_path / "backups"
    for day, sets in ((DAY, (OLDER, NEWEST)), ("2026-02-19", ("20260219_020000-brandclub_com",))):
        folder = root / SITE / day
        folder.mkdir(parents=True)
        for backup_set in sets:
            for part in PARTS:
                (folder / f"{backup_set}-{part}").write_text(part)
    # Other sites' sets in the same place, newer, must never be picked.
    for other in ("shop_brandclub_com", "my-brandclub_com"):
        (root / SITE / DAY / f"20260220_030000-{other}-database.sql.gz").write_text("x")
    return root


def _env(fakes: FakeBin, tmp_path: Path, backups: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "db-root").write_text(ROOT_PASSWORD + "\n")
    bench = make_bench(tmp_path, {SITE: {"db_name": "_a1", "pause_scheduler": 1}})
    defaults = dict(
        BENCH_DIR=str(bench),
        SITE_NAME=SITE,
        BACKUP_DATE=DAY,
        BACKUP_ROOT=str(backups),
        DB_ROOT_PASSWORD_FILE=str(tmp_path / "db-root"),
    )
    return fakes.env(**{**defaults, **extra})


def _set(key: str, value: int) -> list[str]:
    return ["bench", "--site", SITE, "set-config", "-p", key, str(value)]


HOLD = [_set("maintenance_mode", 1), _set("pause_scheduler", 1)]
RELEASE = [_set("maintenance_mode", 0), _set("pause_scheduler", 1)]
MIGRATE = ["bench", "--site", SITE, "migrate"]


def _restore(folder: Path, *files: str) -> list[str]:
    return [
        "bench",
        "--site",
        SITE,
        "restore",
        str(folder / f"{NEWEST}-database.sql.gz"),
        *files,
        "--db-root-username",
        "root",
        "--db-root-password",
        ROOT_PASSWORD,
        "--force",
    ]


def test_restores_the_newest_set_of_the_day_then_migrates(
    fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    env = _env(fakes, tmp_path, backups)
    result = run_script("restore.sh", env)

    assert result.returncode == 0, result.stderr
    folder = backups / SITE / DAY
    restore = _restore(
        folder,
        "--with-public-files",
        str(folder / f"{NEWEST}-files.tar"),
        "--with-private-files",
        str(folder / f"{NEWEST}-private-files.tar"),
    )
    assert fakes.calls() == [*HOLD, restore, MIGRATE, *RELEASE]
    config = site_config(Path(env["BENCH_DIR"]), SITE)
    assert (config["maintenance_mode"], config["pause_scheduler"]) == (0, 1)
    assert ROOT_PASSWORD not in result.stdout + result.stderr


def test_file_archives_are_optional(fakes: FakeBin, tmp_path: Path, backups: Path) -> None:
    folder = backups / SITE / DAY
    (folder / f"{NEWEST}-files.tar").unlink()
    (folder / f"{NEWEST}-private-files.tar").unlink()
    result = run_script("restore.sh", _env(fakes, tmp_path, backups))

    assert result.returncode == 0, result.stderr
    # the older set's archives belong to another backup: never mixed in
    assert fakes.calls()[2] == _restore(folder)


def test_a_missing_day_lists_the_days_there_are(
    fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    result = run_script("restore.sh", _env(fakes, tmp_path, backups, BACKUP_DATE="2026-02-21"))

    assert result.returncode == 1
    assert "no backups of brandclub.com for 2026-02-21" in result.stderr
    assert "dates available: 2026-02-19 2026-02-20" in result.stderr
    assert fakes.calls() == []


def test_a_day_without_a_database_backup_fails(
    fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    for dump in (backups / SITE / DAY).glob("????????_??????-brandclub_com-database.sql.gz"):
        dump.unlink()
    result = run_script("restore.sh", _env(fakes, tmp_path, backups))

    assert result.returncode == 1
    assert "no database backup <YYYYMMDD_HHMMSS>-brandclub_com-database.sql.gz" in result.stderr
    assert "dates available: 2026-02-19 2026-02-20" in result.stderr
    assert fakes.calls() == []


@pytest.mark.parametrize(
    ("failing", "calls_after_hold"),
    [("restore", 1), ("migrate", 2)],
)
def test_a_failure_keeps_the_site_in_maintenance(
    fakes: FakeBin, tmp_path: Path, backups: Path, failing: str, calls_after_hold: int
) -> None:
    """A partly restored database must not be served: the site stays held, its previous
    modes recorded for the next successful run (issue 9 item 16)."""
    env = _env(fakes, tmp_path, backups, BENCH_FAIL=f"{SITE} {failing}")
    result = run_script("restore.sh", env)

    assert result.returncode == 1
    calls = fakes.calls()
    assert calls[:2] == HOLD
    assert [call[3] for call in calls[2:]] == ["restore", "migrate"][:calls_after_hold]
    assert f"bench {failing} of brandclub.com failed" in result.stderr
    assert f"site(s) {SITE} stay in maintenance mode" in result.stderr
    config = site_config(Path(env["BENCH_DIR"]), SITE)
    assert (config["maintenance_mode"], config["pause_scheduler"]) == (1, 1)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"BACKUP_DATE": "20.02.2026"}, "BACKUP_DATE must be YYYY-MM-DD, got '20.02.2026'"),
        ({"SITE_NAME": "shop.brandclub.com"}, "site shop.brandclub.com does not exist"),
        ({"DB_ROOT_PASSWORD_FILE": "/nonexistent"}, "cannot read secret file /nonexistent"),
        ({"BACKUP_DATE": ""}, "missing required environment variable(s): BACKUP_DATE"),
    ],
)
def test_bad_input_fails_before_touching_the_site(
    fakes: FakeBin, tmp_path: Path, backups: Path, extra: dict[str, str], message: str
) -> None:
    result = run_script("restore.sh", _env(fakes, tmp_path, backups, **extra))

    assert result.returncode == 1
    assert message in result.stderr
    assert fakes.calls() == []
