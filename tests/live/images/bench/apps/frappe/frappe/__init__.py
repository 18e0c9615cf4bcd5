"""A stand-in for the Frappe framework, for the live-swarm test tier only.

It sits where the real package sits in the image (``apps/frappe/frappe``, importable by
``env/bin/python`` as in a real bench) and does what the program and its tests rely on, against
the real MariaDB and Redis: the bench commands the site jobs run (``frappe.utils.bench_helper``),
the web app behind gunicorn (``frappe.app``), RQ workers (``frappe.utils.background_jobs``) and
the realtime server (``frappe.realtime_server``). Names, files, keys and messages follow Frappe
v15 where a script or a test reads them. ``STANDIN_VERSION`` (the image's tag) is in every
answer, so a test can tell which release answered.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__version__ = "15.50.0"

# apps/frappe/frappe/__init__.py -> the bench directory, wherever the bench lives. Not resolved:
# a bench may link an app in (the unit tier links this tree into each test's bench).
BENCH = Path(os.path.abspath(__file__)).parents[3]
SITES = BENCH / "sites"
VERSION = os.environ.get("STANDIN_VERSION", "unknown")
# What the image is broken in, if anything: "port" (no process ever listens), "http500" (an app's
# hooks module fails to import, so the backend listens and answers every request with 500),
# "worker" (workers run but never register with RQ), "backend" (only the backend never listens:
# its apps import, its worker and realtime server run, so it passes the boot check).
BROKEN = os.environ.get("STANDIN_BROKEN", "no")

NOTES_TABLE = "tabBrandclub Note"
INSTALLED_APPS_TABLE = "tabInstalled Application"
MIGRATIONS_TABLE = "tabBrandclub Migration"
SINGLES_TABLE = "tabSingles"
# Frappe's record of the patches a site has run (frappe/modules/patch_handler.py): one row per
# patch, named by its line of an app's patches.txt.
PATCH_LOG_TABLE = "tabPatch Log"
# The image's patches.txt (frappe/patches.txt): the patches its release brings. A test names
# further ones in $STANDIN_NEW_PATCHES (comma-separated) for an image newer than a backup.
PATCHES = ("frappe.patches.v15_0.standin_initial",)


def patches() -> list[str]:
    extra = os.environ.get("STANDIN_NEW_PATCHES", "")
    return [*PATCHES, *(patch for patch in extra.split(",") if patch)]


class CommandError(Exception):
    """A bench command's failure: the message is printed, the exit status is 1."""


def log(message: str) -> None:
    print(f"[standin {VERSION}] {message}", file=sys.stderr, flush=True)


