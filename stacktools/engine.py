"""Run the real Pulumi program offline, under Pulumi's unit-test mocks, and index what it registers.

``render("prod")`` runs ``__main__.py`` with ``Pulumi.prod.yaml`` (plus stand-in secrets and any
overrides) and returns every registered resource with its inputs *and* its resource options
(parent, protect, retainOnDelete, dependencies, ...), which Pulumi's ``Mocks.new_resource`` alone
does not show: a recording monitor keeps the whole registration request.

The tests and ``python -m stacktools render`` both use it, so what the tests check is what the
export writes. No Pulumi CLI, no provider plugin, no network.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the program imports `components` as Pulumi runs it

from stacktools import pulumi_yaml  # noqa: E402 - after the path the program needs

STACKS = ("dev", "staging", "prod")
TEST_ROOT_PASSWORD = "root-pw-Zq8!unit-test"
TEST_ADMIN_PASSWORD = "admin-pw-Kx3?unit-test"
TEST_SECRET_NAME_KEY = "unit-test-secret-name-key-0123456789abcdef"
# Stand-ins for the stack's encrypted secrets: an offline rendering never sees real ones.
TEST_SECRETS = {
    "brandclub:dbRootPassword": TEST_ROOT_PASSWORD,
    "brandclub:adminPassword": TEST_ADMIN_PASSWORD,
    "brandclub:secretNameKey": TEST_SECRET_NAME_KEY,
}


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


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.invokes: list[tuple[str, dict]] = []
        # The provider reference of each invoke, in the same order (an explicit provider's URN
        # and id; empty for the default provider).
        self.invoke_providers: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        name = args.inputs.get("name", args.name)
        return f"{name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        self.invokes.append((args.token, dict(args.args)))
        self.invoke_providers.append(args.provider)
        if args.token == "docker:index/getNetwork:getNetwork":
            name = args.args["name"]
            return {"id": f"{name}-id", "name": name, "driver": "overlay", "scope": "swarm"}, []
        if args.token == "docker:index/getRegistryImage:getRegistryImage":
            return {"name": args.args["name"], "sha256Digest": mock_digest(args.args["name"])}, []
        raise NotImplementedError(args.token)


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registered] = []

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=rpc.deserialize_properties(request.object),
                    raw_inputs=json_format.MessageToDict(request.object),
                    options={
                        "protect": request.protect if request.HasField("protect") else None,
                        "retainOnDelete": request.retainOnDelete
                        if request.HasField("retainOnDelete")
                        else None,
                        "dependencies": sorted(request.dependencies),
                        "deleteBeforeReplace": request.deleteBeforeReplace,
                        "ignoreChanges": sorted(request.ignoreChanges),
                        "replaceOnChanges": sorted(request.replaceOnChanges),
                        "additionalSecretOutputs": sorted(request.additionalSecretOutputs),
                        "provider": request.provider,
                        "aliases": [json_format.MessageToDict(a) for a in request.aliases],
                        "deletedWith": request.deletedWith,
                    },
                )
            )
        return response


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def stack_file_config(stack: str) -> dict[str, Any]:
    """The ``config:`` block of ``Pulumi.<stack>.yaml``, its scalars resolved as the Pulumi CLI
    resolves them (stacktools/pulumi_yaml.py: go-yaml v3, not PyYAML's YAML 1.1)."""
    document = pulumi_yaml.load((REPO / f"Pulumi.{stack}.yaml").read_text())
    return copy.deepcopy(document["config"])


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
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    program: Callable[[], None] | None = None,
) -> Rendering:
    """Run ``__main__.py`` (or ``program``) for ``stack`` under mocks.

    ``overrides`` deep-merges into the stack file's config (``{"brandclub:services":
    {"backend": {"replicas": 3}}}``); a value of ``DELETE`` removes a key. ``config``
    replaces the stack file entirely. ``secrets`` default to a test root password.
    """
    values = deep_merge(
        dict(config) if config is not None else stack_file_config(stack), overrides or {}
    )
    if secrets is None:
        secrets = TEST_SECRETS
    engine_config = {key: _as_engine_value(value) for key, value in values.items()}
    engine_config.update(secrets)

    mocks = _Mocks()
    monitor = _RecordingMonitor(mocks)
    logger = logging.getLogger(f"brandclub.render.{stack}")
    logger.propagate = False
    collector = _WarningCollector()
    logger.handlers = [collector]
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project="brandclub", stack=stack, preview=False, monitor=monitor, logger=logger
    )
    pulumi.runtime.set_all_config(engine_config, list(secrets))
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def run_program():
        if program is None:
            runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        else:
            program()
        outputs = pulumi_settings.get_root_resource().outputs
        return pulumi.Output.all(**outputs).apply(exports.update) if outputs else None

    try:
        run_program()
    except Exception as error:
        error.registered = monitor.registrations  # type: ignore[attr-defined]
        raise
    return Rendering(
        stack,
        monitor.registrations,
        exports,
        collector.messages,
        mocks.invokes,
        mocks.invoke_providers,
    )
