"""Read the ``brandclub:*`` keys of the running stack into a validated :class:`StackConfig`.

All problems are collected and reported together as one :class:`ConfigError`, naming each key as
the operator writes it (``brandclub:mariadb.bufferPoolSize``), the value found and what is
expected, so one ``pulumi preview`` shows everything to fix.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pulumi
from pydantic import BaseModel, ValidationError

from components import pulumi_sdk
from components.config.model import StackConfig
from components.config.secret_rules import NAMESPACE, OPTIONAL_SECRET_KEYS, SECRET_KEYS
from components.config.sections import Images, MariaDBSettings
from components.config.stacks import (
    deployed_redis,
    deployed_series,
    docker_host_problems,
    domain_owner_problems,
    redis_step_down_problems,
    series_step_down_problems,
    stack_file_domains,
)
from components.config.types import RuleViolationError, Violation
from components.platform.catalogue import ENVIRONMENTS


@dataclass(frozen=True)
class Problem:
    key: str
    found: str
    expected: str

    def __str__(self) -> str:
        return f"{self.key}: found {self.found}; expected {self.expected}"


class ConfigError(pulumi.RunError):
    """Bad stack configuration. A RunError, so Pulumi prints the message without a traceback."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"Stack '{stack}' has {len(problems)} configuration problem(s); "
            f"nothing was deployed:\n{lines}"
        )


def load_stack_config() -> StackConfig:
    """Load the running stack's configuration from the Pulumi runtime."""
    # Every key the runtime has, in any namespace: a near miss of brandclub: is reported.
    values, secret_keys = pulumi_sdk.raw_config()
    previous = pulumi_sdk.previous_outputs()
    return parse_stack_config(
        pulumi.get_stack(),
        values,
        secret_keys,
        claimed_domains=stack_file_domains(),
        deployed=deployed_series(previous),
        deployed_redis=deployed_redis(previous),
    )


def parse_stack_config(
    stack: str,
    values: Mapping[str, str],
    secret_keys: Collection[str],
    *,
    claimed_domains: Mapping[str, Collection[str]] | None = None,
    deployed: str | None = None,
    deployed_redis: str | None = None,
) -> StackConfig:
    """Validate raw ``namespace:key -> string`` config as Pulumi hands it to a program; only the
    ``brandclub:`` keys are read, other namespaces only checked for a mistyped ``brandclub``.

    ``claimed_domains``: the domains each stack file of the repository claims (none of this
    stack's may be another's); ``deployed``: the MariaDB series the stack's last deploy ran."""
    prefix = f"{NAMESPACE}:"
    problems = _namespace_typos(values, secret_keys)
    problems += [Problem(*problem) for problem in docker_host_problems(stack, values)]
    values = {key: value for key, value in values.items() if key.startswith(prefix)}
    data: dict[str, object] = {}
    # Why a value that looks like JSON is not: shown with the key's problem.
    not_json: dict[str, str] = {}
    # Values refused as text (a key twice, nested too deep): reported once, not validated.
    refused: dict[str, str] = {}
    hidden = {key.partition(":")[2] for key in secret_keys}
    hidden |= set(SECRET_KEYS) | set(OPTIONAL_SECRET_KEYS)
    for full_key, value in values.items():
        key = full_key.partition(":")[2]
        # A secret is text as the operator typed it, even when it happens to look like JSON.
        data[key] = value if key in hidden else _decode(value, key, not_json, refused)
    for key, expected in refused.items():
        problems.append(Problem(f"{prefix}{key}", _show(values[f"{prefix}{key}"]), expected))

    reported_secrets = set()
    for key in SECRET_KEYS + OPTIONAL_SECRET_KEYS:
        full_key = f"{NAMESPACE}:{key}"
        command = set_secret_command(key, stack)
        if key in OPTIONAL_SECRET_KEYS and full_key not in values:
            continue
        if full_key not in values or values[full_key] in ("", None):
            problems.append(Problem(full_key, "nothing", f"a secret; set it with: {command}"))
            reported_secrets.add(key)
        elif full_key not in secret_keys:
            problems.append(
                Problem(
                    full_key,
                    "a plain-text value",
                    f"an encrypted secret; store it with: {command}",
                )
            )
            reported_secrets.add(key)

    # A stack deploys the environment it is named after: two stacks can never claim the same
    # Docker names (brandclub-<env>-*), and prod's names are only ever prod's stack's.
    environment = data.get("environment")
    if environment in ENVIRONMENTS and environment != stack:
        expected = (
            f"'{stack}': stack '{stack}' must deploy the {stack} environment"
            if stack in ENVIRONMENTS
            else f"the stack's name, and stacks are named {', '.join(ENVIRONMENTS)}: stack "
            f"'{stack}' would claim the Docker names of stack '{environment}' "
            f"(brandclub-{environment}-*)"
        )
        problems.append(Problem(f"{NAMESPACE}:environment", repr(environment), expected))

    problems += [
        Problem(*problem)
        for problem in domain_owner_problems(stack, data.get("domains"), claimed_domains or {})
    ]
    mariadb = data.get("mariadb")
    default_series = MariaDBSettings.model_fields["version"].default
    configured_series = (
        mariadb.get("version", default_series) if isinstance(mariadb, dict) else None
    )
    problems += [
        Problem(*problem) for problem in series_step_down_problems(configured_series, deployed)
    ]
    images = data.get("images")
    configured_redis = (
        images.get("redis", Images.model_fields["redis"].default)
        if isinstance(images, dict)
        else Images.model_fields["redis"].default
    )
    problems += [
        Problem(*problem) for problem in redis_step_down_problems(configured_redis, deployed_redis)
    ]

    config = None
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as error:
        for detail in error.errors():
            loc = tuple(detail["loc"])
            if loc and (loc[0] in reported_secrets or loc[0] in refused):
                continue
            problems.extend(_problems(loc, detail, hidden, stack, not_json))

    if problems or config is None:
        raise ConfigError(stack, problems)
    return config


