"""What the stack-export tests share: the export of each stack, written and read back as the
docker CLI reads it (``$$`` is one ``$``, memory in binary units, CPUs in nano-CPUs)."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from harness import Registered, Rendering
from stacktools.export import export, write

SECRETS = {
    "brandclub:dbRootPassword": "Export-Root-9c1f!never-in-files",
    "brandclub:adminPassword": "Export-Admin-4e7d!never-in-files",
    "brandclub:secretNameKey": "export-secret-name-key-5a0b6c1d7e2f8a3b",
}
NAMESPACE = "com.docker.stack.namespace"
SERVICE = "docker:index/service:Service"


@dataclasses.dataclass
class Exported:
    rendering: Rendering
    directory: Path
    texts: dict[str, str]  # swarm stack -> file text
    files: dict[str, dict[str, Any]]  # swarm stack -> compose document
    manifest: dict[str, Any]

    def services(self) -> list[Registered]:
        return self.rendering.of_type(SERVICE)

    def compose_service(self, service: Registered) -> tuple[str, dict[str, Any]]:
        """The swarm stack of ``service`` and its entry in that stack's file."""
        stack = service.labels[NAMESPACE]
        name = service.inputs["name"]
        assert name.startswith(f"{stack}_")
        return stack, self.files[stack]["services"][name.removeprefix(f"{stack}_")]


def export_into(rendering: Rendering, out: Path) -> Exported:
    write(export(rendering), out)
    directory = out / rendering.stack
    manifest = json.loads((directory / "manifest.json").read_text())
    texts = {entry["name"]: (directory / entry["file"]).read_text() for entry in manifest["stacks"]}
    files = {stack: yaml.safe_load(text) for stack, text in texts.items()}
    return Exported(rendering, directory, texts, files, manifest)


def unescape(value: Any) -> Any:
    """Compose reads ``$$`` as one literal ``$``."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [unescape(item) for item in value]
    if isinstance(value, dict):
        return {key: unescape(item) for key, item in value.items()}
    return value


_BINARY = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def memory_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMGT]?)B?", str(text))
    assert match, f"memory {text!r} is not a whole binary-unit figure"
    return int(match[1]) * _BINARY[match[2]]


def nano_cpus(text: str) -> int:
    nano = Decimal(str(text)) * 10**9
    assert nano == nano.to_integral_value(), f"cpus {text!r} is finer than a nano-CPU"
    return int(nano)


def never_written(directory: Path, values: list[str]) -> None:
    forms = [form for v in values for form in (v, base64.b64encode(v.encode()).decode())]
    for path in directory.iterdir():
        text = path.read_text()
        assert not [form for form in forms if form in text], path
