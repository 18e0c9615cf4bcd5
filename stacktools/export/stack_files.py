"""Compose-format stack files from what the Pulumi program registers.

:func:`export` reads a :class:`~stacktools.engine.Rendering` (the real program run under mocks)
and writes one ``docker stack deploy`` file per swarm stack the program creates. Nothing here
describes the architecture a second time: services, networks, volumes and secrets come from the
registered inputs, and every input is either translated or named in :data:`NOT_IN_STACK_FILES`.
Docker configs (the nginx template) are not secret: each one's content is written as a file
beside the stack file that defines it, so ``docker stack deploy`` creates it under its exact
name (secrets stay external: their values never leave the program).
An input the translation does not know fails the export (:class:`UnknownInputError`), so the
program cannot grow a setting the files silently lose.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

from components import pulumi_sdk
from components.catalogue import STACK_NAMESPACE_LABEL
from components.units import format_size
from stacktools.engine import Registered, Rendering, deep_merge, render

SERVICE = "docker:index/service:Service"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
GET_NETWORK = "docker:index/getNetwork:getNetwork"
DOCKER_PACKAGE = "docker:"
# The oldest compose format with every key written here (max_replicas_per_node is 3.8's);
# Docker Engine 20.10's own client reads it too.
COMPOSE_VERSION = "3.8"
MANIFEST = "manifest.json"

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


class ExportError(Exception):
    """The registered resources cannot be written as stack files."""


class UnknownInputError(ExportError):
    """The program sets an input the export does not translate."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        listed = "\n".join(f"  - {path}" for path in paths)
        super().__init__(
            f"the program sets {len(paths)} input(s) the stack export does not translate; "
            f"teach stacktools/export/ to write them (or name them in NOT_IN_STACK_FILES):\n"
            f"{listed}"
        )


class _Inputs:
    """One level of registered inputs that must be consumed completely.

    Every ``take`` marks a key as translated; whatever is left when the walk ends is reported
    by :meth:`_Walk.finish`. Keys the engine sent as null carry no setting and are ignored.
    """

    def __init__(self, values: Mapping[str, Any] | None, path: str, walk: _Walk) -> None:
        self._values = dict(values or {})
        self._path = path
        walk.levels.append(self)

    def take(self, key: str, default: Any = None) -> Any:
        """The value, to be written to a stack file: a Pulumi secret inside it fails."""
        value = self.discard(key)
        if _holds_secret(value):
            raise ExportError(
                f"{self._join(key)} holds a Pulumi secret, which a stack file must never carry"
            )
        return default if value is None else value

    def discard(self, key: str) -> Any:
        """The value, marked as handled; for values that are never written (secret data)."""
        return self._values.pop(key, None)

    def child(self, key: str, walk: _Walk) -> _Inputs:
        # Only the leaves are written; a secret is caught where it is taken.
        return _Inputs(self.discard(key), self._join(key), walk)

    def children(self, key: str, walk: _Walk) -> list[_Inputs]:
        items = self.discard(key) or []
        return [_Inputs(item, f"{self._join(key)}[]", walk) for item in items]

    def leftovers(self) -> list[str]:
        return [self._join(key) for key, value in self._values.items() if value is not None]

    def _join(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key


def _holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        if pulumi_sdk.is_secret(value):
            return True
        return any(_holds_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_secret(item) for item in value)
    return False


@dataclass
class _Walk:
    levels: list[_Inputs] = field(default_factory=list)

    def root(self, values: Mapping[str, Any]) -> _Inputs:
        return _Inputs(values, "", self)

    def finish(self, owner: str) -> None:
        unknown = sorted({path for level in self.levels for path in level.leftovers()})
        if unknown:
            raise UnknownInputError([f"{owner}: {path}" for path in unknown])


@dataclass
class StackFile:
    """One ``docker stack deploy`` file: the swarm stack it deploys and its compose document."""

    stack: str
    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    # Its services pull from a private registry with credentials the file cannot carry.
    registry_auth: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.stack}.yml"

    def deploy_command(self, directory: str = ".") -> str:
        path = f"{directory.rstrip('/')}/{self.file_name}"
        auth = " --with-registry-auth" if self.registry_auth else ""
        return f"docker stack deploy{auth} -c {shlex.quote(path)} {self.stack}"


