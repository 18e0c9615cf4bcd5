#!/usr/bin/python3
"""Stand-ins for the Frappe processes, for the live-swarm test tier only.

One program, called by the names the real image's processes have (``start.sh``,
``nginx-entrypoint.sh``, ``node``, ``bench``, ``/mailpit``) plus ``probe`` for the tests' client.
Each listens on the real process's port and talks to the real MariaDB and Redis the way Frappe
does: credentials from ``sites/<site>/site_config.json`` and ``common_site_config.json`` on the
sites volume, SQL through PyMySQL, jobs through Redis lists. ``bench`` also takes the commands
the program's site jobs run (``set-config``, ``new-site``, ``migrate``), with Frappe's
arguments, and leaves what Frappe's would: the configs, the database, its user and tables.
Every response names the image's version (``STANDIN_VERSION``) so a test can tell which
release answered. An image built with
``STANDIN_BROKEN=yes`` runs but never opens its port, so its health check fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

BENCH = Path(os.environ.get("BENCH_DIR", "/home/frappe/frappe-bench"))
SITES = BENCH / "sites"
VERSION = os.environ.get("STANDIN_VERSION", "unknown")
BROKEN = os.environ.get("STANDIN_BROKEN", "no") == "yes"
NOTES_TABLE = "tabBrandclub Note"
SCHEDULER_HEARTBEAT = "brandclub:scheduler:heartbeat"
INSTALLED_APPS_TABLE = "tabInstalled Application"
MIGRATIONS_TABLE = "tabBrandclub Migration"
ADMIN_HASH_ROUNDS = 29000


def log(message: str) -> None:
    print(f"[standin {VERSION}] {message}", file=sys.stderr, flush=True)


def common_config() -> dict[str, Any]:
    return json.loads((SITES / "common_site_config.json").read_text())


def site_config(site: str) -> dict[str, Any] | None:
    path = SITES / site / "site_config.json"
    return json.loads(path.read_text()) if path.is_file() else None


def redis_client(url_key: str):
    import redis  # imported late: the probe runs where only the standard library matters

    return redis.Redis.from_url(common_config()[url_key], socket_timeout=5)


def site_connection(site: str):
    import pymysql

    config, common = site_config(site), common_config()
    if config is None:
        raise LookupError(site)
    return pymysql.connect(
        host=common["db_host"],
        port=int(common.get("db_port", 3306)),
        user=config["db_name"],
        password=config["db_password"],
        database=config["db_name"],
        connect_timeout=5,
        autocommit=True,
    )


# --- HTTP plumbing --------------------------------------------------------------------------


Route = Callable[["JsonHandler"], tuple[int, dict[str, Any]]]


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: ClassVar[dict[tuple[str, str], Route]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        return

    def body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps({**payload, "version": VERSION}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Standin-Version", VERSION)
        self.end_headers()
        self.wfile.write(data)

    def dispatch(self) -> None:
        route = self.routes.get((self.command, self.path.split("?", 1)[0]))
        if route is None:
            self.reply(404, {"exc_type": "DoesNotExistError", "path": self.path})
            return
        try:
            status, payload = route(self)
        except Exception as error:
            log(f"{self.command} {self.path}: {error!r}")
            status, payload = 500, {"exc_type": type(error).__name__, "exception": str(error)}
        self.reply(status, payload)

    do_GET = do_POST = dispatch  # noqa: N815 - http.server's method names


def serve(port: int, handler: type[BaseHTTPRequestHandler]) -> None:
    """Serve until SIGTERM, then finish the requests in hand, as gunicorn and nginx do."""
    if BROKEN:
        log(f"broken build: not listening on {port}")
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        return
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)
    server.daemon_threads = False
    server.block_on_close = True

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"listening on {port}")
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    log("stopped")


# --- backend (start.sh): gunicorn's place -------------------------------------------------------


def _site_of(handler: JsonHandler) -> str:
    # Frappe picks the site from the Host header, which nginx sets to FRAPPE_SITE_NAME_HEADER.
    return (handler.headers.get("Host") or "").split(":", 1)[0]


def _query(handler: JsonHandler, sql: str, args: tuple = ()) -> list[tuple]:
    connection = site_connection(_site_of(handler))
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def backend_version(handler: JsonHandler) -> tuple[int, dict[str, Any]]:
    site = _site_of(handler)
    if site_config(site) is None:
        return 404, {"exc_type": "SiteNotFound", "site": site}
    (database_version,) = _query(handler, "SELECT VERSION()")[0]
    cache = redis_client("redis_cache")
    hits = cache.incr(f"{site}|version-requests")
    return 200, {"message": {"site": site, "database": database_version, "cache_hits": hits}}


def backend_add_note(handler: JsonHandler) -> tuple[int, dict[str, Any]]:
    title = str(handler.body()["title"])
    _query(handler, f"INSERT INTO `{NOTES_TABLE}` (title) VALUES (%s)", (title,))
    return 200, {"data": {"title": title}}


def backend_list_notes(handler: JsonHandler) -> tuple[int, dict[str, Any]]:
    rows = _query(handler, f"SELECT title FROM `{NOTES_TABLE}` ORDER BY name")
    return 200, {"data": [title for (title,) in rows]}


def backend_enqueue(handler: JsonHandler) -> tuple[int, dict[str, Any]]:
    request = handler.body()
    job = json.dumps({"site": _site_of(handler), "title": str(request["title"])})
    redis_client("redis_queue").rpush(f"rq:queue:{request.get('queue', 'default')}", job)
    return 200, {"message": "queued"}


class BackendHandler(JsonHandler):
    routes: ClassVar[dict[tuple[str, str], Route]] = {
        ("GET", "/api/method/ping"): lambda handler: (200, {"message": "pong"}),
        ("GET", "/api/method/version"): backend_version,
        ("GET", "/api/resource/Note"): backend_list_notes,
        ("POST", "/api/resource/Note"): backend_add_note,
        ("POST", "/api/method/enqueue"): backend_enqueue,
    }


def start_backend(argv: list[str]) -> int:
    serve(8000, BackendHandler)
    return 0


# --- frontend (nginx-entrypoint.sh) -----------------------------------------------------------


def _resolvable(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


class FrontendHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def proxy(self) -> None:
        # Unlike nginx, which resolves an upstream once at start, the name is resolved per
        # request: on the test swarm services are dnsrr (no IPVS), where task addresses change
        # with every rollout, while in production a stable VIP stands behind the name.
        upstream = os.environ["SOCKETIO" if self.path.startswith("/socket.io") else "BACKEND"]
        length = int(self.headers.get("Content-Length") or 0)
        request = urllib.request.Request(
            f"http://{upstream}{self.path}",
            data=self.rfile.read(length) if length else None,
            method=self.command,
            headers={
                "Host": os.environ["FRAPPE_SITE_NAME_HEADER"],
                "Content-Type": self.headers.get("Content-Type", "application/json"),
            },
        )
        timeout = int(os.environ.get("PROXY_READ_TIMEOUT", "120"))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        except OSError as error:
            log(f"upstream {upstream}: {error!r}")
            status, body = 502, json.dumps({"exc_type": "BadGateway", "error": str(error)}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Frontend-Version", VERSION)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = proxy  # noqa: N815 - http.server's method names


def start_frontend(argv: list[str]) -> int:
    # nginx resolves its upstreams once at start and exits when one does not resolve.
    for variable in ("BACKEND", "SOCKETIO"):
        if not _resolvable(os.environ[variable]):
            log(f'[emerg] host not found in upstream "{os.environ[variable]}"')
            return 1
    serve(8080, FrontendHandler)
    return 0


# --- websocket (node .../socketio.js) ---------------------------------------------------------


class WebsocketHandler(JsonHandler):
    routes: ClassVar[dict[tuple[str, str], Route]] = {
        ("GET", "/socket.io/"): lambda handler: (
            200,
            {"message": "socketio", "redis": redis_client("redis_socketio").ping()},
        ),
    }


def start_websocket(argv: list[str]) -> int:
    if not argv or not argv[0].endswith("socketio.js"):
        log(f"node: only socketio.js is stood in for, got {argv}")
        return 2
    # socketio.js subscribes to the queue Redis before it serves; without it, it crashes.
    redis_client("redis_socketio").ping()
    serve(9000, WebsocketHandler)
    return 0


# --- bench: workers, scheduler, and what the site jobs call ----------------------------------


def _stopping() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop.set())
    return stop


def bench_worker(queues: list[str]) -> int:
    stop = _stopping()
    queue = redis_client("redis_queue")
    keys = [f"rq:queue:{name}" for name in queues]
    log(f"worker on {','.join(queues)}")
    while not stop.is_set():
        item = queue.blpop(keys, timeout=1)
        if item is None:
            continue
        job = json.loads(item[1])
        connection = site_connection(job["site"])
        with contextlib.closing(connection), connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO `{NOTES_TABLE}` (title) VALUES (%s)", (job["title"],))
    return 0


def bench_schedule() -> int:
    stop = _stopping()
    queue = redis_client("redis_queue")
    while not stop.is_set():
        queue.set(SCHEDULER_HEARTBEAT, f"{VERSION} {time.time():.0f}")
        stop.wait(5)
    return 0


def _write_json(path: Path, content: dict[str, Any]) -> None:
    # Written beside and renamed, so a process reading the config never sees half a file.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=1))
    partial.replace(path)


def bench_set_config(site: str | None, argv: list[str]) -> int:
    """``bench [--site SITE] set-config [-g] [-p] KEY VALUE``, flags also combined (``-gp``)."""
    flags = {letter for arg in argv if arg.startswith("-") for letter in arg.lstrip("-")}
    operands = [arg for arg in argv if not arg.startswith("-")]
    if len(operands) != 2 or not flags <= {"g", "p"}:
        log(f"bench set-config: expected [-g] [-p] KEY VALUE, got {argv}")
        return 2
    key, text = operands
    value = json.loads(text) if "p" in flags else text
    if "g" in flags:
        path = SITES / "common_site_config.json"
    elif site is not None and site_config(site) is not None:
        path = SITES / site / "site_config.json"
    else:
        log(f"bench set-config: site {site} does not exist (or -g missing)")
        return 1
    content = json.loads(path.read_text()) if path.is_file() else {}
    _write_json(path, {**content, key: value})
    return 0


# bench new-site's options, and their defaults; None marks a flag.
NEW_SITE_OPTIONS: dict[str, str | None] = {
    "--mariadb-user-host-login-scope": "localhost",
    "--admin-password": "",
    "--db-root-username": "root",
    "--db-root-password": "",
    "--install-app": "",  # repeatable
    "--set-default": None,
}


def _new_site_options(argv: list[str]) -> tuple[str, dict[str, list[str]]]:
    """The site and each option's values. Like click, which bench uses, an option's value is
    the next argument whatever it looks like: a password may start with a dash."""
    site, values = None, {option: [] for option in NEW_SITE_OPTIONS}
    arguments = iter(argv)
    for argument in arguments:
        option, equals, inline = argument.partition("=")
        if option not in NEW_SITE_OPTIONS:
            if argument.startswith("--") or site is not None:
                raise ValueError(f"unexpected argument {argument!r}")
            site = argument
        elif NEW_SITE_OPTIONS[option] is None:
            values[option].append("yes")
        else:
            value = inline if equals else next(arguments, None)
            if value is None:
                raise ValueError(f"{option} needs a value")
            values[option].append(value)
    if site is None:
        raise ValueError("no site name given")
    return site, values


def admin_password_hash(password: str, salt: str) -> str:
    """How the stand-in keeps the Administrator's password in ``__Auth`` (Frappe: pbkdf2)."""
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), ADMIN_HASH_ROUNDS)
    return f"pbkdf2_sha256${ADMIN_HASH_ROUNDS}${salt}${derived.hex()}"