def set_secret_command(key: str, stack: str) -> str:
    return f"pulumi config set --secret {NAMESPACE}:{key} <value> --stack {stack}"


def _namespace_typos(values: Mapping[str, str], secret_keys: Collection[str]) -> list[Problem]:
    """Keys whose namespace is a near miss of ``brandclub`` (``brandclb:dataProtection``): the
    program would never read them, so the setting would silently not apply."""
    problems = []
    for full_key in sorted(values):
        namespace, colon, name = full_key.partition(":")
        if not colon or namespace == NAMESPACE:
            continue
        folded = re.sub(r"[^a-z0-9]", "", namespace.lower())
        if folded != NAMESPACE and difflib.SequenceMatcher(None, folded, NAMESPACE).ratio() < 0.8:
            continue
        found = "a secret value (not shown)" if full_key in secret_keys else _show(values[full_key])
        problems.append(
            Problem(
                full_key,
                found,
                f"no such namespace; did you mean '{NAMESPACE}:{name}'? (this program reads "
                f"only {NAMESPACE}:* keys)",
            )
        )
    return problems


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


# No setting is nested deeper than a few levels; far deeper is a mistake or an attack, and
# would exhaust Python's recursion (a RecursionError, a traceback instead of a problem).
NESTING_MAX = 16


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # JSON lets a key repeat and keeps the last: a setting written twice would silently lose
    # the first value.
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise _DuplicateKeyError(f"the key {name!r} appears twice in one object")
        seen.add(name)
    return dict(pairs)


