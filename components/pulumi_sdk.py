"""Every use of the Pulumi SDK beyond its documented API, in one place.

Two callers need what the SDK does not publish: the program's config loader (every raw config
key and which are secret, to report a near miss of the ``brandclub`` namespace and a plain-text
secret) and the offline engine (``stacktools/engine.py``), which runs the program under the SDK's
mocks and records each whole registration request, options included, through a monitor of its
own. Everything else uses ``pulumi`` as documented.

``tests/components/test_pulumi_sdk.py`` exercises each name used here, so an SDK upgrade that
moves one fails there, loudly and by name, instead of as a wrong rendering somewhere else.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.sync_await import _sync_await

# How the engine marks a secret value in a serialized property map.
SECRET_SIG_KEY: str = rpc._special_sig_key
SECRET_SIG: str = rpc._special_secret_sig

DIY_ORGANIZATION = "organization"
Mocks = pulumi.runtime.Mocks
MockResourceArgs = pulumi.runtime.MockResourceArgs
MockCallArgs = pulumi.runtime.MockCallArgs


def is_secret(value: Any) -> bool:
    """Whether a serialized property value is a Pulumi secret."""
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


# --- the program: its raw config --------------------------------------------------------------


def raw_config() -> tuple[dict[str, str], set[str]]:
    """Every ``namespace:key`` the runtime was given, in any namespace, and the secret ones."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = {key for key in values if runtime_config.is_config_secret(key)}
    secret_keys |= set(runtime_config.get_config_secret_keys_env())
    return values, secret_keys


def previous_outputs() -> dict[str, Any]:
    """The outputs of the running stack's last deploy, read before anything is registered.

    A StackReference to the stack itself reads its last checkpoint (a read, not a resource
    the deploy changes); its outputs are awaited here with the SDK's own synchronous wait, the
    one it uses for invokes, so the configuration can be judged against what is deployed before
    the first resource is registered. A stack never deployed has no outputs.
    """
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    reference = pulumi.StackReference(f"previous-{pulumi.get_stack()}", name)
    outputs = _sync_await(reference.outputs.future())
    return dict(outputs or {})


# --- the offline engine: the program under mocks -----------------------------------------------


class RecordingMonitor(runtime_mocks.MockMonitor):
    """The SDK's mock monitor, which also hands every registration request to ``record`` as
    (request fields, the URN the mock gave)."""

    def __init__(self, mocks: Mocks, record: Callable[[dict[str, Any], str], None]) -> None:
        super().__init__(mocks)
        self._record = record

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(_registration(request), response.urn)
        return response


def _registration(request: Any) -> dict[str, Any]:
    """A RegisterResourceRequest as plain data: inputs both deserialized and as sent (secrets
    still wrapped), and the options."""

    def optional(field: str) -> Any:
        return getattr(request, field) if request.HasField(field) else None

    return {
        "type": request.type,
        "name": request.name,
        "parent": request.parent,
        "custom": request.custom,
        "inputs": rpc.deserialize_properties(request.object),
        "raw_inputs": json_format.MessageToDict(request.object),
        "options": {
            "protect": optional("protect"),
            "retainOnDelete": optional("retainOnDelete"),
            "dependencies": sorted(request.dependencies),
            "deleteBeforeReplace": request.deleteBeforeReplace,
            "ignoreChanges": sorted(request.ignoreChanges),
            "replaceOnChanges": sorted(request.replaceOnChanges),
            "additionalSecretOutputs": sorted(request.additionalSecretOutputs),
            "provider": request.provider,
            "aliases": [json_format.MessageToDict(a) for a in request.aliases],
            "deletedWith": request.deletedWith,
        },
    }


_EMPTY_STACK_TRACE = runtime_resource.source_pb2.StackTrace


@contextlib.contextmanager
def _without_stack_traces() -> Iterator[None]:
    # Every registration walks the whole Python stack (traceback.extract_stack) to tell the
    # engine where in the program the resource was declared; the mock monitor drops that, and
    # the walk was a fifth of a rendering's time. The request still carries an empty StackTrace.
    saved = runtime_resource._get_stack_trace
    runtime_resource._get_stack_trace = _EMPTY_STACK_TRACE
    try:
        yield
    finally:
        runtime_resource._get_stack_trace = saved


def run_under_mocks(
    program: Callable[[], None],
    *,
    mocks: Mocks,
    monitor: RecordingMonitor,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    logger: logging.Logger,
) -> dict[str, Any]:
    """Run ``program`` as ``pulumi up`` would run it for ``stack``, against ``mocks``; return the
    stack outputs it exported."""
    runtime_settings.ROOT.set(None)
    # The organization the CLI names a DIY backend's stacks with: a stack reference to the
    # stack itself (previous_outputs) reads organization/<project>/<stack>.
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack=stack,
        preview=False,
        monitor=monitor,
        logger=logger,
        organization=DIY_ORGANIZATION,
    )
    pulumi.runtime.set_all_config(dict(config), secret_keys)
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any] | None:
        program()
        outputs = runtime_settings.get_root_resource().outputs
        return pulumi.Output.all(**outputs).apply(exports.update) if outputs else None

    with _without_stack_traces():
        run()
    return exports
