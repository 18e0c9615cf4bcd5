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


_NANOSECONDS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
# Go's time.Duration is an int64 of nanoseconds: Docker cannot hold a longer duration.
DURATION_MAX_NS = 2**63 - 1
# Docker's shortest health-check interval, timeout and start period (container.MinimumDuration).
DURATION_MIN_NS = 10**6


def duration_ns(value: str) -> int:
    """The nanoseconds a validated duration stands for."""
    return sum(int(n) * _NANOSECONDS[unit] for n, unit in _DURATION_PART.findall(value))


def parse_duration(value: object) -> str:
    """Validate a Go-style duration as Docker expects it and return it unchanged."""
    if not isinstance(value, str) or len(value) > 64 or not _DURATION.match(value):
        raise ValueError(f"expected {DURATION_EXPECTED}")
    if duration_ns(value) > DURATION_MAX_NS:
        raise ValueError(
            f"expected {DURATION_EXPECTED}, at most 2562047h (Docker keeps durations as Go's "
            "time.Duration, 2^63-1 nanoseconds)"
        )
    return value


def positive_duration(value: str) -> str:
    """A duration Docker takes as set: 0 would mean "the default" (the image's health check,
    the swarm's update monitor), and anything under 1ms is refused by Docker."""
    if duration_ns(value) < DURATION_MIN_NS:
        raise ValueError(
            "expected at least 1ms: Docker refuses a shorter one, and 0 silently means its "
            "default instead of this setting"
        )
    return value


def canonical_duration(value: str) -> str:
    """The spelling the Docker provider reads back from the swarm (``120s`` -> ``2m``).

    The provider stores a service's durations as Go's ``Duration.String()`` with a trailing
    ``0s``/``0m`` cut off. Writing any other spelling would show as a change on every preview
    and as drift on every refresh, though nothing changed.
    """
    ns = duration_ns(value)
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
