"""Which stack keys are secrets, and what makes a secret's value acceptable.

Standard library only: the model (components/config/model.py) validates with these rules, and
the tools that generate secrets for a new stack (stacktools/local_stack.py, run by ./deploy.sh
local on every deploy) check their values against the same rules without importing pydantic or
Pulumi.
"""

from __future__ import annotations

import re

NAMESPACE = "brandclub"
# Keys that must be encrypted stack secrets; their values are never echoed in errors.
SECRET_KEYS = ("dbRootPassword", "adminPassword", "secretNameKey")
# Secrets that only some settings need (the model says which); encrypted when present.
OPTIONAL_SECRET_KEYS = ("dbRootPasswordPrevious", "registryPassword", "backupOffsiteSecret")
# brandclub:secretNameKey: long enough that nobody guesses it (openssl rand -hex 32 gives 64).
SECRET_NAME_KEY_MIN_LENGTH = 32
# dbRootPassword / adminPassword: length and character classes (docs/secrets.md#password-strength).
PASSWORD_MIN_LENGTH = 12
PASSWORD_MIN_CLASSES = 3
_CHARACTER_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")


def weak_password(password: str) -> str | None:
    """What a password lacks to be strong, or None. Never contains the password: the message
    ends up in CI logs."""
    classes = sum(bool(re.search(pattern, password)) for pattern in _CHARACTER_CLASSES)
    if len(password) >= PASSWORD_MIN_LENGTH and classes >= PASSWORD_MIN_CLASSES:
        return None
    return (
        f"a strong password: at least {PASSWORD_MIN_LENGTH} characters and "
        f"{PASSWORD_MIN_CLASSES} of the 4 character classes (lower case, upper case, "
        "digits, other characters); generate one with: openssl rand -base64 24"
    )


def short_secret_name_key(key: str) -> str | None:
    """What a secretNameKey lacks, or None."""
    if len(key) >= SECRET_NAME_KEY_MIN_LENGTH:
        return None
    return (
        f"at least {SECRET_NAME_KEY_MIN_LENGTH} characters of random data, e.g. "
        "openssl rand -hex 32"
    )
