"""What ``./deploy.sh local`` needs beyond the Pulumi CLI: the stack's config file outside the
tree, its passphrase, and its secrets generated on first use (docs/local.md).

The local stack's settings are the tracked ``Pulumi.local.yaml``; its secrets and the salt of its
passphrase are this machine's alone. ``pulumi config set --secret`` writes into the stack's config
file, so deploy.sh hands Pulumi a file of its own under ``.pulumi-local/`` (``--config-file``):
``prepare`` writes it on every run as the tracked file's text plus the salt and the encrypted
values it already held. The tracked file never holds ciphertext, so ``git status`` stays clean and
nobody commits a salt that every other machine's passphrase would then fail against.

    python -m stacktools.local_stack prepare DIR   passphrase (once, mode 600), config file
    python -m stacktools.local_stack create DIR    the stack, its salt moved into the config file
    python -m stacktools.local_stack secrets DIR   generate and store the secrets it lacks

``secrets`` hands each value to ``pulumi config set --secret`` on its STDIN (Pulumi reads a
value there when none is given): never an argument, an environment variable, or a line printed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

# The rules alone, not the model: deploy.sh runs this module three times on every deploy, and
# importing pydantic and the model would cost about 0.25 s of CPU each time.
from components.config.secret_rules import (
    NAMESPACE,
    SECRET_KEYS,
    SECRET_NAME_KEY_MIN_LENGTH,
    weak_password,
)

REPO = Path(__file__).resolve().parents[1]
STACK = "local"
TRACKED = REPO / f"Pulumi.{STACK}.yaml"
# What `pulumi stack init` and `pulumi config set --secret` add to a stack's config file.
SALT_KEY = "encryptionsalt"
# Not a config key: the passphrase of the stack's secrets provider (PULUMI_CONFIG_PASSPHRASE_FILE).
PASSPHRASE = "passphrase"
CONFIG_FILE = f"Pulumi.{STACK}.yaml"


class LocalStackError(Exception):
    """A tracked stack file this module cannot extend."""


def _config_block_start(text: str) -> int:
    """Where the ``config:`` block starts; it must be the file's last top-level key, so the
    secret entries can follow it."""
    tops = list(re.finditer(r"^(?![\s#])([^:\n]+):", text, re.M))
    names = [m[1] for m in tops]
    if names[-1:] != ["config"]:
        raise LocalStackError(f"{TRACKED.name}: `config:` must be the last top-level key")
    return tops[-1].start()


def _kept(path: Path) -> tuple[str | None, dict[str, str]]:
    """The salt and the encrypted values a config file holds (none if it does not exist)."""
    if not path.exists():
        return None, {}
    document: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    config = document.get("config") or {}
    secure = {
        key: value["secure"]
        for key, value in config.items()
        if isinstance(value, dict) and set(value) == {"secure"}
    }
    return document.get(SALT_KEY), secure


def config_file_text(tracked: str, salt: str | None, secure: dict[str, str]) -> str:
    """The tracked file's text, with the salt first and the secret entries last."""
    if re.search(r"^\s*secure:", tracked, re.M) or re.search(rf"^{SALT_KEY}:", tracked, re.M):
        raise LocalStackError(
            f"{TRACKED.name} holds encrypted values; they belong in .pulumi-local"
        )
    _config_block_start(tracked)
    head = (
        "# Written by ./deploy.sh local from Pulumi.local.yaml on every run; edit that file.\n"
        "# Only the salt and the secrets below are this file's own.\n"
    )
    if salt is not None:
        head += f"{SALT_KEY}: {json.dumps(salt)}\n"
    tail = "".join(
        f"  {key}:\n    secure: {json.dumps(value)}\n" for key, value in sorted(secure.items())
    )
    return head + tracked.rstrip("\n") + "\n" + tail


def write_config_file(path: Path, tracked: Path = TRACKED) -> None:
    salt, secure = _kept(path)
    path.write_text(config_file_text(tracked.read_text(), salt, secure))


def missing_secrets(path: Path) -> list[str]:
    """The secret keys every stack needs (components/config/secret_rules.py) that ``path`` lacks."""
    _, secure = _kept(path)
    return [key for key in SECRET_KEYS if f"{NAMESPACE}:{key}" not in secure]


def generate(key: str) -> str:
    """A fresh value from the OS's CSPRNG that the stack's validation accepts."""
    if key == "secretNameKey":
        return secrets.token_hex(max(32, SECRET_NAME_KEY_MIN_LENGTH))
    if key in ("dbRootPassword", "adminPassword"):
        while True:  # almost always once: 32 characters of [A-Za-z0-9_-]
            value = secrets.token_urlsafe(24)
            if weak_password(value) is None:
                return value
    if key == PASSPHRASE:
        return secrets.token_urlsafe(32)
    raise LocalStackError(f"no rule to generate {key!r}")


def prepare(state: Path) -> None:
    """The passphrase (made once, readable by its owner only) and the stack's config file."""
    passphrase = state / PASSPHRASE
    if not passphrase.exists():
        print(f"deploy.sh: generating the passphrase of its secrets ({passphrase}, mode 600)")
        # Created with its final mode: the passphrase is never readable by others, not even
        # for a moment.
        descriptor = os.open(passphrase, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate(PASSPHRASE))
    write_config_file(state / CONFIG_FILE)


def create_stack(state: Path) -> None:
    """Select the stack, creating it on first use. ``pulumi stack select`` takes no
    ``--config-file``: creating the stack, Pulumi writes the new salt into the stack file it
    detects, the tracked one, re-serialised. The salt moves into the config file of its own and
    the tracked file gets its text back, byte for byte, whatever happens."""
    # The file Pulumi detects: beside Pulumi.yaml in the working directory (deploy.sh's checkout).
    detected = Path(CONFIG_FILE)
    text = detected.read_text()
    try:
        command = ["pulumi", "stack", "select", "--create", STACK, "--non-interactive"]
        subprocess.run(command, check=True)
        salt, _ = _kept(detected)
    finally:
        detected.write_text(text)
    config = state / CONFIG_FILE
    kept_salt, secure = _kept(config)
    if salt is not None and kept_salt is None:
        config.write_text(config_file_text(text, salt, secure))


def store_secrets(state: Path) -> None:
    """Generate each secret the stack's config file lacks and store it encrypted."""
    config = state / CONFIG_FILE
    for key in missing_secrets(config):
        full_key = f"{NAMESPACE}:{key}"
        print(f"deploy.sh: generating the secret {full_key} (stored encrypted, never printed)")
        sys.stdout.flush()
        command = ["pulumi", "config", "set", "--secret", full_key]
        command += ["--stack", STACK, "--config-file", str(config), "--non-interactive"]
        subprocess.run(command, input=generate(key), text=True, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        match args:
            case ["prepare", state]:
                prepare(Path(state))
            case ["create", state]:
                create_stack(Path(state))
            case ["secrets", state]:
                store_secrets(Path(state))
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    except LocalStackError as error:
        print(f"local_stack: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        # The command names the key, never the value (it went to STDIN).
        print(f"local_stack: {' '.join(error.cmd)} failed ({error.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