def _root_connection(common: dict[str, Any], user: str, password: str):
    import pymysql

    return pymysql.connect(
        host=common["db_host"],
        port=int(common.get("db_port", 3306)),
        user=user,
        password=password,
        connect_timeout=5,
    )


def bench_new_site(argv: list[str]) -> int:
    """What ``bench new-site`` leaves behind: a database and its user (at the login scope
    given), the Administrator's password, the installed apps, the site's config, and with
    ``--set-default`` the bench's default site. Like bench, it refuses an existing site, an app
    the bench does not have (``sites/apps.txt``, written by the configurator) and a bench with
    no ``db_host`` configured."""
    try:
        site, values = _new_site_options(argv)
    except ValueError as error:
        log(f"new-site: {error}")
        return 2

    def option(name: str) -> str:
        return values[name][-1] if values[name] else str(NEW_SITE_OPTIONS[name])

    apps = values["--install-app"]
    # bench would prompt for them; a job has no terminal.
    if not option("--admin-password") or not option("--db-root-password"):
        log("new-site: --admin-password and --db-root-password are required")
        return 2
    if site_config(site) is not None:
        log(f"new-site: site {site} already exists")
        return 1
    common_path = SITES / "common_site_config.json"
    common = json.loads(common_path.read_text()) if common_path.is_file() else {}
    if "db_host" not in common:
        log("new-site: no db_host in common_site_config.json (run the configurator first)")
        return 1
    apps_file = SITES / "apps.txt"
    bench_apps = apps_file.read_text().split() if apps_file.is_file() else []
    missing = [app for app in ["frappe", *apps] if app not in bench_apps]
    if missing:
        log(f"new-site: app(s) {', '.join(missing)} not in sites/apps.txt")
        return 1
    name = "_" + secrets.token_hex(8)
    password = secrets.token_urlsafe(16)
    scope = option("--mariadb-user-host-login-scope")
    salt = secrets.token_hex(8)
    connection = _root_connection(
        common, option("--db-root-username"), option("--db-root-password")
    )
    with contextlib.closing(connection), connection.cursor() as cursor:
        for statement, args in (
            (f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", None),
            ("CREATE USER %s@%s IDENTIFIED BY %s", (name, scope, password)),
            (f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (name, scope)),
            (
                f"CREATE TABLE `{name}`.`{NOTES_TABLE}` "
                "(name INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(140) NOT NULL)",
                None,
            ),
            (
                f"CREATE TABLE `{name}`.`__Auth` (doctype VARCHAR(140), name VARCHAR(255), "
                "fieldname VARCHAR(140), password TEXT, PRIMARY KEY (doctype, name, fieldname))",
                None,
            ),
            (
                f"INSERT INTO `{name}`.`__Auth` VALUES ('User', 'Administrator', 'password', %s)",
                (admin_password_hash(option("--admin-password"), salt),),
            ),
            (
                f"CREATE TABLE `{name}`.`{INSTALLED_APPS_TABLE}` "
                "(idx INT PRIMARY KEY, app_name VARCHAR(140) NOT NULL)",
                None,
            ),
        ):
            cursor.execute(statement, args)
        cursor.executemany(
            f"INSERT INTO `{name}`.`{INSTALLED_APPS_TABLE}` VALUES (%s, %s)",
            list(enumerate(dict.fromkeys(["frappe", *apps]), start=1)),
        )
        connection.commit()
    (SITES / site).mkdir(parents=True, exist_ok=True)
    _write_json(
        SITES / site / "site_config.json",
        {"db_name": name, "db_password": password, "db_type": "mariadb"},
    )
    if values["--set-default"]:
        _write_json(common_path, {**json.loads(common_path.read_text()), "default_site": site})
    log(f"created site {site} (database {name}, apps {', '.join(apps)})")
    return 0


def bench_migrate(site: str) -> int:
    """``bench --site SITE|all migrate``: a row per site in the migrations table, naming the
    image's version. ``STANDIN_FAIL_MIGRATE=yes`` makes it fail after the first site's message,
    as a broken patch would, so the tests can see what a failed migration leaves behind."""
    sites = sorted(path.parent.name for path in SITES.glob("*/site_config.json"))
    if site != "all":
        if site not in sites:
            log(f"migrate: site {site} does not exist")
            return 1
        sites = [site]
    for name in sites:
        print(f"Migrating {name}", flush=True)
        if os.environ.get("STANDIN_FAIL_MIGRATE") == "yes":
            log(f"migrate {name}: simulated failure (STANDIN_FAIL_MIGRATE=yes)")
            return 1
        connection = site_connection(name)
        with contextlib.closing(connection), connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS `{MIGRATIONS_TABLE}` (name INT AUTO_INCREMENT "
                "PRIMARY KEY, version VARCHAR(140) NOT NULL, migrated_at DATETIME NOT NULL)"
            )
            cursor.execute(
                f"INSERT INTO `{MIGRATIONS_TABLE}` (version, migrated_at) VALUES (%s, NOW())",
                (VERSION,),
            )
    return 0


def bench(argv: list[str]) -> int:
    match argv:
        case ["worker", "--queue", queues]:
            return bench_worker(queues.split(","))
        case ["schedule"]:
            return bench_schedule()
        case ["set-config", *options]:
            return bench_set_config(None, options)
        case ["--site", site, "set-config", *options]:
            return bench_set_config(site, options)
        case ["new-site", *options]:
            return bench_new_site(options)
        case ["--site", site, "migrate"]:
            return bench_migrate(site)
    log(f"bench: unsupported arguments {argv}")
    return 2


# --- mailpit ---------------------------------------------------------------------------------


class MailpitHandler(JsonHandler):
    routes: ClassVar[dict[tuple[str, str], Route]] = {
        ("GET", "/readyz"): lambda handler: (200, {"message": "ok"})
    }


def mailpit(argv: list[str]) -> int:
    if argv == ["readyz"]:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8025/readyz", timeout=3) as response:
                return 0 if response.status == 200 else 1
        except OSError:
            return 1
    serve(8025, MailpitHandler)
    return 0


# --- probe: the tests' client, run inside the swarm -------------------------------------------


def probe_get(url: str, timeout: float) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def probe_loop(url: str, count: int, interval: float, timeout: float, stop_file: str) -> int:
    """At most ``count`` GETs ``interval`` apart; ends early once ``stop_file`` exists."""
    sent = failed = 0
    versions: dict[str, int] = {}
    errors: list[str] = []
    started = time.monotonic()
    for _ in range(count):
        if os.path.exists(stop_file):
            break
        sent += 1
        try:
            version = probe_get(url, timeout)["version"]
            versions[version] = versions.get(version, 0) + 1
        except Exception as error:
            failed += 1
            if len(errors) < 20:
                errors.append(f"{time.monotonic() - started:.2f}s {error!r}")
        time.sleep(interval)
    summary = {
        "sent": sent,
        "failed": failed,
        "versions": versions,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(summary), flush=True)
    return 0


def answers(protocol: str, host: str, port: int, timeout: float) -> bool:
    """True only when a real MariaDB or Redis answers at the address.

    An accepted TCP connection proves nothing: a transparent proxy on the way out of a machine
    may accept connections to any address. So MariaDB must send its handshake (or an error
    packet) and Redis must answer PING.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            if protocol == "redis":
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-DENIED"))
            greeting = connection.recv(128)
            # A 3-byte length, sequence number 0, then protocol version 10 or an error (0xff).
            return len(greeting) > 5 and greeting[3] == 0 and greeting[4] in (10, 0xFF)
    except OSError:
        return False


def probe(argv: list[str]) -> int:
    match argv:
        case ["get", url]:
            print(json.dumps(probe_get(url, 10)))
            return 0
        case ["post", url, body]:
            request = urllib.request.Request(
                url, data=body.encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                print(response.read().decode())
            return 0
        case ["loop", url, count, interval, timeout, stop_file]:
            return probe_loop(url, int(count), float(interval), float(timeout), stop_file)
        case ["answers", ("mariadb" | "redis") as protocol, host, port, timeout]:
            return 0 if answers(protocol, host, int(port), float(timeout)) else 1
    log(f"probe: unsupported arguments {argv}")
    return 2


PROGRAMS: dict[str, Callable[[list[str]], int]] = {
    "start.sh": start_backend,
    "nginx-entrypoint.sh": start_frontend,
    "node": start_websocket,
    "bench": bench,
    "mailpit": mailpit,
    "probe": probe,
}


def main(argv: list[str]) -> int:
    name = os.path.basename(argv[0])
    if name not in PROGRAMS:
        log(f"called as {name!r}; expected one of {', '.join(PROGRAMS)}")
        return 2
    return PROGRAMS[name](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
