"""One registered ``docker.Service`` as a compose service.

Only the inputs the program sets are translated; anything else it ever sets fails the export by
name (stacktools/export/inputs.py) until it is taught here, or named in
:data:`NOT_IN_STACK_FILES` when no stack file can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.config.units import format_size
from stacktools.engine import Registered
from stacktools.export.index import Index
from stacktools.export.inputs import (
    ExportError,
    Inputs,
    Walk,
    cpus,
    integer,
    labels,
    sorted_map,
    without_empty,
)

# Inputs a swarm stack file cannot express, and why leaving them out is safe.
REGISTRY_AUTH = "auth"
NOT_IN_STACK_FILES = {
    REGISTRY_AUTH: (
        "registry credentials; `docker login` to the registry, then deploy with "
        "--with-registry-auth (the deploy commands above do)"
    ),
    "convergeConfig": (
        "Pulumi waits for the service to converge; `docker stack deploy --detach=false` waits too"
    ),
    "endpointSpec.ports[].name": (
        "port names are labels only; the compose format has no key for them"
    ),
}


@dataclass
class References:
    """What one stack file's services use, by docker name, and what its header must say."""

    networks: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    configs: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)

    @property
    def used(self) -> set[str]:
        return self.networks | self.volumes | self.secrets | self.configs


# Registered key -> (compose key, conversion), for inputs that are a plain rename.
_POLICY_KEYS = {
    "parallelism": ("parallelism", integer),
    "delay": ("delay", str),
    "failureAction": ("failure_action", str),
    "monitor": ("monitor", str),
    "maxFailureRatio": ("max_failure_ratio", float),
    "order": ("order", str),
}
_RESTART_KEYS = {
    "condition": ("condition", str),
    "delay": ("delay", str),
    "window": ("window", str),
}
_HEALTHCHECK_KEYS = {
    "tests": ("test", list),
    "interval": ("interval", str),
    "timeout": ("timeout", str),
    "retries": ("retries", integer),
    "startPeriod": ("start_period", str),
}
_CONTAINER_KEYS = {
    "image": ("image", str),
    "args": ("command", list),
    "env": ("environment", sorted_map),
    "stopGracePeriod": ("stop_grace_period", str),
    "init": ("init", bool),
}


def _resources(resources: Inputs) -> dict[str, Any]:
    written = {}
    for key, compose_key in (("limits", "limits"), ("reservation", "reservations")):
        level = resources.child(key)
        nano_cpus, memory = level.take("nanoCpus"), level.take("memoryBytes")
        written[compose_key] = without_empty(
            {
                "cpus": cpus(nano_cpus) if nano_cpus else None,
                "memory": format_size(integer(memory)) if memory else None,
            }
        )
    return without_empty(written)


def _mount(mount: Inputs, index: Index, refs: References) -> dict[str, Any]:
    kind = mount.take("type")
    source = mount.take("source")
    if kind not in ("volume", "bind"):
        raise ExportError(f"mount type {kind!r} has no stack-file form")
    if kind == "volume":
        refs.volumes.add(source)
    # A stack file states a volume's driver options once, on the volume, and `docker stack
    # deploy` puts them on every mount; so they must be the registered volume's.
    options = mount.child("volumeOptions")
    driver = options.take("driverName")
    driver_options = options.take("driverOptions")
    if driver is not None or driver_options:
        volume = index.volumes.get(source)
        registered = (
            (volume.inputs.get("driver"), volume.inputs.get("driverOpts")) if volume else None
        )
        if registered != (driver, driver_options):
            raise ExportError(
                f"a mount of volume {source!r} has driver options {driver_options!r}, the "
                f"registered volume {registered!r}: a stack file holds one set per volume"
            )
    written: dict[str, Any] = {"type": kind, "source": source, "target": mount.take("target")}
    if mount.take("readOnly"):
        written["read_only"] = True
    return written


def _file(file: Inputs, kind: str, index: Index, refs: set[str]) -> dict[str, Any]:
    """A secret or config a service mounts: one the program registers, by name."""
    name = file.take(f"{kind}Name")
    file_id = file.take(f"{kind}Id")
    if name not in index.named(kind) or file_id != f"{name}-id":
        raise ExportError(
            f"a service mounts {kind} {name!r} (id {file_id!r}), not one the program registers"
        )
    refs.add(name)
    return {"source": name, "target": file.take("fileName")}


def _networks(task: Inputs, index: Index, refs: References) -> dict[str, Any]:
    joined: dict[str, Any] = {}
    for attachment in task.children("networksAdvanceds"):
        name = index.network_name(attachment.take("id"))
        refs.networks.add(name)
        aliases = attachment.take("aliases")
        joined[name] = {"aliases": list(aliases)} if aliases else None
    return joined


def _ports(endpoint: Inputs, refs: References) -> list[dict[str, Any]]:
    ports = []
    for port in endpoint.children("ports"):
        if port.take("name") is not None:
            refs.notes.add("endpointSpec.ports[].name")
        published = port.take("publishedPort")
        ports.append(
            without_empty(
                {
                    "target": integer(port.take("targetPort")),
                    "published": integer(published) if published else None,
                    "protocol": port.take("protocol"),
                    "mode": port.take("publishMode"),
                }
            )
        )
    return ports


def _placement(placement: Inputs) -> dict[str, Any]:
    return without_empty(
        {
            "constraints": placement.take("constraints"),
            "preferences": [{"spread": spread} for spread in placement.take("prefs") or []],
            "max_replicas_per_node": placement.take("maxReplicas"),
        }
    )


def _deploy(inputs: Inputs, task: Inputs, endpoint: Inputs, refs: References) -> dict[str, Any]:
    replicated = inputs.child("mode").child("replicated")
    deploy: dict[str, Any] = {
        "mode": "replicated",
        "replicas": integer(replicated.take("replicas", 1)),
        "endpoint_mode": endpoint.take("mode"),
        "labels": labels(inputs.take("labels")),
        "resources": _resources(task.child("resources")),
        "restart_policy": task.child("restartPolicy").renamed(_RESTART_KEYS),
        "placement": _placement(task.child("placement")),
        "update_config": inputs.child("updateConfig").renamed(_POLICY_KEYS),
        "rollback_config": inputs.child("rollbackConfig").renamed(_POLICY_KEYS),
    }
    if inputs.take("convergeConfig") is not None:
        refs.notes.add("convergeConfig")
    return without_empty(deploy)


def compose_service(service: Registered, index: Index, refs: References) -> dict[str, Any]:
    """The compose entry of ``service``; what it uses is added to ``refs``."""
    walk = Walk(service.inputs["name"])
    inputs = walk.root(service.inputs)
    inputs.take("name")
    if inputs.discard(REGISTRY_AUTH) is not None:  # holds a password: never written
        refs.notes.add(REGISTRY_AUTH)
    task = inputs.child("taskSpec")
    container = task.child("containerSpec")
    written = container.renamed(_CONTAINER_KEYS)
    written["volumes"] = [_mount(m, index, refs) for m in container.children("mounts")]
    written["secrets"] = [
        _file(s, "secret", index, refs.secrets) for s in container.children("secrets")
    ]
    written["configs"] = [
        _file(c, "config", index, refs.configs) for c in container.children("configs")
    ]
    written["networks"] = _networks(task, index, refs)
    written["healthcheck"] = container.child("healthcheck").renamed(_HEALTHCHECK_KEYS)
    endpoint = inputs.child("endpointSpec")
    written["deploy"] = _deploy(inputs, task, endpoint, refs)
    written["ports"] = _ports(endpoint, refs)
    walk.finish()
    return without_empty(written)
