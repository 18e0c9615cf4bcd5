"""The policy pack's policies called as pulumi_policy's analyzer calls them, on a rendering.

The registered inputs, exactly as sent to the engine (``Registered.raw_inputs``), go through
``deserialize_properties`` and ``unknown_checking_proxy``; resource policies get
``ResourceValidationArgs`` with the resource's options, stack policies ``StackValidationArgs`` of
``PolicyResource``s. Two stand-ins: a stack policy sees outputs, which for a bridged provider are
the inputs plus ``id`` (the mock's id here), and a resource's ``dependencies`` are the ones it
registered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from harness import Registered, Rendering
from policy.guardrails import POLICIES

Mutation = Callable[[dict[str, Any]], None]
POLICY = {policy.name: policy for policy in POLICIES}


def _options(resource: Registered, protect: bool | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(resource.options["protect"]) if protect is None else protect,
        ignore_changes=resource.options["ignoreChanges"],
        delete_before_replace=resource.options["deleteBeforeReplace"],
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=resource.options["additionalSecretOutputs"],
        parent=resource.parent,
    )


def _props(raw: dict[str, Any]) -> Any:
    return unknown_checking_proxy(deserialize_properties(raw))


def violations(
    policy_name: str,
    rendering: Rendering,
    mutate: dict[str, Mutation] | None = None,
    protect: dict[str, bool] | None = None,
) -> list[tuple[str, str]]:
    """(resource name, message) for every violation; ``mutate`` edits raw inputs by name."""
    mutate, protect = mutate or {}, protect or {}
    policy = POLICY[policy_name]
    found: list[tuple[str, str]] = []
    raws = {}
    for resource in rendering.resources:
        raw = copy.deepcopy(resource.raw_inputs)
        if resource.name in mutate:
            mutate[resource.name](raw)
        raws[resource.urn] = raw
    if isinstance(policy, ResourceValidationPolicy):
        for resource in (r for r in rendering.resources if r.custom):
            args = ResourceValidationArgs(
                resource.type,
                _props(raws[resource.urn]),
                resource.urn,
                resource.name,
                _options(resource, protect.get(resource.name)),
                None,
            )
            policy.validate(
                args, lambda message, urn=None, r=resource: found.append((r.name, message))
            )
        return found
    stack = {
        r.urn: PolicyResource(
            r.type,
            _props({"id": f"{r.inputs.get('name', r.name)}-id", **raws[r.urn]}),
            r.urn,
            r.name,
            _options(r, protect.get(r.name)),
            None,
            None,
            [],
            {},
        )
        for r in rendering.resources
        if r.custom
    }
    for resource in rendering.resources:
        if resource.custom:
            deps = [stack[d] for d in resource.options["dependencies"] if d in stack]
            stack[resource.urn].dependencies.extend(deps)
    by_urn = {r.urn: r.name for r in rendering.resources}
    policy.validate(
        StackValidationArgs(list(stack.values())),
        lambda message, urn=None: found.append((by_urn.get(urn, ""), message)),
    )
    return found
