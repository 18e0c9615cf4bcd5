"""The restore drill's Python half (components/scripts/restore-drill.sh runs it with the bench's
Python, which has PyMySQL): the dump's row counter, the database statements as root, the result
files, the schedule and the metrics server. Standard library only, but for PyMySQL in the
subcommands that talk to MariaDB.

The service runs restore-drill.sh as ``bash -c "<text>"`` with no checkout in the container, so
this file's text reaches it inlined into that text (components/frappe/processes.py) and runs as
``python -c "$RESTORE_DRILL_PY" <subcommand> ...``.

Subcommands:
  count-dump DUMP DOCTYPE...   rows of each doctype's table in the (gzip'ed) mysqldump, as JSON
  count-rows DATABASE TABLE... rows of each table in the drill's database, as JSON
  cleanup                      drops every drill_<hex> database and user, prints their names
  drop NAME                    drops one drill_<hex> database and its user
  result FILE                  writes the result of one site's drill (FILE: its checks, TSV)
  next-run-in EPOCH            seconds from EPOCH until the next drill is due
  metrics                      prints the metrics once
  serve                        serves /metrics and /status.json on DRILL_METRICS_PORT

Safety by construction: every name this module drops matches DRILL_NAME, and it never reads a
live site's configuration (the drill container has no sites volume).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# The only database and user names the drill creates, and the only ones it ever drops.
DRILL_NAME = re.compile(r"^drill_[0-9a-f]+$")
# Beyond the interval, how long the last success may be old before the drill is unhealthy: the
# next drill starts at the configured time intervalDays after the last one and takes a while
# (the restore of a large site), so a success may land a few hours later than a week after the
# one before it.
HEALTH_SLACK_SECONDS = 6 * 3600
METRICS_PORT = 9150
PREFIX = "brandclub"
_INSERT = re.compile(rb"INSERT INTO `((?:[^`]|``)+)`")


# --- the dump -------------------------------------------------------------------------------


def count_tuples(statement: bytes, start: int = 0) -> tuple[int, int]:
    """Counts the top-level ``(...)`` tuples of an INSERT's VALUES from ``start`` up to the
    statement's ``;`` outside quotes. Quoted strings ('...' or "...") may hold parentheses,
    semicolons and quotes escaped with a backslash or doubled. Returns (tuples, end offset;
    -1 when the statement goes on past ``statement``)."""
    count = depth = 0
    quote = 0
    index, size = start, len(statement)
    while index < size:
        char = statement[index]
        if quote:
            if char == 0x5C:  # backslash: the next byte is escaped
                index += 2
                continue
            if char == quote:
                quote = 0
        elif char in (0x27, 0x22):  # ' or "
            quote = char
        elif char == 0x28:  # (
            if depth == 0:
                count += 1
            depth += 1
        elif char == 0x29:  # )
            depth -= 1
        elif char == 0x3B and depth == 0:  # ;
            return count, index
        index += 1
    return count, -1


def count_dump_rows(lines: Any) -> tuple[dict[str, int], set[str]]:
    """Rows per table in a mysqldump read as ``lines`` (bytes), and the tables it creates.
    mysqldump writes each INSERT on one line (with --extended-insert, many tuples; a long table
    gets several INSERTs), escapes line breaks in strings as ``\\n``; a statement that goes on
    past its line is read on until its ``;``."""
    rows: dict[str, int] = {}
    tables: set[str] = set()
    pending: str | None = None
    for line in lines:
        if pending is not None:
            count, end = count_tuples(line)
            rows[pending] += count
            if end >= 0:
                pending = None
            continue
        if line.startswith(b"CREATE TABLE `"):
            tables.add(line[14 : line.index(b"`", 14)].decode())
            continue
        match = _INSERT.match(line)
        if not match:
            continue
        table = match[1].replace(b"``", b"`").decode()
        values = line.find(b" VALUES ", match.end())
        count, end = count_tuples(line, values + 8)
        rows[table] = rows.get(table, 0) + count
        if end < 0:
            pending = table
    return rows, tables


def count_dump(path: Path, doctypes: list[str]) -> dict[str, int | None]:
    """Rows of each doctype's table in the dump at ``path`` (gzip'ed when it ends .gz); None for
    a doctype whose table the dump does not have."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as dump:
        rows, tables = count_dump_rows(dump)
    return {
        doctype: (rows.get(f"tab{doctype}", 0) if f"tab{doctype}" in tables else None)
        for doctype in doctypes
    }


# --- MariaDB, as root -----------------------------------------------------------------------


def _root(database: str | None = None):
    import pymysql

    password = Path(os.environ["DB_ROOT_PASSWORD_FILE"]).read_text().rstrip("\n")
    return pymysql.connect(
        host=os.environ.get("DB_HOST", "mariadb"),
        port=int(os.environ.get("DB_PORT", "3306")),
        user="root",
        password=password,
        database=database,
        connect_timeout=10,
        autocommit=True,
    )


