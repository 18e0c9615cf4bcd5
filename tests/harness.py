"""The tests' side of the offline engine: stand-in secrets, one rendering per distinct stack
configuration per test session, failure rendering, and small indexes into a rendering.

Everything that runs the program is ``stacktools.engine``, so the stack export and the tests
share one engine; this module adds what only tests need.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from components.config.loader import ConfigError, Problem
from components.pulumi_sdk import is_secret
from stacktools import engine
from stacktools.engine import (  # noqa: F401 - re-exported for the tests
    DELETE,
    REPO,
    STACKS,
    Registered,
    Rendering,
    deep_merge,
    mock_digest,
    stack_file_config,
)

FIXTURES = REPO / "tests" / "fixtures"
# A private ACME CA's root certificate, as an operator would paste it into the stack file.
PRIVATE_CA = (FIXTURES / "acme" / "private-ca.pem").read_text()

TEST_ROOT_PASSWORD = "root-pw-Zq8!unit-test"
TEST_ADMIN_PASSWORD = "admin-pw-Kx3?unit-test"
TEST_SECRET_NAME_KEY = "unit-test-secret-name-key-0123456789abcdef"
# Stand-ins for the stack's encrypted secrets: an offline rendering never sees real ones.
TEST_SECRETS = {
    "brandclub:dbRootPassword": TEST_ROOT_PASSWORD,
    "brandclub:adminPassword": TEST_ADMIN_PASSWORD,
    "brandclub:secretNameKey": TEST_SECRET_NAME_KEY,
}
NO_ROOT_PASSWORD = {k: v for k, v in TEST_SECRETS.items() if k != "brandclub:dbRootPassword"}

# An S3 off-site target for the backups, as an operator would configure one.
S3_OFFSITE = {
    "kind": "s3",
    "endpoint": "https://s3.eu-central-1.amazonaws.com",
    "bucket": "brandclub-backups",
    "accessKeyId": "AKIAEXAMPLE",
}
# The age recipient its copies are encrypted to (public: made with age-keygen for the tests).
OFFSITE_RECIPIENT = "age1exk4qcczx3az6hwzuw8atev6kt8z499gwqz4xvyupn6pfn3nzg0sfrcwd2"
# An identity in age's format (not a real key's): the stack holds one only during a restore from
# an off-site copy.
OFFSITE_IDENTITY = "AGE-SECRET-KEY-1" + "Q" * 58

# One rendering per distinct (stack, overrides, config, secrets), kept for the test session: a
# rendering is only read, and rendering the same configuration again gives the same result.
_RENDERED: dict[str, Rendering] = {}


def _key(stack: str, *parts: Any) -> str:
    def spell(value: Any) -> str:
        return "<DELETE>" if value is DELETE else repr(value)

    return json.dumps([stack, *parts], sort_keys=True, default=spell)


def render(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    program: Callable[[], None] | None = None,
    cached: bool = True,
    previous_outputs: Mapping[str, Any] | None = None,
) -> Rendering:
    """``stacktools.engine.render`` with the test secrets unless given, rendered once per
    session for each distinct configuration. A test that changes the program (a ``program``
    of its own, a monkeypatch) or what the stack's last deploy exported (``previous_outputs``)
    renders anew with ``cached=False``."""
    secrets = TEST_SECRETS if secrets is None else secrets
    if program is not None or not cached:
        return engine.render(
            stack,
            overrides,
            config=config,
            secrets=secrets,
            program=program,
            previous_outputs=previous_outputs,
        )
    key = _key(stack, overrides, config, secrets)
    if key not in _RENDERED:
        _RENDERED[key] = engine.render(stack, overrides, config=config, secrets=secrets)
    return _RENDERED[key]


def render_error(
    stack: str, overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> tuple[Exception, list[Registered]]:
    """Render a stack that must fail; return the error and whatever was registered before it."""
    kwargs.setdefault("secrets", TEST_SECRETS)
    try:
        engine.render(stack, overrides, **kwargs)
    except Exception as error:
        return error, error.registered  # type: ignore[attr-defined]
    raise AssertionError(f"rendering {stack} with {overrides} did not fail")


def problem_at(error: Exception, key: str) -> Problem:
    """The one problem a ConfigError reports for ``key``."""
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {error}"
    matches = [problem for problem in error.problems if problem.key == key]
    assert matches, f"no problem for {key}; problems: {error.problems}"
    assert len(matches) == 1, matches
    return matches[0]


def bad_input(
    stack: str, overrides: Mapping[str, Any], key: str, expected: str, found: str, id: str
) -> Any:
    """One case for :func:`assert_reported_before_registering`."""
    return pytest.param(stack, overrides, key, expected, found, id=id)


def assert_reported_before_registering(
    stack: str, overrides: Mapping[str, Any], key: str, expected: str, found: str
) -> None:
    """Rendering fails with a ConfigError before anything is registered, and it names ``key``,
    what was found and what is expected."""
    error, registered = render_error(stack, overrides)
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {error}"
    assert registered == []
    problem = problem_at(error, key)
    assert expected in problem.expected
    assert found in problem.found
    assert str(problem) in str(error)


def pinned(tagged: str) -> str:
    """``repo:tag`` as the program deploys it: pinned to the (mocked) registry digest."""
    return f"{tagged}@{mock_digest(tagged)}"


def find_plain_secret(value: Any, secret: str, path: str = "") -> list[str]:
    """Paths in raw (engine-bound) inputs where ``secret`` appears outside a secret wrapper."""
    if isinstance(value, dict):
        if is_secret(value):
            return []
        return [p for k, v in value.items() for p in find_plain_secret(v, secret, f"{path}.{k}")]
    if isinstance(value, list):
        return [
            p for i, v in enumerate(value) for p in find_plain_secret(v, secret, f"{path}[{i}]")
        ]
    if isinstance(value, str) and secret in value:
        return [path]
    return []


COMMAND = "command:local:Command"


def jobs(rendering: Rendering) -> dict[str, Registered]:
    """The site jobs by job name (``configurator``), in registration order."""
    return {r.name.removeprefix("jobs-"): r for r in rendering.of_type(COMMAND)}


def depends_on(rendering: Rendering, resource: Registered) -> set[str]:
    """Names of every resource this one waits for, directly or through what it waits for."""
    seen: set[str] = set()
    pending = list(resource.options["dependencies"])
    while pending:
        urn = pending.pop()
        if urn in seen:
            continue
        seen.add(urn)
        pending += rendering.by_urn(urn).options["dependencies"]
    return {rendering.by_urn(urn).name for urn in seen}


def app_services(rendering: Rendering) -> dict[str, Registered]:
    """The app stack's services by their short name (``backend``)."""
    prefix = f"brandclub-{rendering.stack}_"
    return {
        name.removeprefix(prefix): service
        for name, service in rendering.services.items()
        if name.startswith(prefix)
    }


def env_of(job: Registered) -> dict[str, str]:
    return dict(line.split("=", 1) for line in job.inputs["environment"]["JOB_ENV"].splitlines())
