"""Pulumi's passphrase secrets provider, as its Go source defines it, so tests can stand in for
``pulumi config set --secret`` (encrypt) and for the CLI reading a stack file (decrypt).

The key is PBKDF2-SHA256 over the passphrase with the stack's 8-byte salt, 1,000,000 rounds,
32 bytes; each value is AES-256-GCM with a fresh 12-byte nonce, written ``v1:<nonce>:<sealed>``
in base64. The stack file's ``encryptionsalt`` is ``v1:<salt>:`` followed by the word "pulumi"
encrypted that way, which is how the CLI tells a wrong passphrase.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROUNDS = 1_000_000
CHECK_WORD = "pulumi"


class WrongPassphraseError(Exception):
    pass


@functools.lru_cache(maxsize=8)
def _key(passphrase: str, salt: bytes) -> bytes:
    # A million rounds take about 0.3 s: derive each key once per test session.
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, ROUNDS, 32)


def _seal(key: bytes, plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), None)
    return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


def _open(key: bytes, value: str) -> str:
    version, nonce, sealed = value.split(":")
    assert version == "v1", value
    try:
        return AESGCM(key).decrypt(base64.b64decode(nonce), base64.b64decode(sealed), None).decode()
    except InvalidTag as error:
        raise WrongPassphraseError from error


def new_salt(passphrase: str, salt: bytes = b"unitsalt") -> str:
    """The ``encryptionsalt`` a new passphrase stack gets."""
    return f"v1:{base64.b64encode(salt).decode()}:{_seal(_key(passphrase, salt), CHECK_WORD)}"


def _unlock(passphrase: str, encryption_salt: str) -> bytes:
    version, salt, check = encryption_salt.split(":", 2)
    assert version == "v1", encryption_salt
    key = _key(passphrase, base64.b64decode(salt))
    if _open(key, check) != CHECK_WORD:
        raise WrongPassphraseError
    return key


def encrypt(passphrase: str, encryption_salt: str, plaintext: str) -> str:
    return _seal(_unlock(passphrase, encryption_salt), plaintext)


def decrypt(passphrase: str, encryption_salt: str, ciphertext: str) -> str:
    return _open(_unlock(passphrase, encryption_salt), ciphertext)
