"""The offline engine: the real Pulumi program run under Pulumi's mocks, and an index of what it
registers.

``render("prod", secrets=...)`` runs ``__main__.py`` with ``Pulumi.prod.yaml`` (plus the given
secrets and any overrides) and returns every registered resource with its inputs *and* its
resource options (parent, protect, retainOnDelete, dependencies, ...), which Pulumi's
``Mocks.new_resource`` alone does not show: a recording monitor keeps the whole registration
request (components/pulumi_sdk.py, the one place that touches the SDK's internals).

The tests and ``python -m stacktools render`` both use it, so what the tests check is what the
export writes. No Pulumi CLI, no provider plugin, no network.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import runpy
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the program imports `components` as Pulumi runs it

from components import pulumi_sdk  # noqa: E402 - after the path the program needs
from components.platform.catalogue import ENVIRONMENTS  # noqa: E402
from stacktools import pulumi_yaml  # noqa: E402
from stacktools.stack_secrets import is_ciphertext  # noqa: E402

PROJECT = "brandclub"
# A Pulumi stack per environment, named after it.
STACKS = ENVIRONMENTS


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    raw_inputs: dict[str, Any]  # as sent to the engine, secrets still wrapped
    options: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        """Canonical text of name, parent chain, inputs and options, for exact comparison."""
        return json.dumps(
            {
                "type": self.type,
                "name": self.name,
                "urn": self.urn,
                "parent": self.parent,
                "custom": self.custom,
                "inputs": self.raw_inputs,
                "options": self.options,
            },
            sort_keys=True,
        )

    # Shortcuts into a docker:index/service:Service's inputs.
    @property
    def container(self) -> dict[str, Any]:
        return self.inputs["taskSpec"]["containerSpec"]

    @property
    def labels(self) -> dict[str, str]:
        return {item["label"]: item["value"] for item in self.inputs.get("labels") or []}

    @property
    def replicas(self) -> int:
        return self.inputs["mode"]["replicated"]["replicas"]

    @property
    def network_ids(self) -> list[str]:
        return [n["id"] for n in self.inputs["taskSpec"].get("networksAdvanceds") or []]


@dataclass
class Rendering:
    stack: str
    resources: list[Registered]
    exports: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    invokes: list[tuple[str, dict]] = field(default_factory=list)
    invoke_providers: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{len(matches)} resources named {name!r}"
        return matches[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    @property
    def services(self) -> dict[str, Registered]:
        """Swarm services by their swarm name, e.g. ``brandclub-prod_backend``."""
        return {r.inputs["name"]: r for r in self.of_type("docker:index/service:Service")}

    def service(self, stack: str, service: str) -> Registered:
        return self.services[f"{stack}_{service}"]

    def children_of(self, component_type: str) -> list[Registered]:
        """Every resource below a component of this type, at any depth."""
        roots = {r.urn for r in self.resources if r.type == component_type}
        found: list[Registered] = []
        for resource in self.resources:
            parent = resource.parent
            while parent:
                if parent in roots:
                    found.append(resource)
                    break
                parent = next((r.parent for r in self.resources if r.urn == parent), "")
        return found

    def network_name(self, network_id: str) -> str:
        """The docker network name behind an id handed to a service."""
        for network in self.of_type("docker:index/network:Network"):
            if network_id == f"{network.inputs['name']}-id":
                return network.inputs["name"]
        for token, args in self.invokes:
            if token == "docker:index/getNetwork:getNetwork" and network_id == f"{args['name']}-id":
                return args["name"]
        raise KeyError(network_id)

    def service_networks(self, service: Registered) -> set[str]:
        return {self.network_name(i) for i in service.network_ids}


def mock_digest(image: str) -> str:
    """The digest the mocked registry reports for ``image``: stable, and different per tag."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


