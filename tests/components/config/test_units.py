"""components/config/units.py: the sizes and durations operators write, and how Docker reads
them back."""

from __future__ import annotations

import pytest

from components.config.units import canonical_duration, format_size, parse_duration, parse_size

MiB = 1024**2
GiB = 1024**3

# --- 6. Units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512M", 512 * MiB),
        ("1.5G", 1536 * MiB),
        ("2GiB", 2 * GiB),
        ("256mb", 256 * MiB),
        ("1g", GiB),
        ("64Ki", 64 * 1024),
        ("1T", 1024**4),
        ("1024", 1024),
        ("1024B", 1024),
        (1073741824, GiB),
    ],
)
def test_parse_size_accepts(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "value",
    ["2 GB", "", "-1M", "0", "0M", "1.5", "1.5B", "M", "12X", "1G ", " 1G", True, False, 0, -5, 1.5,
     None],
    ids=repr,
)  # fmt: skip
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="a size such as 512M"):
        parse_size(value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(GiB, "1G"), (1536 * MiB, "1536M"), (512 * MiB, "512M"), (2048, "2K"), (1023, "1023B")],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
    assert parse_size(text) == size


@pytest.mark.parametrize("value", ["30s", "1m30s", "500ms", "1h", "10m", "100us", "2h45m0s"])
def test_parse_duration_accepts(value: str) -> None:
    assert parse_duration(value) == value


@pytest.mark.parametrize(
    "value", ["30", "30 s", "30 seconds", "", "s", "-5s", "1d", 30, None, True], ids=repr
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="a duration such as 30s"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("30s", "30s"),
        ("60s", "1m"),
        ("120s", "2m"),
        ("90s", "1m30s"),
        ("600s", "10m"),
        ("3600s", "1h"),
        ("5400s", "1h30m"),
        ("2h0m5s", "2h0m5s"),
        ("86400s", "24h"),
        ("1500ms", "1.5s"),
        ("500ms", "500ms"),
        ("100us", "100µs"),
        ("0s", "0s"),
    ],
)
def test_canonical_duration_is_gos_short_spelling(value: str, canonical: str) -> None:
    assert canonical_duration(value) == canonical
    if "." not in canonical:  # stack config takes whole numbers only
        assert canonical_duration(canonical.replace("µs", "us")) == canonical
