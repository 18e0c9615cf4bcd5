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
_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}

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


def duration_seconds(value: str) -> float:
    """Seconds in a Go-style duration already accepted by :func:`parse_duration`."""
    return sum(int(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(value))
