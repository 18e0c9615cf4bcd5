"""The web app behind gunicorn (``frappe.app:application``), for the live tier: started by the
image's ``start.sh`` as ``env/bin/python -m frappe.app``.

Like gunicorn with ``--preload`` it loads the app before it binds: the port stays closed for
``STANDIN_BOOT_SECONDS`` (18 by default, what the real backend took on 2 cores). Every request
goes through Frappe's ``init_request``: the site from X-Frappe-Site-Name or the Host header,
404 for a site that does not exist, 503 while the site is in maintenance mode. A build with
``STANDIN_BROKEN=http500`` listens and answers 500 to everything (each request imports every
app's hooks, and erpnext's fail to import); ``port`` never listens."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import frappe
from frappe import auth
from frappe.utils import cint

PORT = 8000


class Request:
    """What a route sees: the site, the form (query string and body), cookies and scheme."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.method = handler.command
        split = urlsplit(handler.path)
        self.path = split.path
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        self.form: dict[str, Any] = dict(parse_qsl(split.query))
        if body and "json" in (handler.headers.get("Content-Type") or ""):
            self.form.update(json.loads(body))
        elif body:
            self.form.update(parse_qsl(body.decode()))
        jar = SimpleCookie(handler.headers.get("Cookie") or "")
        self.cookies = {key: morsel.value for key, morsel in jar.items()}
        host = handler.headers.get("X-Frappe-Site-Name") or handler.headers.get("Host") or ""
        self.site = host.split(":", 1)[0]
        allowed = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
        self.scheme = auth.url_scheme(handler.headers, handler.client_address[0], allowed)
        self.ip = auth.request_ip(handler.headers, handler.client_address[0])
        # Frappe's Session takes the sid from the form first, then the cookie.
        self.sid = self.form.get("sid") or self.cookies.get("sid")
        self.set_cookies: list[str] = []

    def set_cookie(self, name: str, value: str, httponly: bool = False) -> None:
        self.set_cookies.append(
            auth.cookie(
                name,
                value,
                secure=self.scheme == "https",
                httponly=httponly,
                max_age=auth.SESSION_EXPIRY_SECONDS,
            )
        )


def login(request: Request) -> tuple[int, dict[str, Any]]:
    user, password = request.form.get("usr"), request.form.get("pwd")
    if not (user and password):
        return 401, {"message": "Incomplete login details", "exc_type": "AuthenticationError"}
    sid = auth.login(request.site, user, password)
    if sid is None:
        return 401, {"message": "Invalid login credentials", "exc_type": "AuthenticationError"}
    request.set_cookie("sid", sid, httponly=True)
    for name, value in (
        ("system_user", "yes"),
        ("full_name", user),
        ("user_id", user),
        ("user_image", ""),
    ):
        request.set_cookie(name, value)
    return 200, {"message": "Logged In", "home_page": "/app", "full_name": user}


def logout(request: Request) -> tuple[int, dict[str, Any]]:
    auth.logout(request.site, request.sid)
    request.set_cookie("sid", "Guest", httponly=True)
    return 200, {}


def get_user_info(request: Request) -> tuple[int, dict[str, Any]]:
    """frappe.realtime.get_user_info (allow_guest): what the realtime server authenticates by."""
    user = auth.session_user(request.site, request.sid)
    return 200, {
        "message": {
            "user": user,
            "user_type": auth.user_type(request.site, user),
            "installed_apps": frappe.installed_apps(request.site),
        }
    }


def get_logged_user(request: Request) -> tuple[int, dict[str, Any]]:
    user = auth.session_user(request.site, request.sid)
    if user == "Guest":
        return 403, {"exc_type": "PermissionError", "message": "Not permitted"}
    return 200, {"message": user}


def version(request: Request) -> tuple[int, dict[str, Any]]:
    (database,) = frappe.query(request.site, "SELECT VERSION()")[0]
    hits = frappe.redis_client("redis_cache").incr(f"{request.site}|version-requests")
    return 200, {"message": {"site": request.site, "database": database, "cache_hits": hits}}


def insert_note(site: str, title: str) -> None:
    """A background job's work (see enqueue)."""
    frappe.query(site, f"INSERT INTO `{frappe.NOTES_TABLE}` (title) VALUES (%s)", (title,))


def add_note(request: Request) -> tuple[int, dict[str, Any]]:
    title = str(request.form["title"])
    insert_note(request.site, title)
    return 200, {"data": {"title": title}}


def list_notes(request: Request) -> tuple[int, dict[str, Any]]:
    rows = frappe.query(request.site, f"SELECT title FROM `{frappe.NOTES_TABLE}` ORDER BY name")
    return 200, {"data": [title for (title,) in rows]}


