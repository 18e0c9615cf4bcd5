"""Where things run and what every node mounts: ``placement`` and ``storage``.

A swarm of one node needs neither: everything runs there and a local volume is the same volume
for every task. With more nodes, three facts decide what survives a node's loss: the node that
holds the data volumes (a node label, so the data services and their volumes stay together), the
managers that hold Traefik's certificate volume, and how the replicas of one app service spread
over nodes. The ``sites`` volume must then be the same files on every node: shared storage
through Docker's ``local`` volume driver (docs/multi-node.md).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from components.config.formats import contradiction, nfs_export
from components.config.grammar import nfs_address
from components.config.sections import REPLICAS_MAX
from components.config.types import (
    Model,
    NodePath,
    PlacementConstraints,
    Violation,
    matching,
)

# The constraint a data-node label adds: `docker node update --label-add <label>=true <node>`.
DATA_NODE_LABEL_VALUE = "true"
# Traefik talks to the Docker API of a manager (its Swarm provider), so it only runs there.
MANAGER_CONSTRAINT = "node.role == manager"

NodeLabel = Annotated[
    str,
    matching(
        r"(?=.{1,128}$)[a-z0-9]+([._-][a-z0-9]+)*",
        "a node label key such as brandclub.data (lower-case letters, digits, . _ -; at most 128)",
    ),
]
# What a placement preference spreads over: every node, or the values of a node label.
SpreadDescriptor = Annotated[
    str,
    matching(
        r"node\.id|node\.labels\.(?=.{1,128}$)[a-z0-9]+([._-][a-z0-9]+)*",
        "node.id or node.labels.<key> (such as node.labels.zone; a key of at most 128)",
    ),
]
# An IP address or a DNS name (components/config/grammar.py): it becomes the addr= option.
NfsAddress = Annotated[str, AfterValidator(nfs_address)]
# A path on the NFS server, "/" included (NFSv4's pseudo-root).
NfsExport = Annotated[str, AfterValidator(nfs_export)]


# One mount option per entry; they are joined with ',' into the volume's `o` option.
def _not_the_address(option: str) -> str:
    # addr= is storage.sites.address: a second one would contradict it, and the last one wins.
    if option.split("=", 1)[0] == "addr":
        raise ValueError("expected an option other than addr= (that is storage.sites.address)")
    return option


NfsOption = Annotated[
    str,
    matching(
        r"[a-z][a-z0-9_]{0,63}(=[A-Za-z0-9._:/-]{1,255})?",
        "an NFS mount option such as nfsvers=4.1, hard or timeo=600 (one per entry)",
    ),
    AfterValidator(_not_the_address),
]


class Placement(Model):
    # Constraints of the data services (MariaDB, both Redis), the backup service and the jobs
    # that read the backups; with dataNodeLabel, that label's constraint comes on top.
    data: PlacementConstraints = Field(default_factory=lambda: [MANAGER_CONSTRAINT])
    # The label of the one node whose disk holds the data volumes. Local volumes live on one
    # node: a MariaDB rescheduled elsewhere would start on an empty volume.
    data_node_label: NodeLabel | None = None
    app: PlacementConstraints = Field(default_factory=list)
    # Traefik: managers only; its certificate volume is local to the node it runs on, so on a
    # swarm with several managers pin it with a label too, or it re-orders every certificate.
    ingress: PlacementConstraints = Field(default_factory=lambda: [MANAGER_CONSTRAINT])
    # App services with 2 or more replicas spread them over this (one node's loss takes at most
    # its share), and run at most this many on one node (none: no limit).
    spread: SpreadDescriptor = "node.id"
    max_replicas_per_node: int | None = Field(default=None, ge=1, le=REPLICAS_MAX)

    @field_validator("ingress")
    @classmethod
    def _on_a_manager(cls, ingress: list[str]) -> list[str]:
        # A field rule, so it is reported with every other problem of the section.
        if MANAGER_CONSTRAINT.replace(" ", "") not in {c.replace(" ", "") for c in ingress}:
            raise ValueError(
                f"a list with {MANAGER_CONSTRAINT!r}: Traefik's Swarm provider reads the "
                "services from a manager's Docker API"
            )
        return ingress

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        problem = contradiction(self.data_constraints) if self.data_node_label else None
        if problem is not None:
            broken.append(
                Violation(
                    "data",
                    self.data,
                    f"constraints the data node (labelled {self.data_node_label}="
                    f"{DATA_NODE_LABEL_VALUE}) can meet: {problem}",
                )
            )
        return broken

    @property
    def data_constraints(self) -> list[str]:
        label = self.data_node_label
        pinned = [f"node.labels.{label} == {DATA_NODE_LABEL_VALUE}"] if label else []
        return [*self.data, *pinned]


class LocalStorage(Model):
    """A volume on the node that runs the task: one node only."""

    kind: Literal["local"]


class NfsStorage(Model):
    """An NFS export every node mounts itself, through the local driver (needs the NFS client
    on every node)."""

    kind: Literal["nfs"]
    address: NfsAddress
    export: NfsExport
    options: list[NfsOption] = Field(default_factory=lambda: ["nfsvers=4.1", "hard"], max_length=16)


class SharedPathStorage(Model):
    """A directory every node already mounts at the same path (an NFS, CephFS or GlusterFS
    mount on each host), bound into the volume."""

    kind: Literal["path"]
    path: NodePath


VolumeStorage = Annotated[
    LocalStorage | NfsStorage | SharedPathStorage, Field(discriminator="kind")
]


def driver_options(storage: LocalStorage | NfsStorage | SharedPathStorage) -> dict[str, str]:
    """The ``local`` driver's options for a storage (none for a plain local volume)."""
    if isinstance(storage, NfsStorage):
        return {
            "type": "nfs",
            "o": ",".join([f"addr={storage.address}", *storage.options]),
            "device": f":{storage.export}",
        }
    if isinstance(storage, SharedPathStorage):
        return {"type": "none", "o": "bind", "device": storage.path}
    return {}


def storage_suffix(storage: LocalStorage | NfsStorage | SharedPathStorage) -> str:
    """What the Docker volume's name ends with: nothing for a local volume; the kind and a
    fingerprint of the options for shared storage. Docker never changes the options of a volume
    that exists on a node, so other options must be another volume, never the old one reused."""
    options = driver_options(storage)
    if not options:
        return ""
    text = "\n".join(f"{key}={value}" for key, value in sorted(options.items()))
    return f"-{storage.kind}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


class Storage(Model):
    # The sites volume: every site's config, uploaded files and common_site_config.json; each
    # app task and site job mounts it, wherever it runs.
    sites: VolumeStorage = Field(default_factory=lambda: LocalStorage(kind="local"))
