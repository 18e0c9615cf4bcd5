"""Turn ``pulumi refresh --preview-only --json`` output into a readable drift report.

    python -m stacktools.drift refresh.json [--stack prod] [--summary FILE]

The engine's JSON document (a "preview digest": ``steps`` with ``op``, ``urn``, ``oldState`` /
``newState`` and ``detailedDiff``; ``diagnostics``; ``changeSummary``; see
``tests/fixtures/drift/README.md``) becomes one entry per drifted resource: its type and name,
and per property the value in Pulumi's state against the value live on the swarm. Secrets are
shown as ``[secret]``. Markdown goes to ``--summary`` or ``$GITHUB_STEP_SUMMARY`` (the job
summary), text to stdout.

Exit status: 0 no drift, 1 drift, 2 the document could not be read or the engine reported an
error (then the report may be incomplete, so it is never taken for "no drift").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NO_DRIFT, DRIFT, UNREADABLE = 0, 1, 2
# The key that marks a secret in the engine's JSON (its wire format; the Pulumi SDK names it
# rpc._special_sig_key, and tests/components/test_pulumi_sdk.py checks they agree). Kept here so
# the report, which CI runs on the engine's output, needs no SDK.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_TEXT = "[secret]"
# --expect-no-changes turns drift into this error; it is the finding, not an engine failure.
EXPECTED_NO_CHANGES = "no changes were expected"
UNCHANGED_OPS = frozenset({"same", "read"})
GONE_OPS = frozenset({"delete", "delete-replaced", "discard", "discard-replaced"})
_MISSING = object()
_PATH_TOKEN = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


class DocumentError(Exception):
    """The engine's output is not a preview digest this tool can read."""


@dataclass(frozen=True)
class Change:
    path: str
    state: str
    live: str


@dataclass(frozen=True)
class Drifted:
    type: str
    name: str
    swarm_name: str | None
    kind: str  # "changed" or "deleted"
    changes: tuple[Change, ...] = ()

    @property
    def title(self) -> str:
        swarm = f" (`{self.swarm_name}`)" if self.swarm_name else ""
        return f"{self.type} `{self.name}`{swarm}"


@dataclass
class Report:
    stack: str | None
    drifted: list[Drifted] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return UNREADABLE
        return DRIFT if self.drifted else NO_DRIFT


def split_path(path: str) -> list[str | int]:
    """``taskSpec.networksAdvanceds[0]["id"]`` -> ``["taskSpec", "networksAdvanceds", 0, "id"]``."""
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if not match or match.end() == position:
            raise DocumentError(f"cannot read property path {path!r}")
        name, index, quoted = match.groups()
        if index is not None:
            parts.append(int(index))
        elif quoted is not None:
            parts.append(json.loads(f'"{quoted}"'))
        else:
            parts.append(name)
        position = match.end()
    return parts


def _lookup(value: Any, parts: Sequence[str | int]) -> Any:
    for part in parts:
        if _is_secret(value):
            return value  # everything below a secret is secret
        in_list = isinstance(part, int) and isinstance(value, list) and part < len(value)
        in_map = isinstance(part, str) and isinstance(value, Mapping) and part in value
        if not (in_list or in_map):
            return _MISSING
        value = value[part]
    return value


def _is_secret(value: Any) -> bool:
    return value == SECRET_TEXT or (isinstance(value, Mapping) and SECRET_SIG_KEY in value)


def render_value(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if _is_secret(value):
        return SECRET_TEXT
    if isinstance(value, Mapping):
        return json.dumps({k: _blind(v) for k, v in value.items()}, sort_keys=True)
    if isinstance(value, list):
        return json.dumps([_blind(v) for v in value])
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, str) else str(value)


