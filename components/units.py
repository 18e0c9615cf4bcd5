"""Parsing of the size and duration figures operators write in stack config.

Sizes use Docker's binary units (``512M`` is 512 MiB, ``1.5G`` is 1.5 GiB), the same
convention as ``docker service create --limit-memory`` and MariaDB's ``innodb_buffer_pool_size``,
so a figure copied from an old compose file means the same thing here.
"""

from __future__ import annotations

import re

_SIZE = re.compile(
    r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[KMGT])(?:iB|i|B)?$|^(?P<bytes>\d+)B?$", re.IGNORECASE
)
_MULTIPLIER = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION = re.compile(r"^(?:\d+(?:ns|us|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+)(ns|us|ms|s|m|h)")

SIZE_EXPECTED = "a size such as 512M, 1.5G or 2GiB (binary units, no space)"
DURATION_EXPECTED = "a duration such as 30s, 1m30s or 500ms"


def parse_size(value: object) -> int:
    """Return the number of bytes a size figure stands for; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_EXPECTED}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"expected {SIZE_EXPECTED}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected {SIZE_EXPECTED}")
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"expected {SIZE_EXPECTED}")
    if match["bytes"] is not None:
        size = int(match["bytes"])
    else:
        size = int(float(match["number"]) * _MULTIPLIER[match["unit"].upper()])
    if size <= 0:
        raise ValueError(f"expected {SIZE_EXPECTED}, greater than zero")
    return size


def format_size(size: int) -> str:
    """The shortest exact binary-unit spelling of a byte count (``1610612736`` -> ``1536M``)."""
    for unit in ("T", "G", "M", "K"):
        if size % _MULTIPLIER[unit] == 0:
            return f"{size // _MULTIPLIER[unit]}{unit}"
    return f"{size}B"


def parse_duration(value: object) -> str:
    """Validate a Go-style duration as Docker expects it and return it unchanged."""
    if not isinstance(value, str) or not _DURATION.match(value):
        raise ValueError(f"expected {DURATION_EXPECTED}")
    return value


_NANOSECONDS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def canonical_duration(value: str) -> str:
    """The spelling the Docker provider reads back from the swarm (``120s`` -> ``2m``).

    The provider stores a service's durations as Go's ``Duration.String()`` with a trailing
    ``0s``/``0m`` cut off. Writing any other spelling would show as a change on every preview
    and as drift on every refresh, though nothing changed.
    """
    ns = sum(int(n) * _NANOSECONDS[unit] for n, unit in _DURATION_PART.findall(value))
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3)):
            if ns >= size:
                return _decimal(ns, size) + unit
        return f"{ns}ns"
    hours, rest = divmod(ns, _NANOSECONDS["h"])
    minutes, rest = divmod(rest, _NANOSECONDS["m"])
    text = _decimal(rest, 10**9) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    text = text.removesuffix("m0s") + "m" if text.endswith("m0s") else text
    return text.removesuffix("h0m") + "h" if text.endswith("h0m") else text


def _decimal(amount: int, unit: int) -> str:
    whole, fraction = divmod(amount, unit)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