STACK_REFERENCE = "pulumi:pulumi:StackReference"
# pulumi-command's local.run: the capacity preflight reads the swarm with it.
LOCAL_RUN = "command:local:run"
# Why the offline engine answers no local.run: it runs no command and reaches no swarm.
OFFLINE_RUN = "the offline engine runs no command, so no swarm was read"
# Runs a local.run invoke's command (its arguments: command, environment, ...) and returns its
# result (stdout, stderr), as pulumi-command would.
CommandRunner = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def run_on_this_machine(timeout: float) -> CommandRunner:
    """A runner that runs local.run's command as pulumi-command does (``/bin/sh -c``), on this
    machine, against this process's ``DOCKER_HOST``: the command's own (the stack file's
    ``docker:host``) is dropped, since whoever uses this (a tier, a benchmark) points at a swarm
    on purpose."""

    def run(args: Mapping[str, Any]) -> Mapping[str, Any]:
        environment = {
            key: value
            for key, value in (args.get("environment") or {}).items()
            if key != "DOCKER_HOST"
        }
        result = subprocess.run(
            ["/bin/sh", "-c", args["command"]],
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return {"command": args["command"], "stdout": result.stdout, "stderr": result.stderr}

    return run


class _Mocks(pulumi_sdk.Mocks):
    """The provider side: ids for new resources, answers to the invokes the program makes."""

    def __init__(
        self,
        previous_outputs: Mapping[str, Any] | None = None,
        commands: CommandRunner | None = None,
    ) -> None:
        # What the stack's last deploy exported, as its StackReference to itself reads it.
        self.previous_outputs = dict(previous_outputs or {})
        self.commands = commands
        self.invokes: list[tuple[str, dict]] = []
        # The provider reference of each invoke, in the same order (an explicit provider's URN
        # and id; empty for the default provider).
        self.invoke_providers: list[str] = []

    def new_resource(self, args: pulumi_sdk.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == STACK_REFERENCE:
            stack = args.resource_id
            return stack, {"name": stack, "outputs": self.previous_outputs}
        name = args.inputs.get("name", args.name)
        return f"{name}-id", dict(args.inputs)

    def call(self, args: pulumi_sdk.MockCallArgs) -> tuple[dict, list]:
        self.invokes.append((args.token, dict(args.args)))
        self.invoke_providers.append(args.provider)
        if args.token == "docker:index/getNetwork:getNetwork":
            name = args.args["name"]
            return {"id": f"{name}-id", "name": name, "driver": "overlay", "scope": "swarm"}, []
        if args.token == "docker:index/getRegistryImage:getRegistryImage":
            return {"name": args.args["name"], "sha256Digest": mock_digest(args.args["name"])}, []
        if args.token == LOCAL_RUN:
            if self.commands is None:
                # As the engine reports a command that could not run: a failed invoke.
                return {}, [("command", OFFLINE_RUN)]
            return dict(self.commands(dict(args.args))), []
        raise NotImplementedError(args.token)


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def stack_file_config(stack: str) -> dict[str, Any]:
    """The ``config:`` block of ``Pulumi.<stack>.yaml``, its scalars resolved as the Pulumi CLI
    resolves them (stacktools/pulumi_yaml.py: go-yaml v3, not PyYAML's YAML 1.1)."""
    return copy.deepcopy(_config_block((REPO / f"Pulumi.{stack}.yaml").read_text()))


@functools.lru_cache(maxsize=16)
def _config_block(text: str) -> dict[str, Any]:
    # Parsed once per distinct file text: every rendering of a stack reads the same file.
    return pulumi_yaml.load(text)["config"]


def _as_engine_value(value: Any) -> str:
    # What the Pulumi CLI hands a program: text as it is, a number or boolean as its text, maps
    # and lists as JSON (a whole float as an integer, as Go writes it). NaN is let through as
    # text so tests can check the program refuses it.
    return pulumi_yaml.engine_text(value, allow_nan=True)


DELETE = object()


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged into a copy of ``base`` at every depth; ``DELETE`` removes a key."""
    merged = dict(base)
    for key, value in override.items():
        if value is DELETE:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    secrets: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    program: Callable[[], None] | None = None,
    previous_outputs: Mapping[str, Any] | None = None,
    commands: CommandRunner | None = None,
) -> Rendering:
    """Run ``__main__.py`` (or ``program``) for ``stack`` under mocks.

    ``overrides`` deep-merges into the stack file's config (``{"brandclub:services":
    {"backend": {"replicas": 3}}}``); a value of ``DELETE`` removes a key. ``config``
    replaces the stack file entirely. ``secrets`` are the stack's secret config values.
    ``previous_outputs`` are what the stack's last deploy exported (none: never deployed).
    ``commands`` runs what the program runs through pulumi-command's ``local.run`` (the
    capacity preflight's docker CLI); without it that invoke fails, as with no swarm to reach.
    A failure carries what was registered before it as ``error.registered``.
    """
    values = deep_merge(
        dict(config) if config is not None else stack_file_config(stack), overrides or {}
    )
    # A committed stack file carries its secrets as ciphertext (stacktools/stack_secrets.py);
    # the mocks cannot decrypt it, and ``secrets`` gives the values instead.
    values = {key: value for key, value in values.items() if not is_ciphertext(value)}
    engine_config = {key: _as_engine_value(value) for key, value in values.items()}
    engine_config.update(secrets)
    registrations: list[Registered] = []
    mocks = _Mocks(previous_outputs, commands)
    logger = logging.getLogger(f"stacktools.render.{stack}")
    logger.propagate = False
    collector = _WarningCollector()
    logger.handlers = [collector]

    def record(request: dict[str, Any], urn: str) -> None:
        registrations.append(Registered(urn=urn, **request))

    def main() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")

    try:
        exports = pulumi_sdk.run_under_mocks(
            program or main,
            mocks=mocks,
            monitor=pulumi_sdk.RecordingMonitor(mocks, record),
            project=PROJECT,
            stack=stack,
            config=engine_config,
            secret_keys=list(secrets),
            logger=logger,
        )
    except Exception as error:
        error.registered = registrations  # type: ignore[attr-defined]
        raise
    return Rendering(
        stack, registrations, exports, collector.messages, mocks.invokes, mocks.invoke_providers
    )