@dataclass
class StackExport:
    """Every stack file of one Pulumi stack, in the order they must be deployed."""

    pulumi_stack: str
    files: list[StackFile]
    # Docker secrets by name, with their labels; the operator supplies every value.
    secrets: dict[str, dict[str, str]]
    # Docker configs by name -> content, each written to a file of that name beside the stack
    # files (the stack file that defines it points there; docker stack deploy creates it).
    config_files: dict[str, str]
    # Networks the program creates but no service joins, which docker stack deploy would not
    # create: name -> the `docker network create` command that does.
    networks_to_create: dict[str, str]
    # Networks services join that the program only looks up: they must exist beforehand.
    required_networks: list[str]
    not_exported: list[str]

    @property
    def preparation(self) -> list[str]:
        """Commands to run once per swarm before the first deploy."""
        secrets = [
            "docker secret create"
            + "".join(f" --label {shlex.quote(f'{k}={v}')}" for k, v in labels.items())
            + f" {name} -"
            for name, labels in self.secrets.items()
        ]
        return [*secrets, *self.networks_to_create.values()]

    def commands(self, directory: str = ".") -> list[str]:
        return [*self.preparation, *(f.deploy_command(directory) for f in self.files)]

    def manifest(self) -> dict[str, Any]:
        """The export in machine-readable form, for scripts that deploy it."""
        return {
            "pulumiStack": self.pulumi_stack,
            "stacks": [
                {"name": f.stack, "file": f.file_name, "withRegistryAuth": f.registry_auth}
                for f in self.files
            ],
            "secrets": [{"name": n, "labels": labels} for n, labels in self.secrets.items()],
            "configs": [{"name": n, "file": n} for n in self.config_files],
            "networksToCreate": [
                {"name": n, "command": c} for n, c in self.networks_to_create.items()
            ],
            "requiredNetworks": self.required_networks,
            "notExported": self.not_exported,
        }


# --- small value conversions -------------------------------------------------------------


def _integer(value: Any) -> int:
    # The engine hands every number over as a float.
    if float(value) != int(value):
        raise ExportError(f"expected a whole number, got {value!r}")
    return int(value)


def _cpus(nano_cpus: Any) -> str:
    return format((Decimal(_integer(nano_cpus)) / 10**9).normalize(), "f")


def _labels(items: list[Mapping[str, str]] | None) -> dict[str, str]:
    return dict(sorted((item["label"], item["value"]) for item in items or []))


def _sorted(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # The engine's maps arrive in no stable order; sorted keys keep exports diffable.
    return dict(sorted(mapping.items())) if mapping is not None else None


def _without_empty(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value not in (None, {}, [], "")}


# --- ownership of networks, volumes and secrets ------------------------------------------


class _Index:
    """Which swarm stack owns each resource, and the names behind the ids services carry."""

    def __init__(self, rendering: Rendering) -> None:
        self.rendering = rendering
        self._by_urn = {r.urn: r for r in rendering.resources}
        stacks_below: dict[str, set[str]] = {}
        for service in rendering.of_type(SERVICE):
            stack = self.service_stack(service)
            for urn in self._ancestors(service):
                stacks_below.setdefault(urn, set()).add(stack)
        self._stacks_below = stacks_below
        self.networks = {n.inputs["name"]: n for n in rendering.of_type(NETWORK)}
        self.volumes = {v.inputs["name"]: v for v in rendering.of_type(VOLUME)}
        self.secrets = {s.inputs["name"]: s for s in rendering.of_type(SECRET)}
        self.configs = {c.inputs["name"]: c for c in rendering.of_type(CONFIG)}
        self.looked_up_networks = {
            args["name"] for token, args in rendering.invokes if token == GET_NETWORK
        }

    def _ancestors(self, resource: Registered) -> Iterator[str]:
        parent = resource.parent
        while parent in self._by_urn:
            yield parent
            parent = self._by_urn[parent].parent

    @staticmethod
    def service_stack(service: Registered) -> str:
        stack = service.labels.get(STACK_NAMESPACE_LABEL)
        name = service.inputs["name"]
        if not stack or not name.startswith(f"{stack}_"):
            raise ExportError(
                f"service {name!r} must carry the {STACK_NAMESPACE_LABEL} label and be named "
                f"<stack>_<service> to belong to a stack file"
            )
        return stack

    def owner(self, resource: Registered) -> str | None:
        """The stack whose component created ``resource``: the one its sibling services run in.

        None when its component runs no service (the site jobs' secrets): no file defines it.
        """
        for urn in self._ancestors(resource):
            stacks = self._stacks_below.get(urn, set())
            if len(stacks) > 1:
                raise ExportError(
                    f"{resource.name}: its component runs services of several stacks "
                    f"({', '.join(sorted(stacks))}); no single stack file can define it"
                )
            if stacks:
                return next(iter(stacks))
        return None

    def network_name(self, network_id: str) -> str:
        try:
            return self.rendering.network_name(network_id)
        except KeyError:
            raise ExportError(
                f"a service joins network id {network_id!r}, which no "
                f"registered or looked-up network has"
            ) from None


# --- services ----------------------------------------------------------------------------


@dataclass
class _References:
    """What one stack file's services use, by docker name."""

    networks: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    configs: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)


