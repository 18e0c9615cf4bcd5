"""Sessions and cookies as Frappe v15's frappe/auth.py and frappe/sessions.py hand them out:
``POST /api/method/login`` checks usr/pwd and starts a session; its ``sid`` cookie is HttpOnly,
SameSite=Lax, lives for the session expiry, and is Secure only when the request's scheme is
https (``frappe.local.request.scheme``, which gunicorn derives from X-Forwarded-Proto when the
peer is one of FORWARDED_ALLOW_IPS)."""

from __future__ import annotations

import ipaddress
import secrets
from email.utils import formatdate
from time import time

import frappe
from frappe.installer import AUTH_TABLE, SESSIONS_TABLE, USER_TABLE, check_password_hash

# System Settings' default session expiry in v15: 240 hours.
SESSION_EXPIRY_SECONDS = 240 * 3600
# gunicorn's secure_scheme_headers.
SECURE_SCHEME_HEADERS = {
    "X-Forwarded-Protocol": "ssl",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Ssl": "on",
}


def forwarded_allow_ips(allowed: str) -> list[str]:
    """gunicorn 23's forwarded_allow_ips (Frappe v15 runs 23.0.0): ``*`` or IP addresses,
    comma separated; anything else (a network such as 10.0.0.0/8 too) stops gunicorn at start
    with ValueError, as its validate_string_to_addr_list does."""
    entries = [entry.strip() for entry in allowed.split(",") if entry.strip()]
    for entry in entries:
        if entry != "*":
            ipaddress.ip_address(entry)
    return entries


def trusted_proxy(peer: str, allowed: str) -> bool:
    entries = forwarded_allow_ips(allowed)
    return "*" in entries or peer in entries


def url_scheme(headers, peer: str, allowed: str) -> str:
    """wsgi.url_scheme as gunicorn sets it: https only from a trusted peer's secure header."""
    if not trusted_proxy(peer, allowed):
        return "http"
    for name, value in SECURE_SCHEME_HEADERS.items():
        if headers.get(name) == value:
            return "https"
    return "http"


def request_ip(headers, peer: str) -> str:
    """frappe.local.request_ip as Frappe v15's HTTPRequest.set_request_ip sets it: the first
    address of X-Forwarded-For, else the peer (gunicorn's REMOTE_ADDR). What Frappe records as
    the client (login history, rate limits, the activity log)."""
    forwarded = headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    return peer or "127.0.0.1"


def cookie(name: str, value: str, *, secure: bool, httponly: bool, max_age: int | None) -> str:
    """A Set-Cookie value in werkzeug's attribute order."""
    parts = [f"{name}={value}"]
    if max_age is not None:
        parts += [f"Expires={formatdate(time() + max_age, usegmt=True)}", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    parts += ["Path=/", "SameSite=Lax"]
    return "; ".join(parts)


def login(site: str, user: str, password: str) -> str | None:
    """A new session id for valid credentials of an enabled user, else None."""
    rows = frappe.query(
        site,
        f"SELECT a.password FROM `{AUTH_TABLE}` a JOIN `{USER_TABLE}` u ON u.name = a.name "
        "WHERE a.doctype = 'User' AND a.fieldname = 'password' AND a.encrypted = 0 "
        "AND a.name = %s AND u.enabled = 1",
        (user,),
    )
    if not rows or not check_password_hash(password, rows[0][0]):
        return None
    sid = secrets.token_hex(28)
    frappe.query(site, f"INSERT INTO `{SESSIONS_TABLE}` VALUES (%s, %s, NOW())", (sid, user))
    return sid


def session_user(site: str, sid: str | None) -> str:
    """The session's user; Guest for no, an unknown or an expired sid."""
    if not sid or sid == "Guest":
        return "Guest"
    rows = frappe.query(
        site,
        f"SELECT user FROM `{SESSIONS_TABLE}` WHERE sid = %s "
        "AND lastupdate > NOW() - INTERVAL %s SECOND",
        (sid, SESSION_EXPIRY_SECONDS),
    )
    return rows[0][0] if rows else "Guest"


def user_type(site: str, user: str) -> str:
    rows = frappe.query(site, f"SELECT user_type FROM `{USER_TABLE}` WHERE name = %s", (user,))
    return rows[0][0] if rows else "Website User"


def logout(site: str, sid: str | None) -> None:
    if sid:
        frappe.query(site, f"DELETE FROM `{SESSIONS_TABLE}` WHERE sid = %s", (sid,))
