"""The test side of the offline renderer: failure rendering and the plain-secret finder.

Everything that runs the program lives in ``stacktools.engine`` so the stack export and the tests
share one engine; this module re-exports it under the names the tests use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.runtime import rpc

from stacktools.engine import (  # noqa: F401 - re-exported for the tests
    DELETE,
    REPO,
    STACKS,
    TEST_ADMIN_PASSWORD,
    TEST_ROOT_PASSWORD,
    TEST_SECRET_NAME_KEY,
    TEST_SECRETS,
    Registered,
    Rendering,
    mock_digest,
    render,
    stack_file_config,
)


def pinned(tagged: str) -> str:
    """``repo:tag`` as the program deploys it: pinned to the (mocked) registry digest."""
    return f"{tagged}@{mock_digest(tagged)}"


SECRET_SIG = rpc._special_sig_key  # "4dabf18193072939515e22adb298388d"
SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270"


def render_error(
    stack: str, overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> tuple[Exception, list[Registered]]:
    """Render a stack that must fail; return the error and whatever was registered before it."""
    try:
        render(stack, overrides, **kwargs)
    except Exception as error:
        return error, error.registered  # type: ignore[attr-defined]
    raise AssertionError(f"rendering {stack} with {overrides} did not fail")


def find_plain_secret(value: Any, secret: str, path: str = "") -> list[str]:
    """Paths in raw (engine-bound) inputs where ``secret`` appears outside a secret wrapper."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_MARK:
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


def env_of(job: Registered) -> dict[str, str]:
    return dict(line.split("=", 1) for line in job.inputs["environment"]["JOB_ENV"].splitlines())