# How long a config rewrite leaves the file empty (seconds). Frappe's window is the time between
# open(path, "w") and close, microseconds, and a reader hit it once in about 1,200 requests; the
# stand-in holds it open longer so a test sees within seconds whether anything reads mid-write.
CONFIG_WRITE_SECONDS = float(os.environ.get("STANDIN_CONFIG_WRITE_SECONDS", "0.2"))


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(path: Path, content: dict[str, Any]) -> None:
    """A file the stand-in writes for itself (not one Frappe rewrites while others read it):
    beside and renamed."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=1, sort_keys=True))
    partial.replace(path)


def update_config_file(path: Path, key: str, value: Any) -> None:
    """Frappe's ``_update_config_file`` (frappe/installer.py), behind ``bench set-config``,
    ``scheduler pause`` and ``--set-default``: read, change one key, then rewrite the file in
    place: ``open(path, "w")`` empties it, and the new text lands when the file is closed. A
    reader in between finds an empty file."""
    config = read_json(path)
    config[key] = value
    with open(path, "w") as file:
        time.sleep(CONFIG_WRITE_SECONDS)
        file.write(json.dumps(config, indent=1, sort_keys=True))


def common_config() -> dict[str, Any]:
    """Frappe v15's get_site_config for the bench part: a file that does not parse is reported
    (``common_site_config.json is invalid`` and the error) and skipped, so the process goes on
    without the bench's settings (no db_host: the database is then 127.0.0.1, and a request
    fails with 500)."""
    try:
        return read_json(SITES / "common_site_config.json")
    except ValueError as error:
        print("common_site_config.json is invalid", flush=True)
        print(error, flush=True)
        return {}


def site_config_path(site: str) -> Path:
    return SITES / site / "site_config.json"


def site_config(site: str) -> dict[str, Any] | None:
    path = site_config_path(site)
    return read_json(path) if path.is_file() else None


def get_conf(site: str | None = None) -> dict[str, Any]:
    """``frappe.local.conf``: the bench's common config overlaid with the site's own."""
    return {**common_config(), **((site_config(site) or {}) if site else {})}


def update_site_config(site: str, key: str, value: Any) -> None:
    update_config_file(site_config_path(site), key, value)


def all_sites() -> list[str]:
    # Frappe's get_sites: folders holding a site_config.json (dot folders are never sites).
    return sorted(
        path.parent.name
        for path in SITES.glob("*/site_config.json")
        if not path.parent.name.startswith(".")
    )


def bench_apps() -> list[str]:
    """The apps this bench has (sites/apps.txt, written by the configurator)."""
    apps_file = SITES / "apps.txt"
    return apps_file.read_text().split() if apps_file.is_file() else []


def get_hooks() -> dict[str, str]:
    """Frappe's get_hooks: every app of the bench (apps.txt) imported with its hooks module, as
    each request does; an app that fails to import fails the request."""
    import importlib

    return {app: importlib.import_module(f"{app}.hooks").app_name for app in bench_apps()}


def redis_client(key: str = "redis_queue", timeout: float | None = 5):
    """A client of the bench's Redis; ``timeout=None`` for a worker, whose BLPOP waits minutes
    (Frappe's RQ connection has no socket timeout either)."""
    import redis  # imported late: the bench's pure commands work without the client library

    conf = common_config()
    url = conf.get(key) or conf.get("redis_queue")
    if not url:
        raise CommandError(f"{key} missing in common_site_config.json")
    return redis.Redis.from_url(url, socket_timeout=timeout)


def connect(site: str):
    """A connection to the site's database as the site's own user, as frappe.connect makes."""
    import pymysql

    conf = get_conf(site)
    if not conf.get("db_name"):
        raise CommandError(f"site {site} does not exist")
    return pymysql.connect(
        host=conf.get("db_host", "localhost"),
        port=int(conf.get("db_port", 3306)),
        user=conf.get("db_user", conf["db_name"]),
        password=conf["db_password"],
        database=conf["db_name"],
        connect_timeout=5,
        autocommit=True,
    )


def root_connection(user: str, password: str):
    import pymysql

    conf = common_config()
    return pymysql.connect(
        host=conf["db_host"],
        port=int(conf.get("db_port", 3306)),
        user=user,
        password=password,
        connect_timeout=5,
        autocommit=True,
    )


def query(site: str, sql: str, args: tuple | list | None = None) -> list[tuple]:
    connection = connect(site)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())
    finally:
        connection.close()


def installed_apps(site: str) -> list[str]:
    return [
        app for (app,) in query(site, f"SELECT app_name FROM `{INSTALLED_APPS_TABLE}` ORDER BY idx")
    ]


def get_single_value(site: str, doctype: str, field: str) -> str | None:
    rows = query(
        site,
        f"SELECT value FROM `{SINGLES_TABLE}` WHERE doctype = %s AND field = %s",
        (doctype, field),
    )
    return rows[0][0] if rows else None


def set_single_value(site: str, doctype: str, field: str, value: Any) -> None:
    query(
        site,
        f"REPLACE INTO `{SINGLES_TABLE}` (doctype, field, value) VALUES (%s, %s, %s)",
        (doctype, field, str(value)),
    )
