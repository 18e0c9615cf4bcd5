"""restore_drill.py, the restore drill's Python half: the dump's row counter, the schedule, and
the metrics' healthy and stale logic."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from pathlib import Path

import pytest

from fake_commands import SCRIPTS

_SPEC = importlib.util.spec_from_file_location("restore_drill", SCRIPTS / "restore_drill.py")
assert _SPEC and _SPEC.loader
drill = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(drill)

DAY = 86400


def _counted(dump: str) -> dict[str, int]:
    rows, _ = drill.count_dump_rows(dump.encode().splitlines(keepends=True))
    return rows


def test_the_counter_counts_top_level_tuples_of_every_insert() -> None:
    dump = (
        "CREATE TABLE `tabToDo` (\n  `name` varchar(140) NOT NULL\n);\n"
        "INSERT INTO `tabToDo` VALUES ('a',1),('b',2),('c',3);\n"
        "INSERT INTO `tabToDo` VALUES ('d',4);\n"
        "INSERT INTO `tabUser` (`name`, `enabled`) VALUES ('x',1),('y',0);\n"
    )
    assert _counted(dump) == {"tabToDo": 4, "tabUser": 2}


@pytest.mark.parametrize(
    "values",
    [
        "('a (b), c',1),('))((',2)",  # parentheses and commas in strings
        r"('it\'s',1),('\\',2)",  # backslash-escaped quote, an escaped backslash before the end
        "('it''s',1),('x',2)",  # a doubled quote
        r"('a\');(b',1),(NULL,2)",  # an escaped quote followed by what ends a statement
        "(\"dq ) 'x\",1),('y',2)",  # a double-quoted string holding a single quote
        "('nested (x)',(1),2),('z',3)",  # parentheses outside strings inside a tuple
    ],
)
def test_the_counter_is_not_fooled_by_what_strings_hold(values: str) -> None:
    assert _counted(f"INSERT INTO `tabNote` VALUES {values};\n") == {"tabNote": 2}


def test_a_statement_that_goes_on_past_its_line_is_read_to_its_end() -> None:
    dump = (
        "INSERT INTO `tabNote` VALUES ('a\n b',1),\n('c',2);\nINSERT INTO `tabNote` VALUES (3);\n"
    )
    assert _counted(dump) == {"tabNote": 3}


def test_count_dump_reads_the_gzip_and_tells_a_missing_table_from_an_empty_one(
    tmp_path: Path,
) -> None:
    dump = tmp_path / "x-database.sql.gz"
    dump.write_bytes(
        gzip.compress(
            b"CREATE TABLE `tabUser` (name TEXT);\nCREATE TABLE `tabToDo` (name TEXT);\n"
            b"INSERT INTO `tabUser` VALUES ('Administrator'),('Guest');\n"
        )
    )
    assert drill.count_dump(dump, ["User", "ToDo", "Sales Invoice"]) == {
        "User": 2,
        "ToDo": 0,
        "Sales Invoice": None,
    }


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BACKUP_ROOT", str(tmp_path / "backups"))
    monkeypatch.setenv("DRILL_INTERVAL_DAYS", "7")
    monkeypatch.setenv("DRILL_TIME", "04:00")
    monkeypatch.setenv("DRILL_SITES", "brandclub.com")
    return tmp_path / "state"


def _ran(state: Path, ok: bool, ended: int, site: str = "brandclub.com") -> None:
    folder = state / "sites" / site
    run = {
        "site": site,
        "started": ended - 60,
        "ended": ended,
        "ok": ok,
        "backup": {"path": "/backups/x", "date": "2026-12-01"},
        "checks": [{"name": "login", "ok": ok, "seconds": 1.5, "message": "m"}],
    }
    drill.write_json(folder / "last-run.json", run)
    if ok:
        drill.write_json(folder / "last-success.json", run)


NOW = 1_800_000_000


def _healthy(state: Path, now: int = NOW) -> int:
    text = drill.metrics(now)
    line = next(line for line in text.splitlines() if "restore_drill_healthy{" in line)
    return int(line.rsplit(" ", 1)[1])


def test_a_site_never_drilled_is_unhealthy(state: Path) -> None:
    assert _healthy(state) == 0
    assert "restore_drill_last_run_ok{" not in drill.metrics(NOW)


def test_a_recent_success_is_healthy(state: Path) -> None:
    _ran(state, True, NOW - 7 * DAY)
    assert _healthy(state) == 1


def test_a_success_older_than_the_interval_and_the_slack_is_stale(state: Path) -> None:
    _ran(state, True, NOW - 7 * DAY - drill.HEALTH_SLACK_SECONDS)
    assert _healthy(state) == 1
    _ran(state, True, NOW - 7 * DAY - drill.HEALTH_SLACK_SECONDS - 1)
    assert _healthy(state) == 0


def test_a_failed_last_run_is_unhealthy_even_after_a_recent_success(state: Path) -> None:
    _ran(state, True, NOW - DAY)
    _ran(state, False, NOW - 60)
    assert _healthy(state) == 0
    text = drill.metrics(NOW)
    success = 'brandclub_restore_drill_last_success_timestamp_seconds{site="brandclub.com"}'
    assert f"{success} {NOW - DAY}" in text
    assert 'brandclub_restore_drill_check_ok{site="brandclub.com",check="login"} 0' in text
    assert 'brandclub_restore_drill_check_seconds{site="brandclub.com",check="login"} 1.5' in text


def test_the_newest_backup_age_is_measured_at_scrape_time(state: Path, tmp_path: Path) -> None:
    dump = tmp_path / "backups" / "brandclub.com" / "2026-12-01" / "1-x-database.sql.gz"
    dump.parent.mkdir(parents=True)
    dump.write_bytes(b"")
    os.utime(dump, (NOW - 3600, NOW - 3600))
    assert 'brandclub_backup_newest_age_seconds{site="brandclub.com"} 3600' in drill.metrics(NOW)
    status = drill.status(NOW)
    assert json.dumps(status)
    assert status["sites"][0]["backup_newest_age_seconds"] == 3600


def test_the_first_drill_is_at_the_next_drill_time(state: Path) -> None:
    midnight = NOW - NOW % DAY
    assert drill.seconds_until_next_run(midnight + 3600) == 3 * 3600
    assert drill.seconds_until_next_run(midnight + 5 * 3600) == 23 * 3600


def test_the_next_drill_is_interval_days_after_the_last_one(state: Path) -> None:
    midnight = NOW - NOW % DAY
    state.mkdir(parents=True)
    (state / "last-run").write_text(f"{midnight + 4 * 3600 + 5}\n")
    assert drill.seconds_until_next_run(midnight + 5 * 3600) == 7 * DAY - 3600
    # Overdue (the service was down on the day): at the next drill time.
    assert drill.seconds_until_next_run(midnight + 9 * DAY) == 4 * 3600


def test_drop_refuses_a_name_that_is_not_a_drill_name() -> None:
    for name in ("_1b2c3d", "drill_", "drill_XYZ", "drill_1;drop", "drill_ab\n"):
        with pytest.raises(SystemExit, match="not a drill name"):
            drill.drop([name])


def test_count_rows_refuses_a_table_that_is_no_doctypes() -> None:
    with pytest.raises(SystemExit, match="not a doctype's table"):
        drill.count_rows("drill_ab", ["tabUser", "tabX`; DROP DATABASE y; --"])


def test_the_throwaway_password_never_reads_as_an_option() -> None:
    """bench hands the password to click, which takes an argument starting with "-" for an
    option (the stand-in bench too: a unit-tier run failed a login check on one). 2000 draws:
    token_urlsafe alone starts with "-" once in 64."""
    drawn = [drill.new_password() for _ in range(2000)]
    assert not [password for password in drawn if password.startswith("-")]
    assert len(set(drawn)) == len(drawn)
    assert all(len(password) >= 32 for password in drawn)
