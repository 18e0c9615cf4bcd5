"""frappe.utils.password: encrypted fields (``__Auth`` rows with ``encrypted`` 1) under the
site's ``encryption_key`` (a Fernet-shaped key, as in Frappe v15). The stand-in's cipher is a
keyed stream with an HMAC tag from the standard library, not Fernet, but it fails the same way:
a site restored from another site's backup without that site's key cannot decrypt the fields,
and says what Frappe says ("Encryption key is invalid")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import frappe
from frappe import CommandError

INVALID_KEY = (
    "Encryption key is invalid! Please check site_config.json\n"
    "If you have recently restored the site you may need to copy the site config contaning "
    "original Encryption Key."
)


def generate_key() -> str:
    # Fernet.generate_key: 32 random bytes, URL-safe base64.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _key(site: str) -> bytes:
    key = (frappe.site_config(site) or {}).get("encryption_key")
    if not key:
        key = generate_key()
        frappe.update_site_config(site, "encryption_key", key)
    return key.encode()


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + 31) // 32
    return b"".join(
        hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(blocks)
    )[:length]


def encrypt(site: str, text: str) -> str:
    key, nonce, data = _key(site), os.urandom(16), text.encode()
    body = nonce + bytes(a ^ b for a, b in zip(data, _stream(key, nonce, len(data)), strict=True))
    return base64.urlsafe_b64encode(body + hmac.new(key, body, hashlib.sha256).digest()).decode()


def decrypt(site: str, token: str) -> str:
    key, raw = _key(site), base64.urlsafe_b64decode(token.encode())
    body, tag = raw[:-32], raw[-32:]
    if not hmac.compare_digest(tag, hmac.new(key, body, hashlib.sha256).digest()):
        raise CommandError(INVALID_KEY)
    nonce, data = body[:16], body[16:]
    return bytes(a ^ b for a, b in zip(data, _stream(key, nonce, len(data)), strict=True)).decode()


def set_encrypted_password(
    site: str, doctype: str, name: str, pwd: str, fieldname: str = "password"
) -> None:
    frappe.query(
        site,
        "REPLACE INTO `__Auth` (doctype, name, fieldname, password, encrypted) "
        "VALUES (%s, %s, %s, %s, 1)",
        (doctype, name, fieldname, encrypt(site, pwd)),
    )


def get_decrypted_password(site: str, doctype: str, name: str, fieldname: str = "password") -> str:
    rows = frappe.query(
        site,
        "SELECT password FROM `__Auth` WHERE doctype = %s AND name = %s AND fieldname = %s "
        "AND encrypted = 1",
        (doctype, name, fieldname),
    )
    if not rows:
        raise CommandError(f"Password not found for {doctype} {name} {fieldname}")
    return decrypt(site, rows[0][0])
