"""components/pulumi_sdk.py against the installed Pulumi SDK: every undocumented name it uses is
still there and still behaves as the program and the offline engine expect.

An SDK upgrade that moves one of them fails here, naming it, before it turns into a rendering
that silently lacks options or a config loader that no longer sees secret keys.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pulumi
import pytest
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import rpc, sync_await
from pulumi.runtime import settings as runtime_settings

from components import pulumi_sdk
from stacktools import drift

# The SDK's own, taken when this module is imported (collection), before any rendering.
SDK_STACK_WALK = runtime_resource._get_stack_trace

# (module, attribute) for each name outside the SDK's documented API.
INTERNALS = [
    (rpc, "_special_sig_key"),
    (rpc, "_special_secret_sig"),
    (rpc, "deserialize_properties"),
    (runtime_mocks, "MockMonitor"),
    (runtime_resource, "_get_stack_trace"),
    (runtime_resource, "source_pb2"),
    (runtime_settings, "ROOT"),
    (runtime_settings, "get_root_resource"),
    (runtime_config, "CONFIG"),
    (runtime_config, "get_config_env"),
    (runtime_config, "is_config_secret"),
    (runtime_config, "get_config_secret_keys_env"),
    (sync_await, "_sync_await"),
]


@pytest.mark.parametrize(("module", "name"), INTERNALS, ids=lambda v: getattr(v, "__name__", v))
def test_every_internal_name_is_still_there(module: Any, name: str) -> None:
    assert hasattr(module, name), f"Pulumi SDK {module.__name__} no longer has {name}"


def test_secrets_are_marked_as_the_engine_marks_them() -> None:
    # The engine's wire format (sdk/go/common/resource/sig): the drift report reads it too.
    assert pulumi_sdk.SECRET_SIG_KEY == drift.SECRET_SIG_KEY == "4dabf18193072939515e22adb298388d"
    assert pulumi_sdk.SECRET_SIG == "1b47061264138c4ac30d75fd1eb44270"
    assert pulumi_sdk.is_secret({pulumi_sdk.SECRET_SIG_KEY: pulumi_sdk.SECRET_SIG, "value": 1})
    assert not pulumi_sdk.is_secret({"value": 1})


# What a stack reference reads, by the stack it names (organization/project/stack).
PREVIOUS_OUTPUTS = {"organization/sdk-check/dev": {"mariadbSeries": "11.4"}}


class _Echo(pulumi_sdk.Mocks):
    def new_resource(self, args: pulumi_sdk.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            outputs = PREVIOUS_OUTPUTS.get(args.resource_id)
            return args.resource_id, {"name": args.resource_id, "outputs": outputs}
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi_sdk.MockCallArgs) -> tuple[dict, list]:
        raise NotImplementedError(args.token)


def _run(program: Any, config: dict[str, str], secret_keys: list[str]) -> tuple[list, dict]:
    recorded: list[tuple[dict[str, Any], str]] = []
    mocks = _Echo()
    exports = pulumi_sdk.run_under_mocks(
        program,
        mocks=mocks,
        monitor=pulumi_sdk.RecordingMonitor(mocks, lambda r, urn: recorded.append((r, urn))),
        project="sdk-check",
        stack="dev",
        config=config,
        secret_keys=secret_keys,
        logger=logging.getLogger("sdk-check"),
    )
    return recorded, exports


def test_a_program_under_mocks_is_recorded_with_its_options_and_exports() -> None:
    def program() -> None:
        first = pulumi.CustomResource("test:index:Thing", "first", {"size": 1})
        second = pulumi.CustomResource(
            "test:index:Thing",
            "second",
            {"secret": pulumi.Output.secret("s3cret")},
            opts=pulumi.ResourceOptions(
                depends_on=[first], protect=True, retain_on_delete=True, ignore_changes=["size"]
            ),
        )
        pulumi.export("second", second.urn)

    recorded, exports = _run(program, {}, [])
    (first, first_urn), (second, second_urn) = recorded
    assert first_urn.endswith("test:index:Thing::first")
    assert first["inputs"] == {"size": 1}
    assert second["options"]["dependencies"] == [first_urn]
    assert second["options"]["protect"] is True
    assert second["options"]["retainOnDelete"] is True
    assert second["options"]["ignoreChanges"] == ["size"]
    assert pulumi_sdk.is_secret(second["raw_inputs"]["secret"])
    assert first["options"]["protect"] is None  # unset, not False
    assert exports == {"second": second_urn}


def test_a_rendering_skips_the_stack_walk_and_gives_it_back() -> None:
    """The SDK's stack walk for source positions is left out while the program runs under
    mocks (the monitor drops it), and is the SDK's own again afterwards."""
    seen: list[Any] = []

    def program() -> None:
        seen.append(runtime_resource._get_stack_trace)
        pulumi.CustomResource("test:index:Thing", "first", {"size": 1})

    recorded, _ = _run(program, {}, [])
    assert len(recorded) == 1
    assert seen[0] is not SDK_STACK_WALK
    assert seen[0]() == runtime_resource.source_pb2.StackTrace()
    assert runtime_resource._get_stack_trace is SDK_STACK_WALK


def test_the_program_sees_every_raw_key_and_which_are_secret() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        seen["values"], seen["secret_keys"] = pulumi_sdk.raw_config()

    config = {"brandclub:environment": "dev", "brandclb:typo": "x", "brandclub:pw": "s3cret"}
    _run(program, config, ["brandclub:pw"])
    assert seen["values"] == config
    assert seen["secret_keys"] == {"brandclub:pw"}


def test_the_program_reads_its_own_previous_outputs_before_registering_anything() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        seen["outputs"] = pulumi_sdk.previous_outputs()
        seen["then"] = pulumi.CustomResource("test:index:Thing", "after", {})

    recorded, _ = _run(program, {}, [])
    assert seen["outputs"] == {"mariadbSeries": "11.4"}
    # A read, not a registration: the only resource registered is the program's own.
    assert [request["name"] for request, _ in recorded] == ["after"]


def test_a_stack_never_deployed_has_no_previous_outputs() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        seen["outputs"] = pulumi_sdk.previous_outputs()

    PREVIOUS_OUTPUTS.pop("organization/sdk-check/dev")
    try:
        _run(program, {}, [])
    finally:
        PREVIOUS_OUTPUTS["organization/sdk-check/dev"] = {"mariadbSeries": "11.4"}
    assert seen["outputs"] == {}


def test_no_other_module_reaches_into_the_sdk() -> None:
    """The program, its tools and the tests' harness use the SDK's internals only through
    components/pulumi_sdk.py."""
    from harness import REPO

    reaching = re.compile(r"pulumi\.runtime|from pulumi\.runtime|google\.protobuf")
    modules = [REPO / "__main__.py", REPO / "tests" / "harness.py"]
    for package in ("components", "stacktools", "policy"):
        modules += (REPO / package).rglob("*.py")
    found = [
        str(path.relative_to(REPO))
        for path in modules
        if path.name != "pulumi_sdk.py" and reaching.search(path.read_text())
    ]
    assert found == []