def _rows(connection, sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def _checked(name: str) -> str:
    if not DRILL_NAME.fullmatch(name):
        raise SystemExit(f"refusing to drop {name!r}: not a drill name (drill_<hex>)")
    return name


def drop(names: list[str]) -> list[str]:
    """Drops each drill database and its users (at every host MariaDB has them)."""
    for name in names:
        _checked(name)
    connection = _root()
    dropped = []
    try:
        users = _rows(connection, "SELECT User, Host FROM mysql.user")
        for name in names:
            for user, host in users:
                if user == name:
                    with connection.cursor() as cursor:
                        cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{_checked(name)}`")
            dropped.append(name)
    finally:
        connection.close()
    return dropped


def leftovers() -> list[str]:
    """Every drill name MariaDB has, as a database or a user."""
    connection = _root()
    try:
        names = {name for (name,) in _rows(connection, "SHOW DATABASES")}
        names |= {user for user, _ in _rows(connection, "SELECT User, Host FROM mysql.user")}
    finally:
        connection.close()
    return sorted(name for name in names if DRILL_NAME.fullmatch(name))


# The tables the drill counts: a doctype's, named in SQL between backquotes.
_TABLE = re.compile(r"tab[A-Za-z][A-Za-z0-9 _-]*")


def count_rows(database: str, tables: list[str]) -> dict[str, int | None]:
    for table in tables:
        if not _TABLE.fullmatch(table):
            raise SystemExit(f"refusing to count {table!r}: not a doctype's table")
    connection = _root(_checked(database))
    counts: dict[str, int | None] = {}
    try:
        for table in tables:
            try:
                counts[table] = _rows(connection, f"SELECT COUNT(*) FROM `{table}`")[0][0]
            except Exception:  # no such table: reported as missing, compared by the caller
                counts[table] = None
    finally:
        connection.close()
    return counts


# --- results and state ----------------------------------------------------------------------


def state_dir() -> Path:
    return Path(os.environ.get("DRILL_STATE_DIR", "/restore-drill"))


def site_state(site: str) -> Path:
    return state_dir() / "sites" / site


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
    partial.replace(path)


# How many runs history.jsonl keeps per site.
HISTORY_RUNS = 100


def write_result(checks_file: Path) -> dict[str, Any]:
    """The result of one site's drill from the environment the script sets (DRILL_SITE,
    DRILL_STARTED, DRILL_ENDED, DRILL_BACKUP_PATH, DRILL_BACKUP_DATE) and its checks (TSV lines
    ``name ok seconds message``): last-run.json, last-success.json when it passed, and a line
    in history.jsonl."""
    checks = []
    for line in checks_file.read_text().splitlines():
        name, ok, seconds, message = line.split("\t", 3)
        checks.append(
            {"name": name, "ok": ok == "1", "seconds": float(seconds), "message": message}
        )
    site = os.environ["DRILL_SITE"]
    result = {
        "site": site,
        "started": int(os.environ["DRILL_STARTED"]),
        "ended": int(os.environ["DRILL_ENDED"]),
        "backup": {
            "path": os.environ.get("DRILL_BACKUP_PATH") or None,
            "date": os.environ.get("DRILL_BACKUP_DATE") or None,
        },
        "checks": checks,
        "ok": bool(checks) and all(check["ok"] for check in checks),
    }
    folder = site_state(site)
    write_json(folder / "last-run.json", result)
    if result["ok"]:
        write_json(folder / "last-success.json", result)
    history = folder / "history.jsonl"
    lines = history.read_text().splitlines() if history.is_file() else []
    lines = [*lines, json.dumps(result, sort_keys=True)][-HISTORY_RUNS:]
    history.write_text("\n".join(lines) + "\n")
    return result


def interval_seconds() -> int:
    return int(os.environ.get("DRILL_INTERVAL_DAYS", "7")) * 86400


def seconds_until_next_run(now: int) -> int:
    """Seconds from ``now`` until DRILL_TIME (UTC) on the first day at least
    DRILL_INTERVAL_DAYS after the day of the last run ($DRILL_STATE_DIR/last-run, its start in
    epoch seconds), never zero; without a last run, the next DRILL_TIME."""
    hour, minute = map(int, os.environ.get("DRILL_TIME", "04:00").split(":"))
    clock = hour * 3600 + minute * 60
    try:
        last = int((state_dir() / "last-run").read_text().strip())
    except (OSError, ValueError):
        last = None
    today = now - now % 86400
    target = today + clock
    if last is not None:
        target = max(target, last - last % 86400 + interval_seconds() + clock)
    while target <= now:
        target += 86400
    return target - now


# --- metrics --------------------------------------------------------------------------------


def backup_root() -> Path:
    return Path(os.environ.get("BACKUP_ROOT", "/backups"))


def newest_backup_time(site: str) -> float | None:
    """When the newest database dump of ``site`` under BACKUP_ROOT was written."""
    times = [
        dump.stat().st_mtime
        for dump in (backup_root() / site).glob("????-??-??/*-database.sql.gz")
        if dump.is_file()
    ]
    return max(times) if times else None


def sites() -> list[str]:
    """The stack's sites (DRILL_SITES), every site with backups and every site drilled."""
    names = set(os.environ.get("DRILL_SITES", "").split())
    for root in (backup_root(), state_dir() / "sites"):
        if root.is_dir():
            names |= {
                path.name
                for path in root.iterdir()
                if path.is_dir() and not path.name.startswith(".")
            }
    return sorted(names)


def site_status(site: str, now: float) -> dict[str, Any]:
    last = read_json(site_state(site) / "last-run.json")
    success = read_json(site_state(site) / "last-success.json")
    newest = newest_backup_time(site)
    last_success = success["ended"] if success else None
    healthy = bool(
        last
        and last["ok"]
        and last_success is not None
        and now - last_success <= interval_seconds() + HEALTH_SLACK_SECONDS
    )
    return {
        "site": site,
        "healthy": healthy,
        "last_run": last,
        "last_success": last_success,
        "backup_newest_age_seconds": None if newest is None else max(0.0, now - newest),
    }


def status(now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "interval_days": interval_seconds() // 86400,
        "health_slack_seconds": HEALTH_SLACK_SECONDS,
        "sites": [site_status(site, now) for site in sites()],
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(now: float | None = None) -> str:
    """The Prometheus text format (0.0.4) of every site's drill and newest backup."""
    families: dict[str, tuple[str, list[str]]] = {
        "restore_drill_healthy": (
            "1 when the last drill passed and the last success is no older than the interval "
            "plus the slack",
            [],
        ),
        "restore_drill_last_run_ok": ("1 when the last drill passed", []),
        "restore_drill_last_run_timestamp_seconds": ("When the last drill ended", []),
        "restore_drill_last_success_timestamp_seconds": ("When the last passing drill ended", []),
        "restore_drill_check_ok": ("1 when the check passed in the last drill", []),
        "restore_drill_check_seconds": ("How long the check took in the last drill", []),
        "backup_newest_age_seconds": ("Age of the newest database backup", []),
    }

    def sample(family: str, labels: dict[str, str], value: float) -> None:
        # Whole numbers as they are: %g would print a timestamp as 1.8e+09.
        text = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
        number = str(value) if isinstance(value, int) else repr(round(value, 3))
        families[family][1].append(f"{PREFIX}_{family}{{{text}}} {number}")

    for site in status(now)["sites"]:
        name = {"site": site["site"]}
        sample("restore_drill_healthy", name, int(site["healthy"]))
        last = site["last_run"]
        if last:
            sample("restore_drill_last_run_ok", name, int(last["ok"]))
            sample("restore_drill_last_run_timestamp_seconds", name, last["ended"])
            for check in last["checks"]:
                labels = {**name, "check": check["name"]}
                sample("restore_drill_check_ok", labels, int(check["ok"]))
                sample("restore_drill_check_seconds", labels, check["seconds"])
        if site["last_success"] is not None:
            sample("restore_drill_last_success_timestamp_seconds", name, site["last_success"])
        if site["backup_newest_age_seconds"] is not None:
            sample("backup_newest_age_seconds", name, round(site["backup_newest_age_seconds"]))
    lines = []
    for family, (help_text, samples) in families.items():
        lines += [f"# HELP {PREFIX}_{family} {help_text}", f"# TYPE {PREFIX}_{family} gauge"]
        lines += samples
    return "\n".join(lines) + "\n"


class MetricsHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, kind = metrics().encode(), "text/plain; version=0.0.4; charset=utf-8"
        elif path == "/status.json":
            body, kind = json.dumps(status(), indent=1).encode(), "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve() -> int:
    port = int(os.environ.get("DRILL_METRICS_PORT", METRICS_PORT))
    server = ThreadingHTTPServer(("0.0.0.0", port), MetricsHandler)
    server.daemon_threads = True
    server.serve_forever()
    return 0


def new_password() -> str:
    """The throwaway Administrator's password: random, with upper and lower case and a digit,
    and never starting with "-". bench hands it to click as an argument, and click reads an
    argument that starts with "-" as an option (`Error: No such option: -…`): a plain
    token_urlsafe did so one time in 64 and failed the login check."""
    return "Dr1ll" + secrets.token_urlsafe(24)


def main(argv: list[str]) -> int:
    command, arguments = argv[0], argv[1:]
    if command == "count-dump":
        print(json.dumps(count_dump(Path(arguments[0]), arguments[1:])))
    elif command == "count-rows":
        print(json.dumps(count_rows(arguments[0], arguments[1:])))
    elif command == "cleanup":
        print(" ".join(drop(leftovers())))
    elif command == "drop":
        print(" ".join(drop(arguments)))
    elif command == "result":
        print(json.dumps(write_result(Path(arguments[0]))))
    elif command == "new-password":
        sys.stdout.write(new_password())
    elif command == "next-run-in":
        print(seconds_until_next_run(int(arguments[0])))
    elif command == "metrics":
        sys.stdout.write(metrics())
    elif command == "serve":
        return serve()
    else:
        raise SystemExit(f"restore_drill: unknown subcommand {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
