"""Stand-in for `mysqldump` against the stand-in server of stand_in_support ($STANDIN_DB), as
the stand-in Frappe's ``bench backup`` starts it (frappe/commands/backup.py; Frappe 15's
BackupGenerator.take_dump pipes it into gzip): ``[options] -u USER -h HOST -P PORT DATABASE``,
the password in $MYSQL_PWD.

It logs in as MariaDB lets a site's user in (refusals as mysqldump reports them, exit status 2)
and writes the database to stdout as mysqldump does, in MariaDB's spelling: for each table
``DROP TABLE IF EXISTS``, ``CREATE TABLE`` and one ``INSERT`` of its rows. The stand-in
``mariadb`` client loads such a dump back (bench restore), so a backup restores for real.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import sys

from stand_in_support import database_file, database_server, refuse_site_login, snapshot_processes


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return str(value)
    # Quotes doubled: MariaDB reads them so, and so does the SQLite behind the stand-in client.
    return "'" + str(value).replace("'", "''") + "'"


def _as_mariadb(create: str) -> str:
    """A table's SQLite definition (as stand_in_support.as_sqlite made it) in MariaDB's words."""
    create = re.sub(
        r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", "INT AUTO_INCREMENT PRIMARY KEY", create
    )
    return re.sub(r"^CREATE TABLE IF NOT EXISTS", "CREATE TABLE", create)


def dump(database: str, host: str) -> str:
    lines = [
        "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)",
        "--",
        f"-- Host: {host}    Database: {database}",
        "-- ------------------------------------------------------",
    ]
    with contextlib.closing(sqlite3.connect(database_file(database))) as db:
        tables = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        for name, create in tables:
            lines += ["", f"DROP TABLE IF EXISTS `{name}`;", f"{_as_mariadb(create)};"]
            rows = db.execute(f'SELECT * FROM "{name}"').fetchall()
            if rows:
                values = ",".join(f"({','.join(map(_literal, row))})" for row in rows)
                lines.append(f"INSERT INTO `{name}` VALUES {values};")
    return "\n".join([*lines, "", "-- Dump completed", ""])


def main(argv: list[str]) -> int:
    snapshot_processes("mysqldump")
    user, host, database = argv[argv.index("-u") + 1], argv[argv.index("-h") + 1], argv[-1]
    with database_server() as state:
        refused = refuse_site_login(state, user, database)
    if refused:
        code, message = refused
        when = "trying to connect" if code == 1045 else "selecting the database"
        print(f'mysqldump: Got error: {code}: "{message}" when {when}', file=sys.stderr)
        return 2
    sys.stdout.write(dump(database, host))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
