"""The building blocks of the stack configuration: the strict base model, how a model reports
every broken rule at once, and the value types settings are declared with.

Each type names what the operator must write (``a lower-case DNS name such as brandclub.com``);
rules for single values that need more than a pattern are in components/config/formats.py.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, date, datetime
from typing import Annotated, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.config.formats import (
    LABEL_TEXT_MAX,
    consistent_constraints,
    cpus_bounds,
    host_path,
    known_constraint,
    memory_bounds,
    nonzero_nginx_size,
    private_network,
)
from components.config.grammar import image_reference, image_repository, registry_host
from components.config.units import parse_duration, parse_size, positive_duration


class Violation(NamedTuple):
    """One broken architecture rule, keyed below the model whose validator found it."""

    key: str
    found: object
    expected: str


class RuleViolationError(ValueError):
    """Every rule a model's validator found broken, reported together."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.key}: expected {v.expected}" for v in violations))
        self.violations = violations


def matching(pattern: str, expected: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise ValueError("expected a CIDR range such as 10.0.0.0/8") from None
    return value


ByteSize = Annotated[int, BeforeValidator(parse_size)]
MemorySize = Annotated[int, BeforeValidator(parse_size), AfterValidator(memory_bounds)]
CpuCount = Annotated[float, Field(allow_inf_nan=False), AfterValidator(cpus_bounds)]
Duration = Annotated[str, BeforeValidator(parse_duration)]
# A duration where 0 is not "off" but "Docker's default", and under 1ms is refused by Docker.
PositiveDuration = Annotated[
    str, BeforeValidator(parse_duration), AfterValidator(positive_duration)
]
Hostname = Annotated[
    str,
    matching(
        # The last label: letters, or an IDN top-level domain in punycode (shop.xn--p1ai).
        r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{0,58}[a-z0-9])",
        "a lower-case DNS name such as brandclub.com",
    ),
]
ImageTag = Annotated[
    str, matching(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "a Docker image tag such as main")
]
# Docker's reference grammar (components/config/grammar.py).
ImageRepository = Annotated[str, AfterValidator(image_repository)]
ImageReference = Annotated[str, AfterValidator(image_reference)]
ImageDigest = Annotated[
    str, matching(r"sha256:[0-9a-f]{64}", "an image digest such as sha256:<64 hex digits>")
]
RegistryHost = Annotated[str, AfterValidator(registry_host)]
AppName = Annotated[
    str, matching(r"[a-z][a-z0-9_]{0,63}", "a Frappe app name such as erpnext (at most 64)")
]
# Absolute, normalised, outside system and Docker directories (components/config/formats.py).
NodePath = Annotated[str, AfterValidator(host_path)]


def _calendar_date(value: str) -> str:
    # Only YYYY-MM-DD: date.fromisoformat also reads week dates (2026-W47-5) and basic forms
    # (20261120), which name no backup directory.
    expected = "a date such as 2026-11-20 (YYYY-MM-DD)"
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError(f"expected {expected}")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected {expected}, a day the calendar has") from None
    # A backup is dated in UTC when it is made; a later day has none yet.
    if day > datetime.now(UTC).date():
        raise ValueError(f"expected {expected}, not in the future: no backup of that day exists")
    return value


CalendarDate = Annotated[str, AfterValidator(_calendar_date)]
# It becomes part of a Traefik command-line argument: a plain address, nothing that could
# carry another option (a@b.c,--api.insecure=true).
Email = Annotated[
    str,
    matching(
        r"(?=.{3,254}$)[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
        r"([A-Za-z]{2,63}|xn--[A-Za-z0-9-]{0,58}[A-Za-z0-9])",
        "an e-mail address such as ops@brandclub.com",
    ),
]
# Free text that ends up in a header or a label: no CR, LF or other control character.
HeaderText = Annotated[
    str,
    matching(r"[^\x00-\x1f\x7f]*", "text without control characters (CR, LF, tab, ...)"),
    Field(max_length=LABEL_TEXT_MAX),
]
ClockTime = Annotated[
    str, matching(r"([01][0-9]|2[0-3]):[0-5][0-9]", "a 24-hour UTC time such as 02:00")
]
NginxSize = Annotated[
    str,
    matching(r"[0-9]+[kKmMgG]?", "an nginx size such as 50m"),
    AfterValidator(nonzero_nginx_size),
]
Cidr = Annotated[str, AfterValidator(_network)]
PrivateCidr = Annotated[str, AfterValidator(_network), AfterValidator(private_network)]
# One constraint per entry: it becomes one `--constraint` (a newline would split it) and one
# Compose list item; ',' and '=' have no place in a label value.
PlacementConstraint = Annotated[
    str,
    matching(
        r"(node|engine)\.[A-Za-z0-9_.-]+ *(==|!=) *[A-Za-z0-9_.:/@+-]+",
        "a Swarm placement constraint such as node.role == manager (one per entry; the value "
        "letters, digits and . _ : / @ + - only)",
    ),
    AfterValidator(known_constraint),
    Field(max_length=LABEL_TEXT_MAX),
]
# The constraints of one service: all must hold at once (components/config/formats.py).
PlacementConstraints = Annotated[
    list[PlacementConstraint], AfterValidator(consistent_constraints), Field(max_length=16)
]


class Model(BaseModel):
    # Aliases are the camelCase keys written in Pulumi.<stack>.yaml; strict mode refuses
    # "2" for a replica count or "yes" for a boolean instead of guessing.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )

    def _broken_rules(self) -> list[Violation]:
        """Cross-field rules; subclasses extend the list so every broken rule is reported."""
        return []

    @model_validator(mode="after")
    def _check_rules(self) -> Model:
        broken = self._broken_rules()
        if broken:
            raise RuleViolationError(broken)
        return self
