"""One way to turn a service description into a ``docker.Service``, shared by every layer.

Components describe their services as :class:`ServiceSpec` data; :func:`swarm_service` owns the
translation to pulumi-docker's argument types, so update/rollback policy, resources, health
checks and labels are spelled the same way for data, app and ingress services.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_docker as docker

from components.config.sections import HealthcheckSettings, Resources, RolloutSettings
from components.config.units import canonical_duration
from components.platform.catalogue import STACK_NAMESPACE_LABEL, NetworkRole, UpdateOrder

# An environment's networks by role (components/platform/catalogue.py): their ids for a service
# to join, their names for the docker CLI.
Networks = Mapping[NetworkRole, pulumi.Input[str]]

# Left to the engine on purpose. The Docker provider creates a service with QueryRegistry, so the
# Docker client fills Placement.Platforms with the image's platforms before the spec is stored,
# and the provider reads them back (terraform-provider-docker v4.5.0: resourceDockerServiceCreate,
# flattenTaskPlacement); in its schema `platforms` is Optional without Computed and without diff
# suppression, so leaving it out would show "platforms removed" on every later preview and update
# the service. Registering the stored value is not possible: the platforms are the image's, known
# only to the registry. pulumi-terraform-bridge honours ignoreChanges in Diff by dropping every
# Terraform attribute diff at or below the ignored path (computeIgnoreChanges in tfbridge/diff.go,
# processIgnoreChanges in tfshim/sdk-v2), so the stored platforms stay as they are.
IGNORED_SERVICE_PATHS = ("taskSpec.placement.platforms",)


@dataclass(frozen=True)
class Attachment:
    """A network a service joins; aliases are the DNS names other services use to reach it."""

    network_id: pulumi.Input[str]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mount:
    target: str
    source: pulumi.Input[str]
    type: Literal["volume", "bind"] = "volume"
    read_only: bool = False
    # The local driver's options of a volume on shared storage (components/config/nodes.py):
    # each node creates the volume from the mount itself the first time a task needs it there.
    driver_options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretFile:
    secret_id: pulumi.Input[str]
    secret_name: pulumi.Input[str]
    path: str


@dataclass(frozen=True)
class ConfigFile:
    """A Docker config (a non-secret file such as the nginx template), read-only at ``path``."""

    config_id: pulumi.Input[str]
    config_name: pulumi.Input[str]
    path: str


@dataclass(frozen=True)
class RegistryCredentials:
    """What every node needs to pull a private image; the password stays a Pulumi secret."""

    server: str
    username: str
    password: pulumi.Input[str]


@dataclass(frozen=True)
class HostPort:
    """A port published in host mode, which keeps the client's source address."""

    port: int
    name: str


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    stack: str
    image: pulumi.Input[str]
    replicas: int
    limits: Resources
    reservations: Resources
    networks: Sequence[Attachment]
    health_test: Sequence[str]
    health_timing: HealthcheckSettings
    rollout: RolloutSettings
    update_order: UpdateOrder
    endpoint_mode: str
    # The image's CMD (Swarm's Args, compose's `command`). There is deliberately no way to
    # replace the ENTRYPOINT: the Frappe image's links the baked assets into the sites volume,
    # and the Redis and MariaDB images' drop root and prepare the data directory.
    args: Sequence[str] | None = None
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    mounts: Sequence[Mount] = ()
    secrets: Sequence[SecretFile] = ()
    configs: Sequence[ConfigFile] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    constraints: Sequence[str] = ()
    # A placement preference (spread over node.id or a node label) and the most tasks one node
    # runs; for services with more than one replica.
    spread: str | None = None
    max_replicas: int | None = None
    ports: Sequence[HostPort] = ()
    stop_grace_period: str = "30s"
    registry: RegistryCredentials | None = None
    # Docker's init as PID 1, passing signals on: for a process that installs no SIGTERM
    # handler, which as PID 1 the kernel would never deliver the signal to.
    init: bool = False


def label_list(labels: Mapping[str, str], label_type: type) -> list:
    return [label_type(label=key, value=value) for key, value in sorted(labels.items())]


def _nano_cpus(cpus: float) -> int:
    return round(cpus * 1_000_000_000)