def _nesting(value: object) -> int:
    """How deeply maps and lists nest in ``value`` (without recursing)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > NESTING_MAX:
                break
            children = item.values() if isinstance(item, dict) else item
            pending += [(child, depth + 1) for child in children]
    return deepest


def _decode(value: object, key: str, not_json: dict[str, str], refused: dict[str, str]) -> object:
    # Pulumi passes structured config (objects, lists) as JSON text and scalars as plain text.
    # Strict JSON: Pulumi itself never writes NaN or Infinity.
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            decoded = json.loads(
                value, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
            )
        except _DuplicateKeyError as error:
            refused[key] = f"each key once: {error}, and the last would silently win"
            return value
        except RecursionError:
            refused[key] = f"settings nested at most {NESTING_MAX} levels deep"
            return value
        except ValueError as error:
            not_json[key] = str(error).split(": line ")[0]
            return value
        if _nesting(decoded) > NESTING_MAX:
            refused[key] = f"settings nested at most {NESTING_MAX} levels deep"
            return value
        return decoded
    return value


def _problems(
    loc: tuple, detail: Mapping, hidden: Collection[str], stack: str, not_json: Mapping[str, str]
) -> list[Problem]:
    raw_loc, (loc, _) = loc, _walk(loc)
    violation = detail.get("ctx", {}).get("error")
    if isinstance(violation, RuleViolationError):
        return [_rule_problem(loc, v, stack) for v in violation.violations]

    path = _key_path(loc)
    # Secret values never reach an error message, which ends up in CI logs and PR comments.
    found = "a secret value (not shown)" if loc and loc[0] in hidden else _show(detail["input"])
    if detail["type"] == "extra_forbidden":
        known = _known_keys(raw_loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        expected = f"no such key; did you mean '{hint[0]}'?" if hint else "no such key"
        return [Problem(path, found, f"{expected} (known: {', '.join(known)})")]
    if detail["type"] == "missing":
        return [Problem(path, "nothing", "a value: this key is required")]
    if detail["type"] == "too_short":
        return [Problem(path, found, f"at least {detail['ctx']['min_length']} entry")]
    if detail["type"] in ("model_type", "model_attributes_type", "dict_type"):
        # Not the internal class name: what the operator writes.
        expected = "a map of settings (keys and values, as in the stack file)"
        if len(loc) == 1 and loc[0] in not_json:
            expected += f"; the text starts like JSON but is not valid JSON: {not_json[loc[0]]}"
        return [Problem(path, found, expected)]
    if detail["type"] == "list_type" and len(loc) == 1 and loc[0] in not_json:
        return [Problem(path, found, f"a list; the text is not valid JSON: {not_json[loc[0]]}")]
    message = str(detail["msg"]).removeprefix("Value error, ").removeprefix("expected ")
    if message.startswith("Input should be "):
        message = message.removeprefix("Input should be ")
    else:
        message = message[:1].lower() + message[1:]
    return [Problem(path, found, message)]


def _rule_problem(loc: tuple, violation: Violation, stack: str) -> Problem:
    key_loc = loc + tuple(violation.key.split("."))
    expected = violation.expected
    # A secret that a setting needs: the loader, which knows the stack, says how to set it.
    if not loc and violation.key in OPTIONAL_SECRET_KEYS and violation.found is None:
        expected += f"; set it with: {set_secret_command(violation.key, stack)}"
    return Problem(_key_path(key_loc), _show(violation.found), expected)


def _key_path(loc: tuple) -> str:
    path = NAMESPACE + ":"
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("" if index == 0 else ".") + str(part)
    return path


def _show(value: object) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _walk(loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """``loc`` as the operator writes it, and the model it ends in.

    pydantic puts the tag of a discriminated union into the location
    (``backup.offsite.s3.bucket``); the stack file has no such level, so it is dropped.
    """
    model: type[BaseModel] | None = StackConfig
    clean: list = []
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        clean.append(part)
        if isinstance(part, int) or model is None:
            continue
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        if field is None:
            model = None
            continue
        members = _models_in(field.annotation)
        model = members[0] if len(members) == 1 else None
        if len(members) > 1 and parts:
            tagged = {_tag(member): member for member in members}
            if parts[0] in tagged:
                model = tagged[parts.pop(0)]
    return tuple(clean), model


def _tag(model: type[BaseModel]) -> object:
    kind = model.model_fields.get("kind")
    arguments = typing.get_args(kind.annotation) if kind else ()
    return arguments[0] if arguments else None


def _known_keys(loc: tuple) -> list[str]:
    """The keys the model at ``loc`` accepts, for "did you mean" hints."""
    _, model = _walk(loc)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [found for argument in typing.get_args(annotation) for found in _models_in(argument)]


def load_docker_host() -> str | None:
    """The swarm the docker provider targets (``docker:host``), for the docker CLI of site jobs."""
    return pulumi.Config("docker").get("host")