_POLICY_KEYS = {
    "parallelism": ("parallelism", _integer),
    "delay": ("delay", str),
    "failureAction": ("failure_action", str),
    "monitor": ("monitor", str),
    "maxFailureRatio": ("max_failure_ratio", float),
    "order": ("order", str),
}
_RESTART_KEYS = {
    "condition": ("condition", str),
    "delay": ("delay", str),
    "maxAttempts": ("max_attempts", _integer),
    "window": ("window", str),
}
_HEALTHCHECK_KEYS = {
    "tests": ("test", list),
    "interval": ("interval", str),
    "timeout": ("timeout", str),
    "retries": ("retries", _integer),
    "startPeriod": ("start_period", str),
}
# containerSpec inputs that are a plain rename in compose.
_CONTAINER_KEYS = {
    "image": ("image", str),
    "commands": ("entrypoint", list),
    "args": ("command", list),
    "env": ("environment", _sorted),
    "dir": ("working_dir", str),
    "user": ("user", str),
    "hostname": ("hostname", str),
    "stopSignal": ("stop_signal", str),
    "stopGracePeriod": ("stop_grace_period", str),
    "capAdds": ("cap_add", list),
    "capDrops": ("cap_drop", list),
    "sysctl": ("sysctls", _sorted),
}
_CONTAINER_FLAGS = {"readOnly": "read_only", "init": "init"}
_PLACEMENT_KEYS = {
    "constraints": ("constraints", list),
    "maxReplicas": ("max_replicas_per_node", _integer),
}


def _renamed(
    inputs: _Inputs, table: Mapping[str, tuple[str, Callable[[Any], Any]]]
) -> dict[str, Any]:
    taken = {key: inputs.take(key) for key in table}
    return {
        table[key][0]: table[key][1](value) for key, value in taken.items() if value is not None
    }


def _resources(resources: _Inputs, walk: _Walk) -> dict[str, Any]:
    written = {}
    for key, compose_key in (("limits", "limits"), ("reservation", "reservations")):
        level = resources.child(key, walk)
        nano_cpus, memory = level.take("nanoCpus"), level.take("memoryBytes")
        written[compose_key] = _without_empty(
            {
                "cpus": _cpus(nano_cpus) if nano_cpus else None,
                "memory": format_size(_integer(memory)) if memory else None,
            }
        )
    return _without_empty(written)


