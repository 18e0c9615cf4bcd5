"""Writing an export: each stack file as commented YAML, the configs' files beside them, and a
manifest for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from stacktools.export.stack_files import StackExport, StackFile

MANIFEST = "manifest.json"


class _Dumper(yaml.SafeDumper):
    """Block style throughout, lists indented under their key, multi-line text (the backup
    script) as a literal block: the layout people write compose files in, so diffs stay small."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def _escape_interpolation(value: Any) -> Any:
    """Compose substitutes ``$VAR`` in every value; ``$$`` is a literal dollar sign."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape_interpolation(item) for item in value]
    if isinstance(value, dict):
        return {key: _escape_interpolation(item) for key, item in value.items()}
    return value


def _header(stack_export: StackExport, stack_file: StackFile, directory: str) -> str:
    lines = [
        f"Swarm stack {stack_file.stack}, from the Pulumi stack {stack_export.pulumi_stack}.",
        f"Written by `python -m stacktools render --stack {stack_export.pulumi_stack}` from the",
        "resources the Pulumi program registers; regenerate it rather than editing it.",
        "",
        f"Deploy all of {stack_export.pulumi_stack}, in this order (run from this directory;",
        "a secret command reads the secret's value on standard input; run it once per swarm):",
        *(f"  {command}" for command in stack_export.commands(directory)),
    ]
    defined = stack_file.document.get("configs", {}).values()
    configs = [entry["file"] for entry in defined if "file" in entry]
    if configs:
        lines += [
            "",
            "Docker configs are read from these files beside this one (deploy from a directory",
            "that holds them); docker stack deploy creates them under their exact names:",
            *(f"  {file}" for file in configs),
        ]
    if stack_file.notes:
        lines += ["", "Not in this file:", *(f"  - {note}" for note in stack_file.notes)]
    if stack_export.not_exported:
        lines += [
            "",
            "Registered by the program but in no stack file (`pulumi up` runs the site jobs):",
            *(f"  - {item}" for item in stack_export.not_exported),
        ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render_text(stack_export: StackExport, stack_file: StackFile, directory: str = ".") -> str:
    """The text of one stack file: a comment header, then the compose document."""
    body = yaml.dump(
        _escape_interpolation(stack_file.document),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        allow_unicode=True,
    )
    return _header(stack_export, stack_file, directory) + body


def write(stack_export: StackExport, out: Path) -> list[Path]:
    """Write every stack file to ``out/<pulumi stack>/<swarm stack>.yml``, and the manifest;
    return the paths."""
    directory = out / stack_export.pulumi_stack
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for stack_file in stack_export.files:
        path = directory / stack_file.file_name
        path.write_text(render_text(stack_export, stack_file))
        paths.append(path)
    for name, content in stack_export.config_files.items():
        path = directory / name
        path.write_text(content)
        paths.append(path)
    manifest = directory / MANIFEST
    manifest.write_text(json.dumps(stack_export.manifest(), indent=2) + "\n")
    return [*paths, manifest]