def enqueue(request: Request) -> tuple[int, dict[str, Any]]:
    from frappe.utils.background_jobs import enqueue as rq_enqueue

    queue = request.form.get("queue", "default")
    job = rq_enqueue(
        request.site, "frappe.app.insert_note", queue=queue, title=str(request.form["title"])
    )
    return 200, {"message": {"job": job.id, "queue": job.origin}}


def request_ip(request: Request) -> tuple[int, dict[str, Any]]:
    """The client's address as Frappe sees it (frappe.local.request_ip), and what it came from."""
    return 200, {
        "message": {
            "request_ip": request.ip,
            "x_forwarded_for": request.headers.get("X-Forwarded-For"),
            "scheme": request.scheme,
        }
    }


def publish_realtime(request: Request) -> tuple[int, dict[str, Any]]:
    """frappe.publish_realtime as Python code calls it: a message on the queue Redis channel
    ``events`` that the realtime server relays to the site's namespace (to the user's room)."""
    room = request.form.get("room") or f"user:{request.form.get('user', 'Administrator')}"
    message = {
        "event": request.form["event"],
        "message": request.form.get("message"),
        "room": room,
        "namespace": request.site,
    }
    receivers = frappe.redis_client("redis_queue").publish("events", json.dumps(message))
    return 200, {"message": {"room": room, "receivers": receivers}}


ROUTES = {
    ("GET", "/api/method/ping"): lambda request: (200, {"message": "pong"}),
    ("POST", "/api/method/login"): login,
    ("GET", "/api/method/logout"): logout,
    ("POST", "/api/method/logout"): logout,
    ("GET", "/api/method/frappe.realtime.get_user_info"): get_user_info,
    ("POST", "/api/method/frappe.realtime.get_user_info"): get_user_info,
    ("GET", "/api/method/frappe.auth.get_logged_user"): get_logged_user,
    ("GET", "/api/method/version"): version,
    ("GET", "/api/resource/Note"): list_notes,
    ("POST", "/api/resource/Note"): add_note,
    ("POST", "/api/method/enqueue"): enqueue,
    ("POST", "/api/method/brandclub.publish_realtime"): publish_realtime,
    ("GET", "/api/method/brandclub.request_ip"): request_ip,
}


def respond(request: Request) -> tuple[int, dict[str, Any]]:
    frappe.get_hooks()  # an app that does not import fails every request (500)
    conf = frappe.get_conf(request.site) if request.site else {}
    if not request.site or frappe.site_config(request.site) is None or not conf.get("db_name"):
        return 404, {"exc_type": "NotFound", "message": f"{request.site} does not exist"}
    if not conf.get("db_host"):
        # frappe.connect with no db_host in the config: MariaDB on 127.0.0.1, where none runs.
        raise ConnectionRefusedError("Can't connect to MySQL server on '127.0.0.1' ([Errno 111])")
    if cint(conf.get("maintenance_mode")):
        return 503, {
            "exc_type": "SessionStopped",
            "exception": "frappe.exceptions.SessionStopped: Session Stopped",
        }
    route = ROUTES.get((request.method, request.path))
    if route is None:
        return 404, {"exc_type": "DoesNotExistError", "path": request.path}
    return route(request)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle_request(self) -> None:
        try:
            request = Request(self)
            status, payload = respond(request)
        except Exception as error:  # an exception in a route is Frappe's 500 with its type
            frappe.log(f"{self.command} {self.path}: {error!r}")
            request, status = None, 500
            payload = {"exc_type": type(error).__name__, "exception": str(error)}
        data = json.dumps({**payload, "version": frappe.VERSION}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Standin-Version", frappe.VERSION)
        for value in request.set_cookies if request else []:
            self.send_header("Set-Cookie", value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = handle_request  # noqa: N815 - http.server's method names


def serve(port: int = PORT) -> int:
    """Load, bind, serve until SIGTERM, then finish the requests in hand (gunicorn's graceful
    stop)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if frappe.BROKEN in ("port", "backend"):
        frappe.log(f"broken build: never listening on {port}")
        stop.wait()
        return 0
    try:
        auth.forwarded_allow_ips(os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))
    except ValueError as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        return 1
    boot = float(os.environ.get("STANDIN_BOOT_SECONDS", "18"))
    if stop.wait(boot):  # --preload: the app is imported before the socket is bound
        return 0
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = False
    server.block_on_close = True
    print(f"[INFO] Listening at: http://0.0.0.0:{port} (booted in {boot:.0f}s)", flush=True)
    threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    frappe.log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(serve(int(os.environ.get("STANDIN_PORT", PORT))))