def service_args(spec: ServiceSpec) -> docker.ServiceArgs:
    timing = spec.health_timing
    rollout = spec.rollout
    policy = {
        "parallelism": rollout.parallelism,
        "monitor": canonical_duration(rollout.monitor),
        # One decimal, as the provider reads it back.
        "max_failure_ratio": f"{rollout.max_failure_ratio:.1f}",
        "order": spec.update_order,
    }
    # On failure an update rolls back; a failed rollback pauses rather than flapping forever.
    update = docker.ServiceUpdateConfigArgs(
        **policy, delay=canonical_duration(rollout.delay), failure_action="rollback"
    )
    rollback = docker.ServiceRollbackConfigArgs(**policy, delay="0s", failure_action="pause")
    container = docker.ServiceTaskSpecContainerSpecArgs(
        image=spec.image,
        args=list(spec.args) if spec.args is not None else None,
        env=dict(spec.env) or None,
        mounts=[
            docker.ServiceTaskSpecContainerSpecMountArgs(
                target=mount.target,
                source=mount.source,
                type=mount.type,
                read_only=mount.read_only,
                volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(
                    driver_name="local", driver_options=dict(mount.driver_options)
                )
                if mount.driver_options
                else None,
            )
            for mount in spec.mounts
        ]
        or None,
        secrets=[
            docker.ServiceTaskSpecContainerSpecSecretArgs(
                secret_id=secret.secret_id,
                secret_name=secret.secret_name,
                file_name=secret.path,
            )
            for secret in spec.secrets
        ]
        or None,
        configs=[
            docker.ServiceTaskSpecContainerSpecConfigArgs(
                config_id=config.config_id,
                config_name=config.config_name,
                file_name=config.path,
            )
            for config in spec.configs
        ]
        or None,
        healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
            tests=list(spec.health_test),
            interval=canonical_duration(timing.interval),
            timeout=canonical_duration(timing.timeout),
            retries=timing.retries,
            start_period=canonical_duration(timing.start_period),
        ),
        stop_grace_period=canonical_duration(spec.stop_grace_period),
        init=True if spec.init else None,
    )
    task = docker.ServiceTaskSpecArgs(
        container_spec=container,
        networks_advanceds=[
            docker.ServiceTaskSpecNetworksAdvancedArgs(
                id=attachment.network_id, aliases=list(attachment.aliases) or None
            )
            for attachment in spec.networks
        ],
        resources=docker.ServiceTaskSpecResourcesArgs(
            limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                memory_bytes=spec.limits.memory, nano_cpus=_nano_cpus(spec.limits.cpus)
            ),
            reservation=docker.ServiceTaskSpecResourcesReservationArgs(
                memory_bytes=spec.reservations.memory,
                nano_cpus=_nano_cpus(spec.reservations.cpus),
            ),
        ),
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
            condition="any", delay="5s", window="2m"
        ),
        # Always registered, if only with no constraints: the engine resets an ignoreChanges
        # path from the old inputs and fails "one or more elements of the path are missing" when
        # an object on the path was registered before and is missing now (PropertyPath.Reset).
        # The provider reads prefs back as a set of descriptors and max_replicas as a number,
        # 0 when unset (flattenTaskPlacement): unset and 0 are the same to Terraform.
        placement=docker.ServiceTaskSpecPlacementArgs(
            constraints=list(spec.constraints),
            prefs=[spec.spread] if spec.spread else None,
            max_replicas=spec.max_replicas,
        ),
    )
    return docker.ServiceArgs(
        name=spec.name,
        labels=label_list(
            {**spec.labels, STACK_NAMESPACE_LABEL: spec.stack}, docker.ServiceLabelArgs
        ),
        mode=docker.ServiceModeArgs(
            replicated=docker.ServiceModeReplicatedArgs(replicas=spec.replicas)
        ),
        task_spec=task,
        update_config=update,
        rollback_config=rollback,
        endpoint_spec=docker.ServiceEndpointSpecArgs(
            mode=spec.endpoint_mode,
            ports=[
                docker.ServiceEndpointSpecPortArgs(
                    name=port.name,
                    target_port=port.port,
                    published_port=port.port,
                    publish_mode="host",
                    protocol="tcp",
                )
                for port in spec.ports
            ]
            or None,
        ),
        converge_config=docker.ServiceConvergeConfigArgs(
            delay="5s", timeout=rollout.converge_timeout
        ),
        auth=docker.ServiceAuthArgs(
            server_address=spec.registry.server,
            username=spec.registry.username,
            password=pulumi.Output.secret(spec.registry.password),
        )
        if spec.registry is not None
        else None,
    )


def overlay_network(
    resource_name: str,
    name: str,
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    *,
    attachable: bool = False,
    internal: bool = False,
) -> docker.Network:
    return docker.Network(
        resource_name,
        name=name,
        driver="overlay",
        attachable=attachable,
        internal=internal,
        labels=label_list(labels, docker.NetworkLabelArgs),
        opts=opts,
    )


def swarm_service(
    resource_name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions
) -> docker.Service:
    ignored = pulumi.ResourceOptions(ignore_changes=list(IGNORED_SERVICE_PATHS))
    return docker.Service(
        resource_name, service_args(spec), opts=pulumi.ResourceOptions.merge(opts, ignored)
    )


def tcp_probe(host: str, port: int) -> tuple[str, ...]:
    """A health check that needs nothing but bash, present in every Frappe image."""
    return ("CMD", "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}")
