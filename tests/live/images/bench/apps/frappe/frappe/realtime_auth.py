"""How Frappe v15's realtime server lets a socket into a site's namespace
(realtime/middlewares/authenticate.js and realtime/utils.js), as plain functions: no import of
the stand-in or of socket.io, so the unit tier can test them.

In order: the namespace must be ``/<site>`` (site from X-Frappe-Site-Name, the default site for
localhost, the Origin's hostname, else the Host's); the Origin's hostname must be the Host's; a
``sid`` cookie must come; then the server asks Frappe who that is with an HTTP GET to
``<Origin>/api/method/frappe.realtime.get_user_info?sid=<sid>`` (superagent in v15: it follows
redirects, and its errors read like Node's). Any failure refuses the socket with
``Unauthorized: <error>``."""

from __future__ import annotations

import errno
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from http.client import responses
from http.cookies import SimpleCookie

USER_INFO = "/api/method/frappe.realtime.get_user_info"
LOCALHOSTS = ("localhost", "127.0.0.1")


class RefusedError(Exception):
    """The connect error the client gets: ``{"message": str(error)}``."""


def get_hostname(url: str | None) -> str | None:
    """utils.js get_hostname: the host part of a URL or a Host header, without the port."""
    if not url:
        return None
    if "://" in url:
        url = url.split("/")[2]
    return url.split(":", 1)[0] if ":" in url else url


def get_site_name(headers: Mapping[str, str], default_site: str | None) -> str | None:
    if headers.get("x-frappe-site-name"):
        return get_hostname(headers["x-frappe-site-name"])
    if default_site and get_hostname(headers.get("host")) in LOCALHOSTS:
        return default_site
    if headers.get("origin"):
        return get_hostname(headers["origin"])
    return get_hostname(headers.get("host"))


def check_handshake(namespace: str, headers: Mapping[str, str], default_site: str | None) -> str:
    """The checks before the HTTP call; returns the sid. ``headers`` keys are lower case."""
    if namespace.removeprefix("/") != get_site_name(headers, default_site):
        raise RefusedError("Invalid namespace")
    if get_hostname(headers.get("host")) != get_hostname(headers.get("origin")):
        raise RefusedError("Invalid origin")
    if not headers.get("cookie"):
        raise RefusedError("No cookie transmitted.")
    jar = SimpleCookie()
    jar.load(headers["cookie"])
    if "sid" not in jar or not jar["sid"].value:
        raise RefusedError("No sid transmitted.")
    return jar["sid"].value


def node_error(error: BaseException, address: str, port: int) -> str:
    """A connection failure worded as Node's http module words it (``${e}`` of superagent):
    Node names the address it connected to, not the host name."""
    reason = getattr(error, "reason", error)
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"Error: connect ETIMEDOUT {address}:{port}"
    code = getattr(reason, "errno", None)
    name = errno.errorcode.get(code, "ECONNRESET") if code else "ECONNRESET"
    return f"Error: connect {name} {address}:{port}"


def user_info_url(origin: str | None, sid: str) -> str:
    """utils.js get_url: the request's Origin plus the path (no server_ip configured)."""
    return f"{origin}{USER_INFO}?{urllib.parse.urlencode({'sid': sid})}"


def fetch_user_info(origin: str | None, sid: str, timeout: float = 30) -> dict:
    """The session's user info, or RefusedError("Unauthorized: ...") as the socket's error."""
    url = user_info_url(origin, sid)
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme not in ("http", "https") or not host:
        # No usable Origin: superagent cannot even build the request.
        raise RefusedError(f"Unauthorized: TypeError: Invalid URL: {url}")
    try:
        # Node looks the name up first (getaddrinfo), then connects to the first address.
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, UnicodeError) as error:
        raise RefusedError(f"Unauthorized: Error: getaddrinfo ENOTFOUND {host}") from error
    request = urllib.request.Request(
        url, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise RefusedError(
            f"Unauthorized: Error: {responses.get(error.code, 'Unsuccessful HTTP response')}"
        ) from error
    except (urllib.error.URLError, OSError) as error:
        raise RefusedError(f"Unauthorized: {node_error(error, address, port)}") from error
    try:
        message = json.loads(body)["message"]
        return {"user": message["user"], "user_type": message.get("user_type")}
    except (ValueError, KeyError, TypeError) as error:
        raise RefusedError(
            "Unauthorized: TypeError: Cannot read properties of undefined (reading 'user')"
        ) from error
