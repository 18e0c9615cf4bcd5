"""Every image the stack runs (app, MariaDB, Redis, Traefik, mailpit), pinned to a registry digest.

Two reasons to deploy ``repo:tag@sha256:...`` rather than ``repo:tag``:

- The app image is tagged by branch (``develop``, ``staging``, ``main``), so a new push has the
  tag of the last one; only the digest turns it into a change Pulumi previews and rolls out.
- The Docker provider creates services with ``QueryRegistry = true``
  (``resource_docker_service_funcs.go`` in terraform-provider-docker v4.5.0), so the Docker
  client rewrites a tag-only image to ``repo:tag@sha256:...`` before the spec is stored, and the
  provider reads it back verbatim with no diff suppression. A tag-only image therefore differs
  from the stored one on the very next ``pulumi up``, which "updates" it back: a restart of
  MariaDB, Redis or Traefik (stop-first) for a deploy that changed nothing. A reference that
  already carries a digest is stored unchanged (the client's ``imageWithDigestString`` leaves
  canonical references alone), so what is sent is what is read back.

The tag stays in the reference so ``docker service ls`` still says which version runs. A digest
written in config pins an image without asking the registry (``brandclub:imageDigest`` for the
app, ``images.<name>: repo:tag@sha256:...`` for the others). ``registry.resolveDigest: false``
(the stack export and the live tier, where there is no registry to ask) deploys plain tags.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config.model import StackConfig
from components.config.sections import RegistrySettings
from components.platform.catalogue import MAILPIT

# The images a stack can run, in the order they are looked up.
IMAGE_ROLES = ("app", "mariadb", "redis", "traefik", "mailpit")


@dataclass(frozen=True)
class ImageRequest:
    role: str
    # repo:tag, or repo[:tag]@sha256:... when config pins it.
    reference: str

    @property
    def pinned_digest(self) -> str | None:
        return self.reference.partition("@")[2] or None

    @property
    def registry_host(self) -> str | None:
        """The registry named in the reference (``ghcr.io``), None for Docker Hub."""
        first, slash, _ = self.reference.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            return first
        return None


@dataclass(frozen=True)
class ImagesArgs:
    requests: tuple[ImageRequest, ...]
    registry: RegistrySettings
    registry_password: str | None

    @classmethod
    def from_config(cls, config: StackConfig) -> ImagesArgs:
        """Only the images this stack runs: Traefik where it owns the ingress, mailpit in dev."""
        app = config.app_image
        if config.image_digest is not None:
            app = f"{app}@{config.image_digest}"
        wanted = {
            "app": app,
            "mariadb": config.mariadb_image,
            "redis": config.images.redis,
            "traefik": config.images.traefik if config.ingress.manage else None,
            "mailpit": config.images.mailpit if config.services.get(MAILPIT.name) else None,
        }
        password = config.registry_password
        return cls(
            requests=tuple(
                ImageRequest(role=role, reference=wanted[role])
                for role in IMAGE_ROLES
                if wanted[role]
            ),
            registry=config.registry,
            registry_password=password.get_secret_value() if password else None,
        )

    def uses_credentials(self, request: ImageRequest) -> bool:
        registry = self.registry
        return registry.username is not None and request.registry_host == registry.server


class Images(pulumi.ComponentResource):
    """``references[role]`` is what the services of that role run; ``digests[role]`` is None
    only for an image deployed by tag (``registry.resolveDigest: false``)."""

    references: dict[str, pulumi.Output[str]]
    digests: dict[str, pulumi.Output[str | None]]

    def __init__(
        self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # The component that resolved only the app image was brandclub:swarm:AppImage "image".
        aliases = [pulumi.Alias(type_="brandclub:swarm:AppImage", name="image")]
        own = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases))
        super().__init__("brandclub:swarm:Images", name, None, own)
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self))
        provider = self._registry_provider(name, args, child)
        self.references = {}
        self.digests = {}
        for request in args.requests:
            private = provider if args.uses_credentials(request) else None
            digest = self._digest(request, args, private)
            self.digests[request.role] = digest
            self.references[request.role] = digest.apply(
                lambda d, r=request.reference: r if d is None or "@" in r else f"{r}@{d}"
            )
        self.register_outputs({"references": self.references, "digests": self.digests})

    def _digest(
        self, request: ImageRequest, args: ImagesArgs, provider: docker.Provider | None
    ) -> pulumi.Output[str | None]:
        if request.pinned_digest is not None:
            return pulumi.Output.from_input(request.pinned_digest)
        if not args.registry.resolve_digest:
            # Images that exist on the swarm node alone (export, live tier) have no digest.
            return pulumi.Output.from_input(None)
        lookup = docker.get_registry_image_output(
            name=request.reference,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=provider),
        )
        return lookup.sha256_digest

    @staticmethod
    def _registry_provider(
        name: str, args: ImagesArgs, opts: pulumi.ResourceOptions
    ) -> docker.Provider | None:
        """A provider that only talks to the private registry; None when no image needs it."""
        registry = args.registry
        if not any(args.uses_credentials(r) for r in args.requests):
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
