"""Stand-in for PyMySQL, the driver the stand-in Frappe (tests/live/images/bench/apps/frappe)
connects to MariaDB with: on the unit tier's bench path (tests/fake_commands.py make_bench) it
takes the real driver's place, so the one stand-in Frappe runs without a database server,
against the file-kept server of stand_in_support ($STANDIN_DB).

A login is checked as MariaDB checks it (root's password, a user created at either host, the
database existing) and refused with error 1045 as MariaDB refuses it. The account statements
Frappe's setup_database sends as root change the server's users and databases; every other
statement runs in the database's SQLite file.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from typing import Any

from stand_in_support import access_denied, as_sqlite, database_file, database_server, drop_database

from pymysql import err

__all__ = ["connect", "err"]

_NAME = r"`?(\w+)`?"


def _literal(value: Any) -> str:
    # As pymysql's escaping: strings quoted with their quotes and backslashes escaped.
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def _account(sql: str, state: dict[str, Any]) -> list[tuple] | None:
    """Runs an account or database statement on the server; None for any other statement."""
    text = sql.strip()
    account = r"('(?:[^'\\]|\\.)*')@('(?:[^'\\]|\\.)*')"
    if text == "SHOW DATABASES":
        return [(name,) for name in state["databases"]]
    if text == "SELECT User, Host FROM mysql.user":
        return [tuple(key.rsplit("@", 1)) for key in state["users"]]
    if text == "FLUSH PRIVILEGES" or re.fullmatch(
        rf"GRANT ALL PRIVILEGES ON {_NAME}\.\* TO .*", text
    ):
        return []
    if match := re.fullmatch(rf"DROP USER IF EXISTS {account}", text):
        state["users"].pop(f"{_unquote(match[1])}@{_unquote(match[2])}", None)
        return []
    if match := re.fullmatch(rf"CREATE USER {account} IDENTIFIED BY ('(?:[^'\\]|\\.)*')", text):
        key = f"{_unquote(match[1])}@{_unquote(match[2])}"
        if key in state["users"]:
            raise err.OperationalError(
                1396, f"Operation CREATE USER failed for {match[1]}@{match[2]}"
            )
        state["users"][key] = _unquote(match[3])
        return []
    if match := re.fullmatch(rf"DROP DATABASE IF EXISTS {_NAME}", text):
        drop_database(state, match[1])
        return []
    if match := re.fullmatch(rf"CREATE DATABASE {_NAME}(?: .*)?", text):
        if match[1] in state["databases"]:
            raise err.ProgrammingError(1007, f"Can't create database '{match[1]}'; database exists")
        state["databases"][match[1]] = {}
        return []
    return None


class Cursor:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.rows: list[tuple] = []

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, args: tuple | list | None = None) -> int:
        rendered = sql % tuple(_literal(value) for value in args) if args else sql
        with database_server() as state:
            rows = _account(rendered, state)
        if rows is None:
            rows = self.connection.run(sql, args)
        self.rows = rows
        return len(rows)

    def fetchall(self) -> tuple[tuple, ...]:
        return tuple(self.rows)


class Connection:
    def __init__(self, user: str, database: str | None) -> None:
        self.user, self.database = user, database

    def cursor(self) -> Cursor:
        return Cursor(self)

    def run(self, sql: str, args: tuple | list | None) -> list[tuple]:
        if not self.database:
            raise err.OperationalError(1046, "No database selected")
        with contextlib.closing(sqlite3.connect(database_file(self.database))) as db, db:
            try:
                return db.execute(as_sqlite(sql), tuple(args or ())).fetchall()
            except sqlite3.Error as error:
                raise err.ProgrammingError(1064, f"{error}: {sql}") from error

    def close(self) -> None:
        return None


def connect(
    host: str | None = None,
    user: str | None = None,
    password: str = "",
    database: str | None = None,
    port: int = 3306,
    **options: Any,
) -> Connection:
    """pymysql.connect: refused as MariaDB refuses a wrong login or an unknown database."""
    with database_server() as state:
        if user == "root":
            allowed = password == state["root_password"]
        else:
            allowed = password in {state["users"].get(f"{user}@{h}") for h in ("%", "localhost")}
        if not allowed:
            raise err.OperationalError(*access_denied(str(user)))
        if database and database not in state["databases"]:
            raise err.OperationalError(1049, f"Unknown database '{database}'")
    return Connection(str(user), database)