def _blind(value: Any) -> Any:
    if _is_secret(value):
        return SECRET_TEXT
    if isinstance(value, Mapping):
        return {k: _blind(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blind(v) for v in value]
    return value


def _differing_paths(old: Any, new: Any, prefix: str = "") -> Iterator[str]:
    """Leaf paths where two output trees differ, for steps without a detailed diff."""
    if _is_secret(old) or _is_secret(new):
        if old != new:
            yield prefix
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            if key == "__meta":
                continue
            child = f"{prefix}.{key}" if prefix else key
            if key not in old or key not in new:
                yield child
            else:
                yield from _differing_paths(old[key], new[key], child)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _differing_paths(a, b, f"{prefix}[{index}]")
    elif old != new:
        yield prefix


def _values(state: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not state:
        return {}
    return state.get("outputs") or state.get("inputs") or {}


def _changes(step: Mapping[str, Any]) -> tuple[Change, ...]:
    old, new = _values(step.get("oldState")), _values(step.get("newState"))
    paths = list(step.get("detailedDiff") or {}) or list(_differing_paths(old, new))
    if not paths:
        paths = [str(reason) for reason in step.get("diffReasons") or []]
    changes = []
    for path in paths:
        parts = split_path(path)
        changes.append(
            Change(path, render_value(_lookup(old, parts)), render_value(_lookup(new, parts)))
        )
    return tuple(changes)


def _type_and_name(urn: str) -> tuple[str, str]:
    # urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>
    parts = urn.split("::")
    if len(parts) < 4:
        raise DocumentError(f"not a resource URN: {urn!r}")
    return parts[2].rsplit("$", 1)[-1], "::".join(parts[3:])


def _drifted(step: Mapping[str, Any]) -> Drifted | None:
    op = step.get("op")
    if not isinstance(op, str) or not isinstance(step.get("urn"), str):
        raise DocumentError(f"a step without op/urn: {json.dumps(step)[:200]}")
    if op in UNCHANGED_OPS:
        return None
    type_, name = _type_and_name(step["urn"])
    old_state, new_state = step.get("oldState"), step.get("newState")
    swarm_name = _values(old_state).get("name") or _values(new_state).get("name")
    if op in GONE_OPS or (old_state and not new_state):
        return Drifted(type_, name, swarm_name, "deleted")
    changes = _changes(step)
    if op == "refresh" and not changes:
        return None  # a refresh step that found the resource as recorded
    return Drifted(type_, name, swarm_name, "changed", changes)


def analyse(document: Any, stack: str | None = None) -> Report:
    if not isinstance(document, Mapping):
        raise DocumentError("expected a JSON object (the engine's preview digest)")
    steps = document.get("steps") or []
    diagnostics = document.get("diagnostics") or []
    if not isinstance(steps, list) or not isinstance(diagnostics, list):
        raise DocumentError("'steps' and 'diagnostics' must be lists")
    if not steps and not diagnostics and "changeSummary" not in document:
        raise DocumentError("no steps, diagnostics or changeSummary: not an engine result")
    report = Report(stack, summary=dict(document.get("changeSummary") or {}))
    report.drifted = [d for d in map(_drifted, steps) if d is not None]
    for diagnostic in diagnostics:
        message = str(diagnostic.get("message", "")).strip()
        if diagnostic.get("severity") == "error" and EXPECTED_NO_CHANGES not in message:
            where = diagnostic.get("urn")
            report.errors.append(f"{_type_and_name(where)[1]}: {message}" if where else message)
    unexplained = {
        op: count
        for op, count in report.summary.items()
        if op not in UNCHANGED_OPS and op != "refresh" and count
    }
    if unexplained and not report.drifted and not report.errors:
        report.errors.append(
            f"changeSummary reports {unexplained} but no step shows which resource changed"
        )
    return report


def _heading(report: Report) -> str:
    where = f" in stack `{report.stack}`" if report.stack else ""
    if report.errors:
        return f"Drift check failed{where}: the engine reported errors"
    if report.drifted:
        return f"Drift{where}: {len(report.drifted)} resource(s) differ from Pulumi's state"
    return f"No drift{where}"


def markdown(report: Report) -> str:
    lines = [f"## {_heading(report)}", ""]
    for error in report.errors:
        lines.append(f"- **error**: {error}")
    if report.errors:
        lines.append("")
    for drifted in report.drifted:
        lines.append(f"### {drifted.title}")
        if drifted.kind == "deleted":
            lines += ["", "Deleted outside Pulumi: in the state, not on the swarm.", ""]
            continue
        lines += ["", "| property | state (Pulumi) | live (swarm) |", "|---|---|---|"]
        for change in drifted.changes:
            cells = (change.path, change.state, change.live)
            lines.append("| " + " | ".join(f"`{c}`".replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def text(report: Report) -> str:
    lines = [_heading(report).replace("`", "")]
    lines += [f"  error: {error}" for error in report.errors]
    for drifted in report.drifted:
        lines.append(f"- {drifted.title.replace('`', '')}")
        if drifted.kind == "deleted":
            lines.append("    deleted outside Pulumi (in the state, not on the swarm)")
        for change in drifted.changes:
            lines.append(f"    {change.path}: state {change.state} -> live {change.live}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacktools.drift", description=__doc__)
    parser.add_argument("document", type=Path, help="output of pulumi refresh ... --json")
    parser.add_argument("--stack", help="stack name for the report's heading")
    parser.add_argument("--summary", type=Path, help="Markdown file (default $GITHUB_STEP_SUMMARY)")
    args = parser.parse_args(argv)
    summary = args.summary or (
        Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY") else None
    )
    try:
        report = analyse(json.loads(args.document.read_text(encoding="utf-8")), args.stack)
    except (OSError, ValueError, DocumentError) as error:
        message = f"Drift check failed: cannot read {args.document}: {error}"
        print(message, file=sys.stderr)
        if summary:
            with summary.open("a", encoding="utf-8") as handle:
                handle.write(f"## {message}\n")
        return UNREADABLE
    sys.stdout.write(text(report))
    if summary:
        with summary.open("a", encoding="utf-8") as handle:
            handle.write(markdown(report))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