def _mount(mount: _Inputs, walk: _Walk, refs: _References) -> dict[str, Any]:
    kind = mount.take("type")
    source = mount.take("source")
    written: dict[str, Any] = {"type": kind, "source": source, "target": mount.take("target")}
    if kind == "volume":
        refs.volumes.add(source)
        options = mount.child("volumeOptions", walk)
        written["volume"] = _without_empty({"nocopy": options.take("noCopy")})
    elif kind == "bind":
        options = mount.child("bindOptions", walk)
        written["bind"] = _without_empty({"propagation": options.take("propagation")})
    elif kind == "tmpfs":
        options = mount.child("tmpfsOptions", walk)
        size = options.take("sizeBytes")
        written["tmpfs"] = _without_empty({"size": _integer(size) if size else None})
    else:
        raise ExportError(f"mount type {kind!r} has no stack-file form")
    if mount.take("readOnly"):
        written["read_only"] = True
    return _without_empty(written)


def _secret(secret: _Inputs, index: _Index, refs: _References) -> dict[str, Any]:
    name = secret.take("secretName")
    secret_id = secret.take("secretId")
    if name not in index.secrets or secret_id != f"{name}-id":
        raise ExportError(
            f"a service mounts secret {name!r} (id {secret_id!r}), not one the program registers"
        )
    refs.secrets.add(name)
    mode = secret.take("fileMode")
    return _without_empty(
        {
            "source": name,
            "target": secret.take("fileName"),
            "uid": secret.take("fileUid"),
            "gid": secret.take("fileGid"),
            "mode": _integer(mode) if mode is not None else None,
        }
    )


def _config(config: _Inputs, index: _Index, refs: _References) -> dict[str, Any]:
    name = config.take("configName")
    config_id = config.take("configId")
    if name not in index.configs or config_id != f"{name}-id":
        raise ExportError(
            f"a service mounts config {name!r} (id {config_id!r}), not one the program registers"
        )
    refs.configs.add(name)
    mode = config.take("fileMode")
    return _without_empty(
        {
            "source": name,
            "target": config.take("fileName"),
            "uid": config.take("fileUid"),
            "gid": config.take("fileGid"),
            "mode": _integer(mode) if mode is not None else None,
        }
    )


def _networks(task: _Inputs, walk: _Walk, index: _Index, refs: _References) -> dict[str, Any]:
    joined: dict[str, Any] = {}
    for attachment in task.children("networksAdvanceds", walk):
        name = index.network_name(attachment.take("id"))
        refs.networks.add(name)
        aliases = attachment.take("aliases")
        joined[name] = {"aliases": list(aliases)} if aliases else None
    return joined


def _ports(endpoint: _Inputs, walk: _Walk, refs: _References) -> list[dict[str, Any]]:
    ports = []
    for port in endpoint.children("ports", walk):
        if port.take("name") is not None:
            refs.notes.add("endpointSpec.ports[].name")
        published = port.take("publishedPort")
        ports.append(
            _without_empty(
                {
                    "target": _integer(port.take("targetPort")),
                    "published": _integer(published) if published else None,
                    "protocol": port.take("protocol"),
                    "mode": port.take("publishMode"),
                }
            )
        )
    return ports


