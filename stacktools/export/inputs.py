"""The guard of the export: every registered input is consumed, translated or named.

Each translation walks a resource's inputs through :class:`Inputs`: ``take`` marks a key as
written, ``discard`` as handled without being written (secret data). Whatever is left when the
walk ends fails the export with :class:`UnknownInputError`, so the program cannot grow a setting
the stack files silently lose; there is no table of inputs the program might set one day.
Also here: the small conversions of registered values to compose values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from components import pulumi_sdk


class ExportError(Exception):
    """The registered resources cannot be written as stack files."""


class UnknownInputError(ExportError):
    """The program sets an input the export does not translate."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        listed = "\n".join(f"  - {path}" for path in paths)
        super().__init__(
            f"the program sets {len(paths)} input(s) the stack export does not translate; "
            f"teach stacktools/export/ to write them (or name them in NOT_IN_STACK_FILES):\n"
            f"{listed}"
        )


class Inputs:
    """One level of registered inputs that must be consumed completely.

    Every ``take`` marks a key as translated; whatever is left when the walk ends is reported
    by :meth:`Walk.finish`. Keys the engine sent as null carry no setting and are ignored.
    """

    def __init__(self, values: Mapping[str, Any] | None, path: str, walk: Walk) -> None:
        self._values = dict(values or {})
        self._path = path
        self._walk = walk
        walk.levels.append(self)

    def take(self, key: str, default: Any = None) -> Any:
        """The value, to be written to a stack file: a Pulumi secret inside it fails."""
        value = self.discard(key)
        if holds_secret(value):
            raise ExportError(
                f"{self._join(key)} holds a Pulumi secret, which a stack file must never carry"
            )
        return default if value is None else value

    def discard(self, key: str) -> Any:
        """The value, marked as handled; for values that are never written (secret data)."""
        return self._values.pop(key, None)

    def child(self, key: str) -> Inputs:
        # Only the leaves are written; a secret is caught where it is taken.
        return Inputs(self.discard(key), self._join(key), self._walk)

    def children(self, key: str) -> list[Inputs]:
        items = self.discard(key) or []
        return [Inputs(item, f"{self._join(key)}[]", self._walk) for item in items]

    def renamed(self, table: Mapping[str, tuple[str, Callable[[Any], Any]]]) -> dict[str, Any]:
        """The keys of ``table`` under their compose names, converted; absent ones left out."""
        taken = {key: self.take(key) for key in table}
        return {
            table[key][0]: table[key][1](value) for key, value in taken.items() if value is not None
        }

    def leftovers(self) -> list[str]:
        return [self._join(key) for key, value in self._values.items() if value is not None]

    def _join(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key


def holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        if pulumi_sdk.is_secret(value):
            return True
        return any(holds_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(holds_secret(item) for item in value)
    return False


@dataclass
class Walk:
    """One resource's inputs, walked level by level; ``finish`` reports what none consumed."""

    owner: str
    levels: list[Inputs] = field(default_factory=list)

    def root(self, values: Mapping[str, Any]) -> Inputs:
        return Inputs(values, "", self)

    def finish(self) -> None:
        unknown = sorted({path for level in self.levels for path in level.leftovers()})
        if unknown:
            raise UnknownInputError([f"{self.owner}: {path}" for path in unknown])


def integer(value: Any) -> int:
    # The engine hands every number over as a float.
    if float(value) != int(value):
        raise ExportError(f"expected a whole number, got {value!r}")
    return int(value)


def cpus(nano_cpus: Any) -> str:
    return format((Decimal(integer(nano_cpus)) / 10**9).normalize(), "f")


def labels(items: list[Mapping[str, str]] | None) -> dict[str, str]:
    return dict(sorted((item["label"], item["value"]) for item in items or []))


def sorted_map(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # The engine's maps arrive in no stable order; sorted keys keep exports diffable.
    return dict(sorted(mapping.items())) if mapping is not None else None


def without_empty(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value not in (None, {}, [], "")}
