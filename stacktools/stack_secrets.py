"""Where CI gets each pipeline stack's secrets: committed ciphertext in its stack file.

Every pipeline stack uses Pulumi's passphrase secrets provider. ``pulumi config set --secret``
writes the encrypted value into ``Pulumi.<stack>.yaml`` and the provider's salt as its top-level
``encryptionsalt``; both are committed, and the passphrase that unlocks them is the environment
secret ``PULUMI_CONFIG_PASSPHRASE`` of the stack's GitHub environments (docs/secrets.md#in-ci).
A clean checkout plus that one secret is then all ``pulumi preview``/``up`` need.

    python -m stacktools.stack_secrets check --stack prod

fails, naming every missing piece and the command that adds it, before any job reaches the
Pulumi CLI's "missing required configuration" halfway through a run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from components.config.secret_rules import NAMESPACE, SECRET_KEYS

REPO = Path(__file__).resolve().parents[1]
# What the passphrase provider writes at the top of a stack file (`pulumi stack init
# --secrets-provider passphrase`, or `pulumi stack change-secrets-provider passphrase`); the
# other providers write `secretsprovider` and `encryptedkey` instead, and the passphrase
# provider removes both.
SALT_KEY = "encryptionsalt"
OTHER_PROVIDER_KEYS = ("secretsprovider", "encryptedkey")
# Pulumi's symmetric crypter tags every value (and the salt) with its format version.
CIPHERTEXT_PREFIX = "v1:"


def is_ciphertext(value: Any) -> bool:
    """A config value as ``pulumi config set --secret`` writes it: ``{secure: v1:…}``."""
    return (
        isinstance(value, Mapping)
        and set(value) == {"secure"}
        and isinstance(value["secure"], str)
        and value["secure"].startswith(CIPHERTEXT_PREFIX)
    )


def problems(document: Mapping[str, Any], stack: str) -> list[str]:
    """What keeps a stack file from giving CI its secrets; empty when nothing does."""
    found = []
    others = [key for key in OTHER_PROVIDER_KEYS if key in document]
    if others:
        found.append(
            f"Pulumi.{stack}.yaml names another secrets provider ({', '.join(others)}): "
            f"pulumi stack change-secrets-provider passphrase --stack {stack}"
        )
    salt = document.get(SALT_KEY)
    if not (isinstance(salt, str) and salt.startswith(CIPHERTEXT_PREFIX)):
        found.append(
            f"Pulumi.{stack}.yaml has no {SALT_KEY}: the stack is not on the passphrase "
            f"provider; pulumi stack change-secrets-provider passphrase --stack {stack}"
        )
    config = document.get("config") or {}
    for key in SECRET_KEYS:
        name = f"{NAMESPACE}:{key}"
        if name not in config:
            found.append(f"no {name}: pulumi config set --secret {name} <value> --stack {stack}")
        elif not is_ciphertext(config[name]):
            found.append(
                f"{name} is in plain text: pulumi config set --secret {name} <value> "
                f"--stack {stack}"
            )
    return found


def stack_problems(stack: str, repo: Path | None = None) -> list[str]:
    path = (repo or REPO) / f"Pulumi.{stack}.yaml"
    return problems(yaml.safe_load(path.read_text()) or {}, stack)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacktools.stack_secrets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="the stack file carries every required secret")
    check.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    found = stack_problems(args.stack)
    for problem in found:
        print(f"stack_secrets: {problem}", file=sys.stderr)
    if found:
        print(
            "stack_secrets: commit the encrypted values (docs/secrets.md#in-ci); the passphrase "
            "is the GitHub environment secret PULUMI_CONFIG_PASSPHRASE",
            file=sys.stderr,
        )
        return 2
    print(f"stack_secrets: Pulumi.{args.stack}.yaml carries every required secret, encrypted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
