"""``python -m stacktools render``: write Compose-format stack files for a Pulumi stack.

Runs the real Pulumi program offline under mocks with the stack's config (no Pulumi CLI, no
swarm) and writes ``OUT/<stack>/<swarm stack>.yml`` for ``docker stack deploy``.

Secret config values come from environment variables (``BRANDCLUB_DB_ROOT_PASSWORD`` for
``brandclub:dbRootPassword``, ``BRANDCLUB_SECRET_NAME_KEY`` for ``brandclub:secretNameKey``);
they are never written, but Docker secret names end in a fingerprint of their value keyed by the
secret name key, so only the real values give the names ``pulumi up`` gives.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.config.secret_rules import NAMESPACE, OPTIONAL_SECRET_KEYS, SECRET_KEYS
from stacktools import pulumi_yaml
from stacktools.engine import STACKS, deep_merge
from stacktools.export import ExportError, export_stack, write

# Stand in for a secret not in the environment; they pass the program's checks (password
# strength, key length) and are never written.
PLACEHOLDER = "Not-Exported-Placeholder-0"
PLACEHOLDERS = {"secretNameKey": "not-exported-placeholder-secret-name-key"}


class UsageError(Exception):
    """A command-line value that cannot be used as given."""


def config_file_overrides(path: Path, notes: list[str] | None = None) -> dict[str, Any]:
    """Config keys from a YAML file: a ``config:`` block as in ``Pulumi.<stack>.yaml``, or the
    same keys at the top level, read as the Pulumi CLI reads a stack file (pulumi_yaml.py).

    ``notes`` collects top-level values the CLI would change (``imageTag: 1.10`` -> ``1.1``).
    """
    try:
        text = path.read_text()
        document = pulumi_yaml.load(text)
        rewrites = pulumi_yaml.top_level_rewrites(text)
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"--config {path}: {error}") from None
    for key, written, arrives in rewrites:
        if notes is not None:
            notes.append(
                f"--config {path}: {key}: {written} reaches the program as {arrives!r}, as in a "
                f"stack file; quote it to keep {written!r}"
            )
    if isinstance(document, dict) and set(document) == {"config"}:
        document = document["config"]
    if not isinstance(document, dict):
        raise UsageError(f"--config {path}: expected a mapping of config keys")
    bare = sorted(key for key in document if ":" not in str(key))
    if bare:
        raise UsageError(
            f"--config {path}: keys need their namespace, e.g. brandclub:services (found {bare})"
        )
    for key, value in document.items():
        _refuse_non_finite(f"--config {path}: {key}", value)
    return document


def set_override(assignment: str) -> dict[str, Any]:
    """``brandclub:services.backend.replicas=3`` as a nested override.

    A top-level key takes VALUE as text, exactly as ``pulumi config set KEY VALUE`` stores it
    (``brandclub:imageTag=1.10`` stays ``1.10``). Below the top level VALUE is read as it would
    be written at that place in the stack file (go-yaml v3, pulumi_yaml.py): ``2`` is a number,
    ``true`` a boolean, ``no`` and ``12:30`` are text.
    """
    key, separator, text = assignment.partition("=")
    if not separator or ":" not in key.split(".", 1)[0]:
        raise UsageError(f"--set {assignment}: expected namespace:key.path=value")
    parts = key.split(".")
    value: Any = text
    if len(parts) > 1 and text:
        try:
            value = pulumi_yaml.load(text)
        except yaml.YAMLError as error:
            raise UsageError(f"--set {assignment}: {error}") from None
        _refuse_non_finite(f"--set {key}", value)
    for part in reversed(parts[1:]):
        value = {part: value}
    return {parts[0]: value}


def _refuse_non_finite(where: str, value: Any) -> None:
    """The Pulumi CLI cannot store NaN or Infinity (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where}: {value} is no number a Pulumi config value can hold")
    for item in (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    ):
        _refuse_non_finite(where, item)


def secret_variable(key: str) -> str:
    """``dbRootPassword`` -> ``BRANDCLUB_DB_ROOT_PASSWORD``."""
    return "BRANDCLUB_" + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


def secrets_from_environment(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The program's secret config, and the required keys that fell back to the placeholder."""
    secrets: dict[str, str] = {}
    placeholders = []
    for key in SECRET_KEYS + OPTIONAL_SECRET_KEYS:
        value = environ.get(secret_variable(key))
        if value:
            secrets[f"{NAMESPACE}:{key}"] = value
        elif key in SECRET_KEYS:
            secrets[f"{NAMESPACE}:{key}"] = PLACEHOLDERS.get(key, PLACEHOLDER)
            placeholders.append(key)
    return secrets, placeholders


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stacktools", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser(
        "render",
        help="write docker stack deploy files for a Pulumi stack",
        description="Write OUT/<stack>/<swarm stack>.yml for every swarm stack the Pulumi "
        "program creates, and print the commands that deploy them.",
    )
    render.add_argument(
        "--stack",
        action="append",
        choices=STACKS,
        help="Pulumi stack to export; repeat for several (default: all)",
    )
    render.add_argument("--out", type=Path, default=Path("build"), help="output directory")
    render.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="YAML file of brandclub:* config merged over Pulumi.<stack>.yaml (repeatable)",
    )
    render.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one config value, e.g. brandclub:services.backend.replicas=2 (repeatable)",
    )
    render.add_argument(
        "--digest",
        metavar="sha256:...",
        help="pin the app image to this digest (default: plain repo:tag, no registry lookup)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    notes: list[str] = []
    try:
        overrides: dict[str, Any] = {}
        for path in arguments.config:
            overrides = deep_merge(overrides, config_file_overrides(path, notes))
        for assignment in arguments.set:
            overrides = deep_merge(overrides, set_override(assignment))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if arguments.digest:
        overrides = deep_merge(overrides, {f"{NAMESPACE}:imageDigest": arguments.digest})
    secrets, placeholders = secrets_from_environment(dict(os.environ))
    if placeholders:
        variables = ", ".join(secret_variable(key) for key in placeholders)
        print(
            f"note: {variables} not set: Docker secret names carry a placeholder's fingerprint",
            file=sys.stderr,
        )
    for stack in arguments.stack or STACKS:
        try:
            stack_export = export_stack(stack, overrides, secrets)
        except (ExportError, pulumi.RunError) as error:
            print(f"error: stack {stack}: {error}", file=sys.stderr)
            return 1
        paths = write(stack_export, arguments.out)
        directory = arguments.out / stack
        print(f"{stack}: wrote {', '.join(str(p) for p in paths)}")
        print(f"{stack}: to deploy, run in order:")
        for command in stack_export.commands(str(directory)):
            print(f"  {command}")
        for item in stack_export.not_exported:
            print(f"{stack}: not exported: {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
