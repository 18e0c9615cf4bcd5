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
OPTIONAL_SECRET_KEYS = (
    "dbRootPasswordPrevious",
    "registryPassword",
    "backupOffsiteSecret",
    "backupOffsiteRecipients",
    "backupOffsiteIdentity",
)
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


# age's X25519 keys in Bech32 (age-encryption.org/v1): a recipient is public, an identity private.
_AGE_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")
_AGE_IDENTITY = re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}")


def _key_lines(text: str) -> list[str]:
    """The lines that are not blank or comments (age-keygen writes '# public key: ...')."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def bad_age_recipients(text: str) -> str | None:
    """What backupOffsiteRecipients lacks, or None. Never contains the value."""
    lines = _key_lines(text)
    if any(_AGE_IDENTITY.fullmatch(line) for line in lines):
        return (
            "public age recipients, not the private identity (AGE-SECRET-KEY-1...): the backup "
            "service only encrypts; give the identity's recipient (age-keygen -y identity.txt) "
            "and keep the identity offline"
        )
    if not lines or not all(_AGE_RECIPIENT.fullmatch(line) for line in lines):
        return "one or more age recipients (age1... from age-keygen), one per line"
    return None


def bad_age_identity(text: str) -> str | None:
    """What backupOffsiteIdentity lacks, or None. Never contains the value."""
    lines = _key_lines(text)
    if not lines or not all(_AGE_IDENTITY.fullmatch(line) for line in lines):
        return (
            "age identities (AGE-SECRET-KEY-1..., the file age-keygen wrote; its comment "
            "lines may stay), one per line"
        )
    return None
