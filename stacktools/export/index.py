"""The registered resources of one rendering, by docker name, and which swarm stack owns each."""

from __future__ import annotations

from collections.abc import Iterator

from components.platform.catalogue import STACK_NAMESPACE_LABEL
from stacktools.engine import Registered, Rendering
from stacktools.export.inputs import ExportError

SERVICE = "docker:index/service:Service"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
GET_NETWORK = "docker:index/getNetwork:getNetwork"
DOCKER_PACKAGE = "docker:"
# The docker resource types a stack file can define.
TRANSLATED = frozenset({SERVICE, NETWORK, VOLUME, SECRET, CONFIG})


class Index:
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
        # By kind, in the order a stack file lists them.
        self.kinds = {
            "networks": self.networks,
            "volumes": self.volumes,
            "secrets": self.secrets,
            "configs": self.configs,
        }
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

    def named(self, kind: str) -> dict[str, Registered]:
        """The registered secrets (``secret``) or configs (``config``) by docker name."""
        return self.kinds[f"{kind}s"]

    def network_name(self, network_id: str) -> str:
        try:
            return self.rendering.network_name(network_id)
        except KeyError:
            raise ExportError(
                f"a service joins network id {network_id!r}, which no "
                f"registered or looked-up network has"
            ) from None
