"""The top-level entries of a stack file: networks, volumes, secrets and configs, as registered."""

from __future__ import annotations

import base64
import shlex
from typing import Any

from stacktools.engine import Registered
from stacktools.export.inputs import Inputs, Walk, labels, sorted_map, without_empty


def _walked(resource: Registered, translate: Any) -> Any:
    """``translate`` applied to the resource's inputs; an input it leaves fails the export."""
    walk = Walk(resource.name)
    translated = translate(walk.root(resource.inputs))
    walk.finish()
    return translated


def network_definition(network: Registered) -> dict[str, Any]:
    def translate(inputs: Inputs) -> dict[str, Any]:
        return {
            "name": inputs.take("name"),
            "driver": inputs.take("driver"),
            "attachable": inputs.take("attachable") or None,
            "internal": inputs.take("internal") or None,
            "labels": labels(inputs.take("labels")),
        }

    return without_empty(_walked(network, translate))


def volume_definition(volume: Registered) -> dict[str, Any]:
    def translate(inputs: Inputs) -> dict[str, Any]:
        return {
            "name": inputs.take("name"),
            "labels": labels(inputs.take("labels")),
            # Shared storage (components/config/nodes.py): each node creates the volume with
            # these options the first time a task mounts it there.
            "driver": inputs.take("driver"),
            "driver_opts": sorted_map(inputs.take("driverOpts")),
        }

    return without_empty(_walked(volume, translate))


def secret_labels(secret: Registered) -> dict[str, str]:
    def translate(inputs: Inputs) -> dict[str, str]:
        inputs.take("name")
        inputs.discard("data")  # the secret itself: never written, the operator supplies it
        return labels(inputs.take("labels"))

    return _walked(secret, translate)


def config_definition(config: Registered) -> tuple[dict[str, Any], str]:
    """A config's stack-file entry (its content in a file of its name) and that content."""

    def translate(inputs: Inputs) -> tuple[dict[str, Any], str]:
        name = inputs.take("name")
        content = base64.b64decode(inputs.take("data")).decode()
        entry = {"name": name, "file": f"./{name}", "labels": labels(inputs.take("labels"))}
        return without_empty(entry), content

    return _walked(config, translate)


def network_create_command(network: Registered) -> str:
    definition = network_definition(network)
    flags = [f"--driver {definition.get('driver', 'overlay')}"]
    flags += [f"--{flag}" for flag in ("attachable", "internal") if definition.get(flag)]
    flags += [f"--label {shlex.quote(f'{k}={v}')}" for k, v in definition["labels"].items()]
    return f"docker network create {' '.join(flags)} {definition['name']}"
