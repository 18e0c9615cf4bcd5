"""docs/configuration.md documents exactly the keys the program reads, with the program's defaults.

The keys come from the configuration models themselves: every field of ``StackConfig`` and of
every model below it, named as the operator writes it (its alias, dotted). The documentation's
keys come from its key tables: a table whose header starts with ``Key`` and has a ``Default``
column; each backticked name in a row's first cell is a key. The service catalogue's table
(header ``| service | layer |``) documents ``services.<name>`` for each app row: required where
it runs in every environment. ``<service>`` stands for the services documented so.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from components.config.model import StackConfig

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "configuration.md"
NAMESPACE = "brandclub:"
PLACEHOLDER = re.compile(r"<[a-z-]+>")
KEY = re.compile(r"[A-Za-z0-9<>-]+(\.[A-Za-z0-9<>-]+)*")


# --- the models ---------------------------------------------------------------------------


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field holds: through Optional, unions and Annotated, not into lists."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [model for arg in typing.get_args(annotation) for model in _models(arg)]
    return []


def model_keys(model: type[BaseModel], prefix: str = "") -> dict[str, list[FieldInfo]]:
    """Every key below ``model`` (objects and leaves), dotted by alias, with its fields (several
    where a union's members share a key)."""
    keys: dict[str, list[FieldInfo]] = {}
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        keys.setdefault(key, []).append(info)
        for nested in _models(info.annotation):
            for below, infos in model_keys(nested, key + ".").items():
                keys.setdefault(below, []).extend(infos)
    return keys


def leaves(keys: dict[str, list[FieldInfo]]) -> set[str]:
    return {key for key in keys if not any(other.startswith(key + ".") for other in keys)}


# --- the reference --------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    keys: list[str]
    default: str


@dataclass
class Reference:
    rows: list[Row] = field(default_factory=list)
    # Keys of another namespace (docker:host): documented, not the program's.
    foreign: list[str] = field(default_factory=list)

    @property
    def explicit(self) -> set[str]:
        return {key for row in self.rows for key in row.keys if not PLACEHOLDER.search(key)}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def parse_reference(text: str) -> Reference:
    reference = Reference()
    columns: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("|"):
            columns = None
            continue
        cells = _cells(line)
        if columns is None:
            columns = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        if columns[:2] == ["service", "layer"]:
            reference.rows += _catalogue_row(number, dict(zip(columns, cells, strict=True)))
            continue
        if columns[0] != "Key" or "Default" not in columns:
            continue
        names = [name.removeprefix(NAMESPACE) for name in re.findall(r"`([^`]+)`", cells[0])]
        assert names, f"docs/configuration.md:{number}: no key in {cells[0]!r}"
        for name in names:
            if ":" in name:
                reference.foreign.append(name)
        keys = [name for name in names if ":" not in name]
        for key in keys:
            assert KEY.fullmatch(key), f"docs/configuration.md:{number}: not a key: {key!r}"
        if keys:
            reference.rows.append(Row(number, keys, cells[columns.index("Default")]))
    return reference


def _catalogue_row(number: int, row: dict[str, str]) -> list[Row]:
    """An app service of the catalogue is a ``services`` key, required where it always runs."""
    if row["layer"] != "app":
        return []
    required = row["runs"].startswith("every environment")
    return [Row(number, [f"services.{row['service']}"], "required" if required else "unset")]


def matches(pattern: str, key: str, explicit: set[str]) -> bool:
    """``services.<service>.replicas`` matches ``services.backend.replicas`` when
    ``services.backend`` is itself documented: a placeholder stands for documented keys only."""
    wanted, found = pattern.split("."), key.split(".")
    if len(wanted) != len(found):
        return False
    for index, (part, actual) in enumerate(zip(wanted, found, strict=True)):
        if PLACEHOLDER.fullmatch(part):
            if ".".join(found[: index + 1]) not in explicit:
                return False
        elif part != actual:
            return False
    return True


def problems(reference: Reference, keys: dict[str, list[FieldInfo]]) -> list[str]:
    """What is wrong between the reference and the models, one line per problem."""
    explicit = reference.explicit
    found: list[str] = []
    documented = [(row, pattern) for row in reference.rows for pattern in row.keys]
    for key in sorted(leaves(keys)):
        if not any(matches(pattern, key, explicit) for _, pattern in documented):
            found.append(f"missing: {key} is a key the program reads, not in the reference")
    for row, pattern in documented:
        matched = [key for key in keys if matches(pattern, key, explicit)]
        if not matched:
            found.append(f"line {row.line}: {pattern} is no key the program reads")
        for key in matched:
            for info in keys[key]:
                wrong = _default_problem(row.default, info)
                if wrong:
                    found.append(f"line {row.line}: {key}: {wrong}")
    return found


def _default_problem(stated: str, info: FieldInfo) -> str | None:
    """None when the Default cell says what the model does."""
    if stated.startswith("required"):
        return None if info.is_required() else "stated required, but it has a default"
    if info.is_required():
        return f"required, but the reference states {stated!r}"
    default = info.get_default(call_default_factory=True)
    literal = re.fullmatch(r"`([^`]+)`", stated)
    if literal is None:
        # Prose ("unset", "the first entry of domains"): the program decides when it is unset.
        if default is None:
            return None
        return f"the default is {default!r}; state it as a literal, e.g. `{default}`"
    written = yaml.safe_load(literal[1])
    if _same(written, default):
        return None
    return f"the reference states {literal[1]} (read as {written!r}), the default is {default!r}"


def _same(written: Any, default: Any) -> bool:
    if isinstance(written, bool) or isinstance(default, bool):
        return type(written) is type(default) and written == default
    if isinstance(written, list | str) or isinstance(default, list | str):
        return type(written) is type(default) and written == default
    return written == default


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, list[FieldInfo]]:
    return model_keys(StackConfig)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return parse_reference(REFERENCE.read_text())


