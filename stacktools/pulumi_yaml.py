"""Stack config read the way the Pulumi CLI reads it, for the tools that run the program offline.

What the CLI does with ``Pulumi.<stack>.yaml`` (pulumi/pulumi, ``sdk/go/common/workspace/
loaders.go`` ``LoadProjectStackBytes`` and ``sdk/go/common/resource/config/object.go``,
``value.go``; go-yaml v3 since the config clean-up of October 2023):

1. The whole file is decoded with go-yaml v3 into plain values, then re-encoded and decoded into
   config values, so *every* plain scalar, top-level or nested, is resolved by go-yaml v3's
   ``resolve()``: ``true``/``false`` (any case form go-yaml lists) are booleans and ``yes``,
   ``no``, ``on``, ``off`` are text (YAML 1.2); ``~``, ``null`` and the empty scalar are null;
   integers go through Go's ``strconv.ParseInt(s, 0, 64)`` after dropping ``_``, so ``0x1F`` is
   31, ``0o17`` is 15 and - go-yaml keeps YAML 1.1's octal "for compatibility" - ``0755`` is 493;
   floats match ``[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?``, so ``1.10`` is 1.1;
   there are no sexagesimal numbers (``12:30`` is text) and timestamps stay text.
2. A top-level scalar reaches the program as text again (``object.MarshalString``): a number as
   Go's JSON spelling (``1.10`` arrives as ``"1.1"``, ``0755`` as ``"493"``), a boolean as
   ``"true"``/``"false"``. Quoted scalars arrive as written. Maps and lists arrive as JSON.

``pulumi config set KEY VALUE`` stores VALUE as text (quoted in the file when needed), so it
arrives exactly as typed. That is what ``render --set`` does for a top-level key; a nested key
(``--set brandclub:services.backend.replicas=2``) is read as that scalar written in the stack
file at its place.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

import yaml

_GO_PLAIN = "tag:brandclub,2026:go-plain"
_BOOL_NULL: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# Go's strconv.ParseInt(s, 0, 64) syntax: a base prefix, or a leading 0 for octal.
_GO_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_BASES = {"x": 16, "o": 8, "b": 2}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# Go's strconv.ParseFloat for text starting with '.': a decimal float.
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")


class PulumiYamlError(ValueError):
    """A value the Pulumi CLI would not store either."""


def resolve_plain(text: str) -> Any:
    """A plain (unquoted) YAML scalar as go-yaml v3 resolves it when decoding into ``any``."""
    if text in _BOOL_NULL:
        return _BOOL_NULL[text]
    hint = text[0]
    if hint == ".":
        return float(text) if _DOT_FLOAT.fullmatch(text) else text
    if hint not in "+-0123456789":
        return text
    plain = text.replace("_", "")
    number = _GO_INT.fullmatch(plain)
    if number is not None:
        sign, digits = number.groups()
        if len(digits) > 1 and digits[0] == "0" and digits[1].isalpha():
            value = int(digits[2:], _GO_BASES[digits[1].lower()])
        elif len(digits) > 1 and digits[0] == "0":
            value = int(digits, 8)
        else:
            value = int(digits)
        value = -value if sign == "-" else value
        # ParseInt gives int64; ParseUint takes what is bigger but unsigned and unprefixed.
        if -(2**63) <= value < 2**63 or (not sign and value < 2**64):
            return value
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        return float(plain)
    return text


class _Loader(yaml.SafeLoader):
    """PyYAML's parser with go-yaml v3's scalar resolution instead of YAML 1.1's."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _GO_PLAIN
        return super().resolve(kind, value, implicit)


def _construct_plain(loader: _Loader, node: yaml.ScalarNode) -> Any:
    return resolve_plain(loader.construct_scalar(node))


_Loader.add_constructor(_GO_PLAIN, _construct_plain)
# go-yaml v3 decodes an explicit !!timestamp into ``any`` as the text as well.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: node.value)


def _string_keys(value: Any) -> Any:
    # Pulumi turns every map key into text with Go's %v.
    if isinstance(value, dict):
        return {_key_text(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "<nil>"
    return key if isinstance(key, str) else engine_text(key)


def load(text: str) -> Any:
    """A YAML document with every scalar resolved as the Pulumi CLI resolves stack config."""
    return _string_keys(yaml.load(text, Loader=_Loader))


def go_float(value: float) -> str:
    """Go's encoding/json spelling of a float64 (``2.0`` is ``2``, ``1e-07`` is ``1e-7``)."""
    if not math.isfinite(value):
        raise PulumiYamlError(f"{value} is not a number JSON can hold")
    if value == 0:
        return "0"
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(repr(value)).normalize(), "f")
    text = repr(value)
    if "e" not in text:
        text = format(Decimal(text), "e")
    mantissa, _, exponent = text.partition("e")
    exponent = exponent.lstrip("+")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{exponent.lstrip('-').lstrip('0') or '0':0>2}".replace("e-0", "e-")


def _go_json_value(value: Any, allow_nan: bool) -> Any:
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            if allow_nan:
                return value
            raise PulumiYamlError(f"{value} is not a number JSON can hold")
        # Go writes a whole float64 without a fraction: the program reads an integer.
        return int(value) if value.is_integer() and abs(value) < 1e21 else value
    if isinstance(value, dict):
        return {k: _go_json_value(v, allow_nan) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_json_value(v, allow_nan) for v in value]
    return value


def engine_text(value: Any, *, allow_nan: bool = False) -> str:
    """The text a program receives for a stack-file config value read by :func:`load`.

    ``allow_nan`` (tests only) writes NaN and Infinity as Python's JSON does, to check that the
    program refuses what ``pulumi config set`` can still store as text.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if allow_nan and not math.isfinite(value):
            return json.dumps(value)
        return go_float(value)
    return json.dumps(
        _go_json_value(value, allow_nan),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=allow_nan,
    )


def top_level_rewrites(text: str) -> list[tuple[str, str, str]]:
    """(key, as written, as the program gets it) for every top-level config scalar whose plain
    spelling the CLI changes (``imageTag: 1.10`` arrives as ``1.1``)."""
    root = yaml.compose(text, Loader=_Loader)
    if not isinstance(root, yaml.MappingNode):
        return []
    block = root
    for key, value in root.value:
        if key.value == "config" and isinstance(value, yaml.MappingNode):
            block = value
    rewrites = []
    for key, value in block.value:
        if not isinstance(value, yaml.ScalarNode) or value.style is not None:
            continue
        resolved = resolve_plain(value.value)
        if isinstance(resolved, str) or resolved is None:
            continue
        arrives = engine_text(resolved, allow_nan=True)
        if arrives != value.value:
            rewrites.append((str(key.value), value.value, arrives))
    return rewrites
