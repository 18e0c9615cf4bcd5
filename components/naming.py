"""Names of the swarm objects, one place for the ``brandclub-{env}-*`` conventions.

Services are named ``<stack>_<service>`` exactly as ``docker stack deploy`` would name them, so
the architecture's runbook commands (``docker service scale brandclub-prod_backend=4``) and
``docker stack ps brandclub-prod`` keep working on services Pulumi created.
"""

from __future__ import annotations

from dataclasses import dataclass

# Swarm-wide objects, shared by every environment on the swarm.
TRAEFIK_STACK = "traefik"
TRAEFIK_PUBLIC_NETWORK = "traefik-public"
SHARED_SERVICES_NETWORK = "shared-services"
TRAEFIK_CERTIFICATES_VOLUME = "traefik-certificates"

STACK_NAMESPACE_LABEL = "com.docker.stack.namespace"

# Volumes no service mounts any more, kept declared so that no `pulumi up` has to delete a volume
# that was protected when it was created (Pulumi refuses to delete a protected resource). They
# are unprotected, retained on delete, and exempt from the prod protection policy; removing
# their declaration later forgets them without touching Docker (README, "Retired volumes").
#   redis-cache: the cache keeps no snapshots since issue 9 item 15.
RETIRED_VOLUMES: tuple[str, ...] = ("redis-cache",)


@dataclass(frozen=True)
class EnvironmentNames:
    environment: str

    @property
    def app_stack(self) -> str:
        return f"brandclub-{self.environment}"

    @property
    def data_stack(self) -> str:
        return f"brandclub-db-{self.environment}"

    @property
    def internal_network(self) -> str:
        return f"brandclub-{self.environment}-network"

    @property
    def database_network(self) -> str:
        return f"brandclub-{self.environment}-mariadb"

    @property
    def realtime_network(self) -> str:
        return f"brandclub-{self.environment}-realtime"

    def volume(self, purpose: str) -> str:
        return f"brandclub-{self.environment}-{purpose}"

    def secret(self, purpose: str) -> str:
        return f"{self.data_stack}-{purpose}"

    @staticmethod
    def service(stack: str, service: str) -> str:
        return f"{stack}_{service}"