def test_the_reference_documents_exactly_the_programs_keys_and_defaults(
    reference: Reference, keys: dict[str, list[FieldInfo]]
) -> None:
    found = problems(reference, keys)
    assert not found, "docs/configuration.md and the models differ:\n" + "\n".join(found)


def test_keys_of_other_namespaces_are_set_in_the_stack_files(reference: Reference) -> None:
    stack_keys = {
        key
        for path in REPO.glob("Pulumi.*.yaml")
        for key in (yaml.safe_load(path.read_text()).get("config") or {})
    }
    assert reference.foreign, "docker:host is documented"
    assert set(reference.foreign) <= stack_keys


def test_the_models_are_walked_as_the_operator_writes_them(
    keys: dict[str, list[FieldInfo]],
) -> None:
    # Aliases, nesting, optional objects and the off-site union's members all show up.
    for key in (
        "imageTag",
        "mariadb.bufferPoolSize",
        "services.queue-default.limits.cpus",
        "ingress.accessLog.headers",
        "backup.offsite.bucket",
        "backup.offsite.knownHosts",
        "restore.useBackupEncryptionKey",
        "secretNameKey",
    ):
        assert key in keys, key
    assert "mariadb.buffer_pool_size" not in keys


# The checker itself: each kind of drift is reported.


def _reference_without(text: str, key: str, code: bool = True) -> str:
    cell = f"`{key}`" if code else key
    lines = [line for line in text.splitlines() if not line.startswith(f"| {cell} |")]
    assert len(lines) == len(text.splitlines()) - 1, key
    return "\n".join(lines)


def test_a_key_missing_from_the_reference_is_reported(
    keys: dict[str, list[FieldInfo]],
) -> None:
    text = _reference_without(REFERENCE.read_text(), "frappe.gunicornThreads")
    assert problems(parse_reference(text), keys) == [
        "missing: frappe.gunicornThreads is a key the program reads, not in the reference"
    ]


def test_a_service_missing_from_the_reference_is_reported(
    keys: dict[str, list[FieldInfo]],
) -> None:
    # Its per-service keys no longer match services.<service>.*: the placeholder needs the row.
    text = _reference_without(REFERENCE.read_text(), "queue-long", code=False)
    found = problems(parse_reference(text), keys)
    assert (
        "missing: services.queue-long.replicas is a key the program reads, not in the "
        + ("reference")
        in found
    )
    assert len(found) == 5  # replicas and the four resource keys


def test_a_key_that_does_not_exist_is_reported(keys: dict[str, list[FieldInfo]]) -> None:
    text = REFERENCE.read_text().replace(
        "| `frappe.gunicornTimeout` |",
        "| `frappe.gunicornMaxRequests` | integer | `0` | — |\n| `frappe.gunicornTimeout` |",
    )
    found = problems(parse_reference(text), keys)
    assert len(found) == 1
    assert found[0].endswith("frappe.gunicornMaxRequests is no key the program reads")


@pytest.mark.parametrize(
    ("row", "stated", "message"),
    [
        ("frappe.gunicornWorkers", "`3`", "the default is 2"),
        ("ingress.hsts.preload", "`true`", "the default is False"),
        ("mariadb.version", "`11.8`", "read as 11.8"),  # unquoted, YAML makes it a number
        ("frappe.gunicornWorkers", "required", "stated required"),
        ("mariadb.bufferPoolSize", "`1G`", "required, but the reference states"),
        ("ingress.acmeEmail", "`ops@brandclub.com`", "the default is None"),
        ("frappe.apps", "unset", "state it as a literal"),
    ],
)
def test_a_wrong_default_is_reported(
    keys: dict[str, list[FieldInfo]], row: str, stated: str, message: str
) -> None:
    text = REFERENCE.read_text()
    # The key table's row (the table of values per environment comes after it).
    line = next(line for line in text.splitlines() if line.startswith(f"| `{row}` |"))
    cells = _cells(line)
    cells[2] = stated
    found = problems(parse_reference(text.replace(line, "| " + " | ".join(cells) + " |")), keys)
    assert len(found) == 1 and message in found[0], found


def test_a_new_model_field_is_reported(reference: Reference) -> None:
    class Extended(StackConfig):
        maintenance_window: str | None = None

    extended = model_keys(Extended)
    assert problems(reference, extended) == [
        "missing: maintenanceWindow is a key the program reads, not in the reference"
    ]


def test_a_required_service_stated_optional_is_reported(
    keys: dict[str, list[FieldInfo]],
) -> None:
    text = REFERENCE.read_text()
    line = next(line for line in text.splitlines() if line.startswith("| scheduler | app |"))
    found = problems(
        parse_reference(text.replace(line, line.replace("every environment", "where configured"))),
        keys,
    )
    assert len(found) == 1 and "services.scheduler: required, but" in found[0], found
