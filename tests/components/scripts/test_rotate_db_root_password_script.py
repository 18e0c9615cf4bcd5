"""rotate-db-root-password.sh against the stand-in `mariadb` client (tests/stand_ins), which logs
in only with a password from --defaults-extra-file, read with MariaDB's option-file rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_commands import FakeBin, add_frappe, database_state, new_database_server, run_script

OLD = "old-Pa55"
# a quote, a backslash, a double quote, a comment sign and a trailing backslash: the option
# file must quote and escape them, the SQL string too
NEW = "n3w'pa\\ss\"#\\"
NEW_IN_SQL = "'n3w''pa\\\\ss\"#\\\\'"

CONNECT = ["--host=mariadb", "--port=3306", "--user=root"]
QUIET = [*CONNECT, "--batch", "--skip-column-names"]


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    fakes = FakeBin(tmp_path)
    add_frappe(fakes)
    new_database_server(tmp_path / "db.json", OLD)
    (tmp_path / "new").write_text(NEW + "\n")
    (tmp_path / "previous").write_text(OLD + "\n")
    return fakes


def _env(fakes: FakeBin, tmp_path: Path, **extra: str) -> dict[str, str]:
    defaults = dict(
        BENCH_DIR=str(tmp_path),
        STANDIN_DB=str(tmp_path / "db.json"),
        DB_HOST="mariadb",
        DB_PORT="3306",
        DB_ROOT_PASSWORD_FILE=str(tmp_path / "new"),
        DB_ROOT_PASSWORD_PREVIOUS_FILE=str(tmp_path / "previous"),
    )
    return fakes.env(**{**defaults, **extra})


def _calls(fakes: FakeBin) -> list[list[str]]:
    """mariadb's arguments after the option file, which is a pipe (/dev/fd/<n>)."""
    calls = fakes.calls("mariadb")
    for call in calls:
        assert call[1].startswith("--defaults-extra-file=/dev/fd/"), call
    return [call[2:] for call in calls]


def _statements(tmp_path: Path) -> list[str]:
    return database_state(tmp_path / "db.json")["statements"]


def _set_root_password(tmp_path: Path, password: str) -> None:
    new_database_server(tmp_path / "db.json", password)


def test_sets_the_new_password_on_every_root_account(fakes: FakeBin, tmp_path: Path) -> None:
    result = run_script("rotate-db-root-password.sh", _env(fakes, tmp_path))

    assert result.returncode == 0, result.stderr
    assert _calls(fakes) == [QUIET, QUIET, QUIET, CONNECT, QUIET]
    assert _statements(tmp_path) == [
        "SELECT 1;",
        "SELECT 1;",
        "SELECT Host FROM mysql.user WHERE User = 'root';",
        f"SET PASSWORD FOR 'root'@'%' = PASSWORD({NEW_IN_SQL});\n"
        f"SET PASSWORD FOR 'root'@'localhost' = PASSWORD({NEW_IN_SQL});",
        "SELECT 1;",
    ]
    assert database_state(tmp_path / "db.json")["root_password"] == NEW
    assert "root password rotated on mariadb:3306" in result.stdout
    for secret in (NEW, OLD):
        assert secret not in result.stdout + result.stderr + repr(fakes.calls())


def test_a_rotated_server_is_left_alone(fakes: FakeBin, tmp_path: Path) -> None:
    _set_root_password(tmp_path, NEW)
    result = run_script("rotate-db-root-password.sh", _env(fakes, tmp_path))

    assert result.returncode == 0, result.stderr
    assert "already rotated" in result.stdout
    assert _statements(tmp_path) == ["SELECT 1;"]


def test_neither_password_logging_in_fails_clearly(fakes: FakeBin, tmp_path: Path) -> None:
    _set_root_password(tmp_path, "someone-else's")
    result = run_script("rotate-db-root-password.sh", _env(fakes, tmp_path))

    assert result.returncode == 1
    assert "neither the new nor the previous root password logs in to mariadb:3306" in (
        result.stderr
    )
    assert _statements(tmp_path) == ["SELECT 1;", "SELECT 1;"]


def test_a_change_that_did_not_take_fails(fakes: FakeBin, tmp_path: Path) -> None:
    result = run_script(
        "rotate-db-root-password.sh", _env(fakes, tmp_path, STANDIN_DB_IGNORES_SET_PASSWORD="1")
    )

    assert result.returncode == 1
    assert "the new root password does not log in after the change" in result.stderr


def test_a_missing_secret_file_is_named(fakes: FakeBin, tmp_path: Path) -> None:
    env = _env(fakes, tmp_path, DB_ROOT_PASSWORD_PREVIOUS_FILE=str(tmp_path / "nope"))
    result = run_script("rotate-db-root-password.sh", env)

    assert result.returncode == 1
    assert f"cannot read secret file {tmp_path / 'nope'}" in result.stderr
    assert fakes.calls() == []
