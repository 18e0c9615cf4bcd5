"""The stack files of one Pulumi stack, from what the Pulumi program registers.

:func:`export` reads a :class:`~stacktools.engine.Rendering` (the real program run under mocks)
and makes one ``docker stack deploy`` file per swarm stack the program creates. Nothing here
describes the architecture a second time: services, networks, volumes and secrets come from the
registered inputs (stacktools/export/services.py, definitions.py), every input either translated
or named in ``NOT_IN_STACK_FILES``. A resource goes into the file of the stack whose component
created it (stacktools/export/index.py); the others refer to it as external. Docker configs
(the nginx template) are not secret: each one's content is written as a file beside the stack
file that defines it, so ``docker stack deploy`` creates it under its exact name (secrets stay
external: their values never leave the program).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from stacktools.engine import Rendering, deep_merge, render
from stacktools.export.definitions import (
    config_definition,
    network_create_command,
    network_definition,
    secret_labels,
    volume_definition,
)
from stacktools.export.index import DOCKER_PACKAGE, SERVICE, TRANSLATED, Index
from stacktools.export.inputs import ExportError, without_empty
from stacktools.export.services import (
    NOT_IN_STACK_FILES,
    REGISTRY_AUTH,
    References,
    compose_service,
)

# The compose format the files declare; Docker Engine 20.10's own client reads it too.
COMPOSE_VERSION = "3.8"
# Under mocks a resolved digest would be made up: export plain repo:tag unless a digest is given.
EXPORT_DEFAULTS: dict[str, Any] = {"brandclub:registry": {"resolveDigest": False}}


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


@dataclass
class _Exporting:
    """One export under way: the index, each stack's services and what they use, the owner of
    each network, volume, secret and config, and what the files gather across stacks."""

    index: Index
    services: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    references: dict[str, References] = field(default_factory=dict)
    owner_of: dict[str, str | None] = field(default_factory=dict)
    networks_to_create: dict[str, str] = field(default_factory=dict)
    required_networks: set[str] = field(default_factory=set)
    declared_secrets: set[str] = field(default_factory=set)
    config_files: dict[str, str] = field(default_factory=dict)

    @property
    def owners(self) -> dict[str, str]:
        return {name: stack for name, stack in self.owner_of.items() if stack is not None}

    def translate_services(self, rendering: Rendering) -> None:
        for service in rendering.of_type(SERVICE):
            stack = self.index.service_stack(service)
            refs = self.references.setdefault(stack, References())
            key = service.inputs["name"].removeprefix(f"{stack}_")
            self.services.setdefault(stack, {})[key] = compose_service(service, self.index, refs)
        self.owner_of = {
            name: self.index.owner(resource)
            for registry in self.index.kinds.values()
            for name, resource in registry.items()
        }

    def deploy_order(self) -> list[str]:
        owners = self.owners
        return _deploy_order(
            {
                stack: {owners[name] for name in refs.used if name in owners}
                for stack, refs in self.references.items()
            }
        )

    def stack_file(self, stack: str) -> StackFile:
        index, refs, owners = self.index, self.references[stack], self.owners
        owned = {
            kind: {n for n in names if owners.get(n) == stack}
            for kind, names in index.kinds.items()
        }
        unused_networks = sorted(owned["networks"] - refs.networks)
        required = refs.networks & index.looked_up_networks - set(owners)
        self.required_networks |= required
        # Unused here, or registered by a component that runs no service yet joined: by hand.
        by_hand = set(unused_networks) | refs.networks & set(index.networks) - set(owners)
        self.networks_to_create |= {
            n: network_create_command(index.networks[n])
            for n in [*unused_networks, *sorted(by_hand - set(unused_networks))]
        }
        document = self._document(stack, refs, owned)
        self.declared_secrets |= set(document["secrets"])
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
        auth = REGISTRY_AUTH in refs.notes
        return StackFile(stack, without_empty(document), notes, registry_auth=auth)

    def _document(self, stack: str, refs: References, owned: dict[str, set[str]]) -> dict[str, Any]:
        index = self.index

        def entries(kind: str, used: set[str], define: Any) -> dict[str, Any]:
            return {
                name: define(index.kinds[kind][name])
                if name in owned[kind] or _on_shared_storage(index.kinds[kind].get(name))
                else {"external": True, "name": name}
                for name in sorted(used | owned[kind])
            }

        configs: dict[str, Any] = {}
        for name in sorted(refs.configs | owned["configs"]):
            if name in owned["configs"]:
                configs[name], self.config_files[name] = config_definition(index.configs[name])
            else:
                configs[name] = {"external": True, "name": name}
        return {
            "version": COMPOSE_VERSION,
            # Services register in whatever order their inputs resolve: sort for stable diffs.
            "services": dict(sorted(self.services[stack].items())),
            "networks": entries("networks", refs.networks, network_definition),
            "volumes": entries("volumes", refs.volumes, volume_definition),
            # Secret data never leaves the program: every secret is created by hand, by name.
            "secrets": {
                name: {"external": True, "name": name}
                for name in sorted(refs.secrets | owned["secrets"])
            },
            "configs": configs,
        }

    def not_exported(self, rendering: Rendering) -> list[str]:
        referenced = {name for refs in self.references.values() for name in refs.used}
        listed = [
            f"{r.type} {r.name}"
            for r in rendering.resources
            if r.custom and not r.type.startswith(DOCKER_PACKAGE)
        ]
        return listed + [
            f"{registry[name].type} {registry[name].name} ({name}): no service uses it"
            for registry in self.index.kinds.values()
            for name in sorted(registry)
            if self.owner_of[name] is None and name not in referenced
        ]


def export(rendering: Rendering) -> StackExport:
    """Translate a rendering into stack files; raise :class:`ExportError` if it cannot."""
    untranslated = sorted(
        {r.type for r in rendering.resources if r.custom and r.type.startswith(DOCKER_PACKAGE)}
        - TRANSLATED
    )
    if untranslated:
        raise ExportError(f"no stack-file form for docker resource type(s): {untranslated}")
    exporting = _Exporting(Index(rendering))
    exporting.translate_services(rendering)
    files = [exporting.stack_file(stack) for stack in exporting.deploy_order()]
    secrets = exporting.index.secrets
    return StackExport(
        rendering.stack,
        files,
        secrets={name: secret_labels(secrets[name]) for name in sorted(exporting.declared_secrets)},
        config_files=exporting.config_files,
        networks_to_create=exporting.networks_to_create,
        required_networks=sorted(exporting.required_networks),
        not_exported=exporting.not_exported(rendering),
    )


def export_stack(
    stack: str, overrides: Mapping[str, Any] | None, secrets: Mapping[str, str]
) -> StackExport:
    """Run the program for ``stack`` (``Pulumi.<stack>.yaml``, the export's defaults, then
    ``overrides``) with ``secrets`` as its secret config, and export it."""
    rendering = render(stack, deep_merge(EXPORT_DEFAULTS, overrides or {}), secrets=secrets)
    return export(rendering)


def _on_shared_storage(resource: Any) -> bool:
    """A volume with driver options is defined in every stack that mounts it: `docker stack
    deploy` gives the mounts of an external volume no driver options, and a node that creates
    the volume for such a task would make a plain local one (docs/multi-node.md)."""
    return resource is not None and bool(resource.inputs.get("driverOpts"))
