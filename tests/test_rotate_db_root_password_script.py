"""rotate-db-root-password.sh against a stand-in `mariadb` that checks MYSQL_PWD."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_commands import FakeBin, run_script

OLD = "old-Pa55"
NEW = "n3w'pa\\ss\"#"  # a quote, a backslash, a double quote and a comment sign
NEW_IN_SQL = "'n3w''pa\\\\ss\"#'"

# A server with one root password (in $FAKE_DB/password) and root accounts ($FAKE_DB/hosts);
# every stdin is appended to $FAKE_DB/stdin. SET PASSWORD takes FAKE_NEW_PASSWORD unless
# FAKE_SET_IGNORED is set.
FAKE_MARIADB = """
sql=$(cat)  # drops the final newline
printf '%s\\x1e' "$sql" >> "$FAKE_DB/stdin"
if [[ ${MYSQL_PWD-} != "$(cat "$FAKE_DB/password")" ]]; then
  echo "ERROR 1045 (28000): Access denied for user 'root'@'10.0.0.7'" >&2
  exit 1
fi
case $sql in
"SELECT 1;") echo 1 ;;
*"FROM mysql.user"*) cat "$FAKE_DB/hosts" ;;
*"SET PASSWORD"*)
  [[ -n ${FAKE_SET_IGNORED:-} ]] || printf '%s' "$FAKE_NEW_PASSWORD" > "$FAKE_DB/password" ;;
*) exit 1 ;;
esac
"""

CONNECT = ["mariadb", "--host=mariadb", "--port=3306", "--user=root"]
QUIET = [*CONNECT, "--batch", "--skip-column-names"]


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    fakes = FakeBin(tmp_path)
    fakes.add("mariadb", FAKE_MARIADB)
    db = tmp_path / "db"
    db.mkdir()
    (db / "password").write_text(OLD)
    (db / "hosts").write_text("%\nlocalhost\n")
    (db / "stdin").write_text("")
    (tmp_path / "new").write_text(NEW + "\n")
    (tmp_path / "previous").write_text(OLD + "\n")
    return fakes


def _env(fakes: FakeBin, tmp_path: Path, **extra: str) -> dict[str, str]:
    defaults = dict(
        BENCH_DIR=str(tmp_path),
        FAKE_DB=str(tmp_path / "db"),
        FAKE_NEW_PASSWORD=NEW,
        DB_HOST="mariadb",
        DB_PORT="3306",
        DB_ROOT_PASSWORD_FILE=str(tmp_path / "new"),
        DB_ROOT_PASSWORD_PREVIOUS_FILE=str(tmp_path / "previous"),
    )
    return fakes.env(**{**defaults, **extra})


def _statements(tmp_path: Path) -> list[str]:
    return (tmp_path / "db" / "stdin").read_text().split("\x1e")[:-1]


def test_sets_the_new_password_on_every_root_account(fakes: FakeBin, tmp_path: Path) -> None:
    result = run_script("rotate-db-root-password.sh", _env(fakes, tmp_path))

    assert result.returncode == 0, result.stderr
    assert fakes.calls() == [QUIET, QUIET, QUIET, CONNECT, QUIET]
    assert _statements(tmp_path) == [
        "SELECT 1;",
        "SELECT 1;",
        "SELECT Host FROM mysql.user WHERE User = 'root';",
        f"SET PASSWORD FOR 'root'@'%' = PASSWORD({NEW_IN_SQL});\n"
        f"SET PASSWORD FOR 'root'@'localhost' = PASSWORD({NEW_IN_SQL});",
        "SELECT 1;",
    ]
    assert (tmp_path / "db" / "password").read_text() == NEW
    assert "root password rotated on mariadb:3306" in result.stdout
    for secret in (NEW, OLD):
        assert secret not in result.stdout + result.stderr + repr(fakes.calls())


def test_a_rotated_server_is_left_alone(fakes: FakeBin, tmp_path: Path) -> None:
    (tmp_path / "db" / "password").write_text(NEW)
    result = run_script("rotate-db-root-password.sh", _env(fakes, tmp_path))

    assert result.returncode == 0, result.stderr
    assert "already rotated" in result.stdout
    assert _statements(tmp_path) == ["SELECT 1;"]


def test_neither_password_logging_in_fails_clearly(fakes: FakeBin, tmp_path: Path) -> None:
    (tmp_path / "db" / "password").write_text("someone-else's")
    result = run_script("rotate-db-root-password.sh", _env(fakes, tmp_path))

    assert result.returncode == 1
    assert "neither the new nor the previous root password logs in to mariadb:3306" in (
        result.stderr
    )
    assert _statements(tmp_path) == ["SELECT 1;", "SELECT 1;"]


def test_a_change_that_did_not_take_fails(fakes: FakeBin, tmp_path: Path) -> None:
    result = run_script("rotate-db-root-password.sh", _env(fakes, tmp_path, FAKE_SET_IGNORED="1"))

    assert result.returncode == 1
    assert "the new root password does not log in after the change" in result.stderr


def test_a_missing_secret_file_is_named(fakes: FakeBin, tmp_path: Path) -> None:
    env = _env(fakes, tmp_path, DB_ROOT_PASSWORD_PREVIOUS_FILE=str(tmp_path / "nope"))
    result = run_script("rotate-db-root-password.sh", env)

    assert result.returncode == 1
    assert f"cannot read secret file {tmp_path / 'nope'}" in result.stderr
    assert fakes.calls() == []
