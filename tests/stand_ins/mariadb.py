"""Stand-in for the `mariadb` client against the stand-in server of stand_in_support
($STANDIN_DB), the one the stand-in Frappe's databases live on in the unit tier.

Root logs in the way the real client does when the job scripts give it a password: only from an
option file, ``--defaults-extra-file`` (which must be the first option), read with MariaDB's
option-file rules (quotes stripped, ``#`` outside quotes a comment, backslash escapes); it runs
the few statements the job scripts send on stdin (SELECT 1, the root accounts' hosts, SET
PASSWORD, DROP DATABASE / DROP USER). A site's own user logs in as the stand-in Frappe's
``bench restore`` starts the client (``-u USER -h HOST -P PORT DATABASE``, the password in
$MYSQL_PWD) to load a dump into the database. Every stdin is appended to the server's
``statements``; a process snapshot is taken when asked. $STANDIN_DB_IGNORES_SET_PASSWORD makes
SET PASSWORD change nothing (a server that accepts the statement and keeps the old password).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys

from stand_in_support import (
    access_denied,
    as_sqlite,
    database_file,
    database_server,
    drop_database,
    refuse_site_login,
    snapshot_processes,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", '"': '"', "'": "'", "\\": "\\"}
_SQL_STRING = r"'((?:[^'\\]|\\.|'')*)'"


def _strip_comment(line: str) -> str:
    quote, escape = "", False
    for index, char in enumerate(line):
        if char in "'\"" and not escape:
            quote = "" if quote == char else quote or char
        if not quote and char == "#":
            return line[:index]
        escape = bool(quote) and char == "\\" and not escape
    return line


def _option_value(raw: str) -> str:
    value = _strip_comment(raw).strip()
    if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0]:
        value = value[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), value)


def password_from_option_file(argv: list[str]) -> str | None:
    if not argv or not argv[0].startswith("--defaults-extra-file="):
        return None
    with open(argv[0].split("=", 1)[1]) as option_file:
        lines = option_file.read().splitlines()
    group = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            group = stripped.strip("[]")
        elif group == "client" and "=" in stripped:
            key, raw = stripped.split("=", 1)
            if key.strip() == "password":
                return _option_value(raw)
    return None


def _sql_string(literal: str) -> str:
    return re.sub(r"''|\\(.)", lambda m: "'" if m[0] == "''" else m[1], literal)


def execute(sql: str, state: dict) -> list[str]:
    if sql.strip() == "SELECT 1;":
        return ["1"]
    if sql.strip() == "SELECT Host FROM mysql.user WHERE User = 'root';":
        return list(state["root_hosts"])
    changes = re.findall(
        rf"SET PASSWORD FOR 'root'@{_SQL_STRING} = PASSWORD\({_SQL_STRING}\);", sql
    )
    if changes:
        if not os.environ.get("STANDIN_DB_IGNORES_SET_PASSWORD"):
            state["root_password"] = _sql_string(changes[-1][1])
        return []
    drops = re.findall(
        r"DROP DATABASE IF EXISTS `(\w+)`;|DROP USER IF EXISTS '(\w+)'@'([%\w]+)';", sql
    )
    if drops:
        for database, user, host in drops:
            if database:
                drop_database(state, database)
            else:
                state["users"].pop(f"{user}@{host}", None)
        return []
    raise ValueError(f"the stand-in does not run: {sql!r}")


def load_dump(argv: list[str], sql: str, state: dict) -> int:
    """``-u USER -h HOST -P PORT DATABASE`` with $MYSQL_PWD: the dump on stdin into DATABASE."""
    user, database = argv[argv.index("-u") + 1], argv[-1]
    refused = refuse_site_login(state, user, database)
    if refused:
        code, message = refused
        print(f"ERROR {code} ({'28000' if code == 1045 else '42000'}): {message}", file=sys.stderr)
        return 1
    with contextlib.closing(sqlite3.connect(database_file(database))) as db, db:
        db.executescript(as_sqlite(sql))
    return 0


def main(argv: list[str]) -> int:
    snapshot_processes("mariadb")
    password = password_from_option_file(argv)
    sql = sys.stdin.read()
    with database_server() as state:
        state["statements"].append(sql.rstrip("\n"))
        if "-u" in argv:
            return load_dump(argv, sql, state)
        if "--user=root" not in argv or password != state["root_password"]:
            print(f"ERROR 1045 (28000): {access_denied('root')[1]}", file=sys.stderr)
            return 1
        try:
            rows = execute(sql, state)
        except ValueError as error:
            print(f"ERROR 1064 (42000): {error}", file=sys.stderr)
            return 1
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
