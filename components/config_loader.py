"""Read the ``brandclub:*`` keys of the running stack into a validated :class:`StackConfig`.

All problems are collected and reported together as one :class:`ConfigError`, naming each key as
the operator writes it (``brandclub:mariadb.bufferPoolSize``), the value found and what is
expected, so one ``pulumi preview`` shows everything to fix.
"""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError

from components.config import ENVIRONMENTS, NAMESPACE, RuleViolationError, StackConfig

# Keys that must be encrypted stack secrets; their values are never echoed in errors.
SECRET_KEYS = ("dbRootPassword", "adminPassword", "secretNameKey")
# Secrets that only some settings need (the model says which); encrypted when present.
OPTIONAL_SECRET_KEYS = ("dbRootPasswordPrevious", "registryPassword", "backupOffsiteSecret")


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
    prefix = f"{NAMESPACE}:"
    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    values = {key: value for key, value in raw.items() if key.startswith(prefix)}
    secret_keys = {key for key in values if runtime_config.is_config_secret(key)}
    secret_keys |= set(runtime_config.get_config_secret_keys_env())
    return parse_stack_config(pulumi.get_stack(), values, secret_keys)


def parse_stack_config(
    stack: str, values: Mapping[str, str], secret_keys: Collection[str]
) -> StackConfig:
    """Validate raw ``brandclub:key -> string`` config as Pulumi hands it to a program."""
    problems: list[Problem] = []
    data: dict[str, object] = {}
    hidden = {key.partition(":")[2] for key in secret_keys}
    hidden |= set(SECRET_KEYS) | set(OPTIONAL_SECRET_KEYS)
    for full_key, value in values.items():
        key = full_key.partition(":")[2]
        # A secret is text as the operator typed it, even when it happens to look like JSON.
        data[key] = value if key in hidden else _decode(value)

    reported_secrets = set()
    for key in SECRET_KEYS + OPTIONAL_SECRET_KEYS:
        full_key = f"{NAMESPACE}:{key}"
        command = f"pulumi config set --secret {full_key} <value> --stack {stack}"
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

    environment = data.get("environment")
    if stack in ENVIRONMENTS and environment in ENVIRONMENTS and environment != stack:
        problems.append(
            Problem(
                f"{NAMESPACE}:environment",
                repr(environment),
                f"'{stack}': stack '{stack}' must deploy the {stack} environment",
            )
        )

    config = None
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as error:
        for detail in error.errors():
            loc = tuple(detail["loc"])
            if loc and loc[0] in reported_secrets:
                continue
            problems.extend(_problems(loc, detail, hidden))

    if problems or config is None:
        raise ConfigError(stack, problems)
    return config


def _decode(value: object) -> object:
    # Pulumi passes structured config (objects, lists) as JSON text and scalars as plain text.
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _problems(loc: tuple, detail: Mapping, hidden: Collection[str]) -> list[Problem]:
    violation = detail.get("ctx", {}).get("error")
    if isinstance(violation, RuleViolationError):
        return [
            Problem(_key_path(loc + tuple(v.key.split("."))), _show(v.found), v.expected)
            for v in violation.violations
        ]

    path = _key_path(loc)
    # Secret values never reach an error message, which ends up in CI logs and PR comments.
    found = "a secret value (not shown)" if loc and loc[0] in hidden else _show(detail["input"])
    if detail["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        expected = f"no such key; did you mean '{hint[0]}'?" if hint else "no such key"
        return [Problem(path, found, f"{expected} (known: {', '.join(known)})")]
    if detail["type"] == "missing":
        return [Problem(path, "nothing", "a value: this key is required")]
    if detail["type"] == "too_short":
        return [Problem(path, found, f"at least {detail['ctx']['min_length']} entry")]
    message = str(detail["msg"]).removeprefix("Value error, ").removeprefix("expected ")
    if message.startswith("Input should be "):
        message = message.removeprefix("Input should be ")
    else:
        message = message[:1].lower() + message[1:]
    return [Problem(path, found, message)]


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


def _known_keys(loc: tuple) -> list[str]:
    """The keys the model at ``loc`` accepts, for "did you mean" hints."""
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        model = _model_in(field.annotation) if field else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def load_docker_host() -> str | None:
    """The swarm the docker provider targets (``docker:host``), for the docker CLI of site jobs."""
    return pulumi.Config("docker").get("host")
