"""The unit tier's stand-in MariaDB server, and how the tests watch the stand-ins.

Frappe itself is stood in for once, by the live image's tree (tests/live/images/bench/apps/
frappe); in the unit tier it runs against this server instead of a real MariaDB, through the
stand-in ``pymysql`` beside this file, and the stand-in ``mariadb`` client (mariadb.py) acts on
the same server. The server is a JSON file ($STANDIN_DB: root password and hosts, users,
databases, the SQL the client received) and one SQLite file per database beside it, which
holds the tables Frappe's statements create.

Runs inside the stand-ins' own processes too, so it depends on the standard library only and
reads its settings from the environment the test gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# As in tests/fake_commands.py: ASCII unit/record separators.
_UNIT, _RECORD = "\x1f", "\x1e"


def record_call(name: str, argv: list[str]) -> None:
    """Appends the call to $STANDIN_CALLS, as the bash recorder of fake_commands.FakeBin does."""
    log = os.environ.get("STANDIN_CALLS")
    if log:
        with open(log, "a") as calls:
            calls.write("".join(f"{part}{_UNIT}" for part in [name, *argv]) + _RECORD)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone, or another user's process
        return ""


def snapshot_processes(by: str) -> None:
    """Appends every process's command line and environment, and `ps -eo args`, as seen at this
    moment, to $STANDIN_PROC_SNAPSHOTS (one JSON line), when the test asked for it."""
    target = os.environ.get("STANDIN_PROC_SNAPSHOTS")
    if not target:
        return
    import subprocess  # here only: every stand-in process would pay for its import

    processes = [
        {
            "pid": int(proc.name),
            "cmdline": _read(proc / "cmdline"),
            "environ": _read(proc / "environ"),
        }
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit()
    ]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
    with open(target, "a") as snapshots:
        snapshots.write(json.dumps({"by": by, "processes": processes, "ps": ps}) + "\n")


def access_denied(user: str) -> tuple[int, str]:
    """MariaDB's refusal of a login (error 1045), as pymysql and the client report it."""
    return 1045, f"Access denied for user '{user}'@'10.0.9.7' (using password: YES)"


def refuse_site_login(state: dict[str, Any], user: str, database: str) -> tuple[int, str] | None:
    """Why the server refuses ``user`` (password in $MYSQL_PWD, as the stand-in Frappe starts the
    client tools) into ``database``, as MariaDB's error code and message; None when it lets the
    user in. A user created at either host logs in, as Frappe's setup_database creates them."""
    logins = {state["users"].get(f"{user}@{host}") for host in ("%", "localhost")}
    if os.environ.get("MYSQL_PWD") not in logins:
        return access_denied(user)
    if database not in state["databases"]:
        return 1049, f"Unknown database '{database}'"
    return None


@contextlib.contextmanager
def database_server(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """The server's state ($STANDIN_DB, JSON), locked and written back after the block:
    ``root_password``, ``root_hosts``, ``users`` ("name@host" -> password), ``databases``
    (name -> {}) and ``statements`` (the SQL the ``mariadb`` client received)."""
    path = path or Path(os.environ["STANDIN_DB"])
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        yield state
        path.write_text(json.dumps(state, indent=1))


def database_file(name: str, server: Path | None = None) -> Path:
    """The SQLite file that holds database ``name``'s tables."""
    server = server or Path(os.environ["STANDIN_DB"])
    return server.with_name(f"{server.stem}.{name}.sqlite")


def drop_database(state: dict[str, Any], name: str, server: Path | None = None) -> None:
    state["databases"].pop(name, None)
    database_file(name, server).unlink(missing_ok=True)


def as_sqlite(sql: str) -> str:
    """MariaDB's spelling of the few things the stand-in Frappe's statements use, in SQLite's
    (backquoted names, REPLACE INTO and CREATE TABLE IF NOT EXISTS are the same in both)."""
    sql = re.sub(r"\bINT AUTO_INCREMENT PRIMARY KEY\b", "INTEGER PRIMARY KEY AUTOINCREMENT", sql)
    return re.sub(r"\bNOW\(\)", "CURRENT_TIMESTAMP", sql).replace("%s", "?")


# The two tables of Frappe's that tests seed and read (the stand-in Frappe's installer.TABLES
# creates them with these columns on new-site).
_INSTALLED_APPS = (
    "CREATE TABLE IF NOT EXISTS `tabInstalled Application` (idx INT PRIMARY KEY, "
    "app_name VARCHAR(140) NOT NULL, app_version VARCHAR(140), git_branch VARCHAR(140))"
)
_SINGLES = (
    "CREATE TABLE IF NOT EXISTS `tabSingles` (doctype VARCHAR(140) NOT NULL, "
    "field VARCHAR(140) NOT NULL, value TEXT, PRIMARY KEY (doctype, field))"
)


def _seed(file: Path, apps: list[str], enable_scheduler: int) -> None:
    with contextlib.closing(sqlite3.connect(file)) as db, db:
        db.execute(_INSTALLED_APPS)
        db.execute(_SINGLES)
        db.executemany(
            "INSERT INTO `tabInstalled Application` VALUES (?, ?, '15.0.0', 'HEAD')",
            list(enumerate(apps, 1)),
        )
        db.execute(
            "INSERT INTO tabSingles VALUES ('System Settings', 'enable_scheduler', ?)",
            (str(enable_scheduler),),
        )


def new_database_server(
    path: Path,
    root_password: str,
    databases: dict[str, dict[str, Any]] | None = None,
    **extra: Any,
) -> Path:
    """A server at ``path`` whose ``databases`` (name -> {"apps": [...], "enable_scheduler":
    0|1}) hold a Frappe site's installed apps and scheduler switch, as new-site leaves them."""
    state = {
        "root_password": root_password,
        "root_hosts": ["%", "localhost"],
        "users": {},
        "databases": {name: {} for name in databases or {}},
        "statements": [],
        **extra,
    }
    path.write_text(json.dumps(state, indent=1))
    for name, content in (databases or {}).items():
        _seed(database_file(name, path), content["apps"], content.get("enable_scheduler", 0))
    return path


def _rows(db: sqlite3.Connection, sql: str) -> list[tuple]:
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # no such table: nothing of it made yet
        return []


def database_state(path: Path) -> dict[str, Any]:
    """The server's state, each database shown as the tests read a site's: its ``apps`` (in
    install order), ``enable_scheduler``, how many ``migrations`` ran and the ``notes`` (what a
    restored dump brought), the last two only when there are any."""
    state = json.loads(path.read_text())
    for name in state["databases"]:
        with contextlib.closing(sqlite3.connect(database_file(name, path))) as db:
            view: dict[str, Any] = {
                "apps": [
                    app
                    for (app,) in _rows(
                        db, "SELECT app_name FROM `tabInstalled Application` ORDER BY idx"
                    )
                ],
            }
            scheduler = _rows(
                db,
                "SELECT value FROM tabSingles WHERE doctype = 'System Settings' "
                "AND field = 'enable_scheduler'",
            )
            view["enable_scheduler"] = int(scheduler[0][0]) if scheduler else 0
            migrations = _rows(db, "SELECT COUNT(*) FROM `tabBrandclub Migration`")
            if migrations and migrations[0][0]:
                view["migrations"] = migrations[0][0]
            notes = _rows(db, "SELECT title FROM `tabBrandclub Note` ORDER BY name")
            if notes:
                view["notes"] = [title for (title,) in notes]
        state["databases"][name] = view
    return state
