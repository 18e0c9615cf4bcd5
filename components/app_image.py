"""The app image every Frappe service and site job runs, pinned to a registry digest.

Images are tagged by branch (``develop``, ``staging``, ``main``), so the tag of a new push is the
tag of the last one and a deployment by tag alone would show no diff. Resolving the tag to its
digest at deploy time turns each push into a changed ``repo:tag@sha256:...`` reference, which
Pulumi previews and rolls out like any other change; the tag stays in the reference so
``docker service ls`` still says which branch runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import RegistrySettings, StackConfig


@dataclass(frozen=True)
class AppImageArgs:
    repository: str
    tag: str
    # An explicit digest from config pins the image; None resolves the tag.
    pinned_digest: str | None
    registry: RegistrySettings
    registry_password: str | None

    @classmethod
    def from_config(cls, config: StackConfig) -> AppImageArgs:
        password = config.registry_password
        return cls(
            repository=config.images.app,
            tag=config.app_tag,
            pinned_digest=config.image_digest,
            registry=config.registry,
            registry_password=password.get_secret_value() if password else None,
        )

    @property
    def tagged(self) -> str:
        return f"{self.repository}:{self.tag}"


class AppImage(pulumi.ComponentResource):
    """``reference`` is what the services run; ``digest`` is None only for unresolved images."""

    reference: pulumi.Output[str]
    digest: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("brandclub:swarm:AppImage", name, None, opts)
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self))
        if args.pinned_digest is not None:
            self.digest = pulumi.Output.from_input(args.pinned_digest)
        elif args.registry.resolve_digest:
            lookup = docker.get_registry_image_output(
                name=args.tagged,
                opts=pulumi.InvokeOutputOptions(
                    parent=self, provider=self._registry_provider(name, args, child)
                ),
            )
            self.digest = lookup.sha256_digest
        else:
            # Images that exist on the swarm node alone (the live test tier) have no digest.
            self.digest = pulumi.Output.from_input(None)
        self.reference = self.digest.apply(
            lambda digest: f"{args.tagged}@{digest}" if digest else args.tagged
        )
        self.register_outputs({"reference": self.reference, "digest": self.digest})

    @staticmethod
    def _registry_provider(
        name: str, args: AppImageArgs, opts: pulumi.ResourceOptions
    ) -> docker.Provider | None:
        """A provider that only talks to the registry, for private images; None for public."""
        registry = args.registry
        if registry.username is None:
            return None
        return docker.Provider(
            f"{name}-registry",
            # The lookup asks the registry, never the Docker daemon.
            disable_docker_daemon_check=True,
            registry_auth=[
                docker.ProviderRegistryAuthArgs(
                    address=registry.server,
                    username=registry.username,
                    password=pulumi.Output.secret(args.registry_password or ""),
                )
            ],
            opts=opts,
        )