def _deploy(
    inputs: _Inputs, task: _Inputs, walk: _Walk, refs: _References
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    mode = inputs.child("mode", walk)
    deploy: dict[str, Any] = {}
    if mode.take("global"):
        deploy["mode"] = "global"
    else:
        replicated = mode.child("replicated", walk)
        deploy["mode"] = "replicated"
        deploy["replicas"] = _integer(replicated.take("replicas", 1))
    endpoint = inputs.child("endpointSpec", walk)
    deploy["endpoint_mode"] = endpoint.take("mode")
    deploy["labels"] = _labels(inputs.take("labels"))
    deploy["resources"] = _resources(task.child("resources", walk), walk)
    deploy["restart_policy"] = _renamed(task.child("restartPolicy", walk), _RESTART_KEYS)
    placement = task.child("placement", walk)
    deploy["placement"] = _renamed(placement, _PLACEMENT_KEYS)
    preferences = [{"spread": pref.take("spread")} for pref in placement.children("prefs", walk)]
    deploy["placement"]["preferences"] = preferences
    deploy["placement"] = _without_empty(deploy["placement"])
    deploy["update_config"] = _renamed(inputs.child("updateConfig", walk), _POLICY_KEYS)
    deploy["rollback_config"] = _renamed(inputs.child("rollbackConfig", walk), _POLICY_KEYS)
    if inputs.take("convergeConfig") is not None:
        refs.notes.add("convergeConfig")
    return _without_empty(deploy), _ports(endpoint, walk, refs)


def _service(service: Registered, index: _Index, refs: _References) -> dict[str, Any]:
    walk = _Walk()
    inputs = walk.root(service.inputs)
    inputs.take("name")
    if inputs.discard(REGISTRY_AUTH) is not None:  # holds a password: never written
        refs.notes.add(REGISTRY_AUTH)
    task = inputs.child("taskSpec", walk)
    container = task.child("containerSpec", walk)
    written = _renamed(container, _CONTAINER_KEYS)
    for key, compose_key in _CONTAINER_FLAGS.items():
        if container.take(key):
            written[compose_key] = True
    written["labels"] = _labels(container.take("labels"))
    written["volumes"] = [_mount(m, walk, refs) for m in container.children("mounts", walk)]
    written["secrets"] = [_secret(s, index, refs) for s in container.children("secrets", walk)]
    written["configs"] = [_config(c, index, refs) for c in container.children("configs", walk)]
    written["networks"] = _networks(task, walk, index, refs)
    health = container.child("healthcheck", walk)
    written["healthcheck"] = _renamed(health, _HEALTHCHECK_KEYS)
    log_driver = task.child("logDriver", walk)
    written["logging"] = _without_empty(
        {"driver": log_driver.take("name"), "options": _sorted(log_driver.take("options"))}
    )
    written["deploy"], written["ports"] = _deploy(inputs, task, walk, refs)
    walk.finish(service.inputs["name"])
    return _without_empty(written)


# --- top-level networks, volumes and secrets ---------------------------------------------


def _network_definition(network: Registered) -> dict[str, Any]:
    walk = _Walk()
    inputs = walk.root(network.inputs)
    definition = {
        "name": inputs.take("name"),
        "driver": inputs.take("driver"),
        "driver_opts": _sorted(inputs.take("options")),
        "attachable": inputs.take("attachable") or None,
        "internal": inputs.take("internal") or None,
        "labels": _labels(inputs.take("labels")),
    }
    walk.finish(network.name)
    return _without_empty(definition)


def _volume_definition(volume: Registered) -> dict[str, Any]:
    walk = _Walk()
    inputs = walk.root(volume.inputs)
    definition = {
        "name": inputs.take("name"),
        "driver": inputs.take("driver"),
        "driver_opts": _sorted(inputs.take("driverOpts")),
        "labels": _labels(inputs.take("labels")),
    }
    walk.finish(volume.name)
    return _without_empty(definition)


def _secret_labels(secret: Registered) -> dict[str, str]:
    walk = _Walk()
    inputs = walk.root(secret.inputs)
    inputs.take("name")
    inputs.discard("data")  # the secret itself: never written, the operator supplies it
    labels = _labels(inputs.take("labels"))
    walk.finish(secret.name)
    return labels


def _config_definition(config: Registered) -> tuple[dict[str, Any], str]:
    """A config's stack-file entry (its content in a file of its name) and that content."""
    walk = _Walk()
    inputs = walk.root(config.inputs)
    name = inputs.take("name")
    content = base64.b64decode(inputs.take("data")).decode()
    definition = {"name": name, "file": f"./{name}", "labels": _labels(inputs.take("labels"))}
    walk.finish(config.name)
    return _without_empty(definition), content


def _network_create_command(network: Registered) -> str:
    definition = _network_definition(network)
    flags = [f"--driver {definition.get('driver', 'overlay')}"]
    flags += [f"--{flag}" for flag in ("attachable", "internal") if definition.get(flag)]
    flags += [
        f"--opt {shlex.quote(f'{k}={v}')}" for k, v in definition.get("driver_opts", {}).items()
    ]
    flags += [f"--label {shlex.quote(f'{k}={v}')}" for k, v in definition["labels"].items()]
    return f"docker network create {' '.join(flags)} {definition['name']}"


# --- the export --------------------------------------------------------------------------


def _used(refs: _References) -> set[str]:
    return refs.networks | refs.volumes | refs.secrets | refs.configs


def _deploy_order(uses: Mapping[str, set[str]]) -> list[str]:
    """Stacks in the order they can be deployed: a stack after every stack it uses a part of.

    Stacks that do not depend on each other go in name order (the program registers them
    concurrently, so registration order is no stable tie-break).
    """
    sorter = TopologicalSorter({stack: used - {stack} for stack, used in uses.items()})
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def export(rendering: Rendering) -> StackExport:
    """Translate a rendering into stack files; raise :class:`ExportError` if it cannot."""
    untranslated = sorted(
        {r.type for r in rendering.resources if r.custom and r.type.startswith(DOCKER_PACKAGE)}
        - {SERVICE, NETWORK, VOLUME, SECRET, CONFIG}
    )
    if untranslated:
        raise ExportError(f"no stack-file form for docker resource type(s): {untranslated}")
    index = _Index(rendering)
    services: dict[str, dict[str, dict[str, Any]]] = {}
    references: dict[str, _References] = {}
    for service in rendering.of_type(SERVICE):
        stack = index.service_stack(service)
        refs = references.setdefault(stack, _References())
        key = service.inputs["name"].removeprefix(f"{stack}_")
        services.setdefault(stack, {})[key] = _service(service, index, refs)

    kinds = {
        "networks": index.networks,
        "volumes": index.volumes,
        "secrets": index.secrets,
        "configs": index.configs,
    }
    owner_of = {
        name: index.owner(resource)
        for registry in kinds.values()
        for name, resource in registry.items()
    }
    owners = {name: stack for name, stack in owner_of.items() if stack is not None}
    referenced = {name for refs in references.values() for name in _used(refs)}
    uses = {
        stack: {owners[name] for name in _used(refs) if name in owners}
        for stack, refs in references.items()
    }
    networks_to_create: dict[str, str] = {}
    required_networks: set[str] = set()
    declared_secrets: set[str] = set()
    config_files: dict[str, str] = {}
    files = []
    for stack in _deploy_order(uses):
        refs = references[stack]
        owned = {
            kind: {n for n in names if owners.get(n) == stack} for kind, names in kinds.items()
        }
        unused_networks = sorted(owned["networks"] - refs.networks)
        networks_to_create |= {
            n: _network_create_command(index.networks[n]) for n in unused_networks
        }
        required = refs.networks & index.looked_up_networks - set(owners)
        required_networks |= required
        # Registered by a component that runs no service, yet joined: created by hand.
        networks_to_create |= {
            n: _network_create_command(index.networks[n])
            for n in refs.networks & set(index.networks) - set(owners)
        }
        document = {
            "version": COMPOSE_VERSION,
            # Services register in whatever order their inputs resolve: sort for stable diffs.
            "services": dict(sorted(services[stack].items())),
            "networks": {
                name: _network_definition(index.networks[name])
                if name in owned["networks"]
                else {"external": True, "name": name}
                for name in sorted(refs.networks | owned["networks"])
            },
            "volumes": {
                name: _volume_definition(index.volumes[name])
                if name in owned["volumes"]
                else {"external": True, "name": name}
                for name in sorted(refs.volumes | owned["volumes"])
            },
            # Secret data never leaves the program: every secret is created by hand, by name.
            "secrets": {
                name: {"external": True, "name": name}
                for name in sorted(refs.secrets | owned["secrets"])
            },
            "configs": {},
        }
        for name in sorted(refs.configs | owned["configs"]):
            if name in owned["configs"]:
                document["configs"][name], config_files[name] = _config_definition(
                    index.configs[name]
                )
            else:
                document["configs"][name] = {"external": True, "name": name}
        notes = [f"{path}: {NOT_IN_STACK_FILES[path]}" for path in sorted(refs.notes)]
        notes += [
            f"network {name} must exist already: the program only looks it up "
            f"(another Pulumi stack's ingress creates it)"
            for name in sorted(required)
        ]
        notes += [
            f"network {name} is defined here but joined by no service, and docker stack deploy "
            f"creates only networks its services join; it is created by hand (see above)"
            for name in unused_networks
        ]
        files.append(
            StackFile(
                stack, _without_empty(document), notes, registry_auth=REGISTRY_AUTH in refs.notes
            )
        )
        declared_secrets |= set(document["secrets"])

    not_exported = [
        f"{r.type} {r.name}"
        for r in rendering.resources
        if r.custom and not r.type.startswith(DOCKER_PACKAGE)
    ]
    not_exported += [
        f"{registry[name].type} {registry[name].name} ({name}): no service uses it"
        for registry in kinds.values()
        for name in sorted(registry)
        if owner_of[name] is None and name not in referenced
    ]
    return StackExport(
        rendering.stack,
        files,
        secrets={name: _secret_labels(index.secrets[name]) for name in sorted(declared_secrets)},
        config_files=config_files,
        networks_to_create=networks_to_create,
        required_networks=sorted(required_networks),
        not_exported=not_exported,
    )


# Under mocks a resolved digest would be made up: export plain repo:tag unless a digest is given.
EXPORT_DEFAULTS: dict[str, Any] = {"brandclub:registry": {"resolveDigest": False}}


def export_stack(
    stack: str, overrides: Mapping[str, Any] | None, secrets: Mapping[str, str]
) -> StackExport:
    """Run the program for ``stack`` (``Pulumi.<stack>.yaml``, the export's defaults, then
    ``overrides``) with ``secrets`` as its secret config, and export it."""
    rendering = render(stack, deep_merge(EXPORT_DEFAULTS, overrides or {}), secrets=secrets)
    return export(rendering)


# --- writing -----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style throughout, lists indented under their key, multi-line text (the backup
    script) as a literal block: the layout people write compose files in, so diffs stay small."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def _escape_interpolation(value: Any) -> Any:
    """Compose substitutes ``$VAR`` in every value; ``$$`` is a literal dollar sign."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape_interpolation(item) for item in value]
    if isinstance(value, dict):
        return {key: _escape_interpolation(item) for key, item in value.items()}
    return value


def _header(stack_export: StackExport, stack_file: StackFile, directory: str) -> str:
    lines = [
        f"Swarm stack {stack_file.stack}, from the Pulumi stack {stack_export.pulumi_stack}.",
        f"Written by `python -m stacktools render --stack {stack_export.pulumi_stack}` from the",
        "resources the Pulumi program registers; regenerate it rather than editing it.",
        "",
        f"Deploy all of {stack_export.pulumi_stack}, in this order (run from this directory;",
        "a secret command reads the secret's value on standard input; run it once per swarm):",
        *(f"  {command}" for command in stack_export.commands(directory)),
    ]
    defined = stack_file.document.get("configs", {}).values()
    configs = [entry["file"] for entry in defined if "file" in entry]
    if configs:
        lines += [
            "",
            "Docker configs are read from these files beside this one (deploy from a directory",
            "that holds them); docker stack deploy creates them under their exact names:",
            *(f"  {file}" for file in configs),
        ]
    if stack_file.notes:
        lines += ["", "Not in this file:", *(f"  - {note}" for note in stack_file.notes)]
    if stack_export.not_exported:
        lines += [
            "",
            "Registered by the program but in no stack file (`pulumi up` runs the site jobs):",
            *(f"  - {item}" for item in stack_export.not_exported),
        ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render_text(stack_export: StackExport, stack_file: StackFile, directory: str = ".") -> str:
    """The text of one stack file: a comment header, then the compose document."""
    body = yaml.dump(
        _escape_interpolation(stack_file.document),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        allow_unicode=True,
    )
    return _header(stack_export, stack_file, directory) + body


def write(stack_export: StackExport, out: Path) -> list[Path]:
    """Write every stack file to ``out/<pulumi stack>/<swarm stack>.yml``, and the manifest;
    return the paths."""
    directory = out / stack_export.pulumi_stack
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for stack_file in stack_export.files:
        path = directory / stack_file.file_name
        path.write_text(render_text(stack_export, stack_file))
        paths.append(path)
    for name, content in stack_export.config_files.items():
        path = directory / name
        path.write_text(content)
        paths.append(path)
    manifest = directory / MANIFEST
    manifest.write_text(json.dumps(stack_export.manifest(), indent=2) + "\n")
    return [*paths, manifest]
