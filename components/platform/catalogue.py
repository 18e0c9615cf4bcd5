"""The service catalogue: every swarm service, the names and labels of swarm objects, in one place.

One row per service says what everything else needs to know about it: its name (the swarm
service ``<stack>_<name>`` and the DNS alias on its environment's networks), the port others
reach it on, the environment networks it joins, whether it must run exactly once, which
environments may or must run it, its layer, and for a worker the Frappe queues it consumes. The
config models, the components, the site jobs, the policy pack and the docs read these rows;
nothing else states them.

Adding a worker queue is one row here (``worker("queue-reports", "long")``) plus its numbers under
``services.queue-reports`` in each ``Pulumi.<stack>.yaml``.

Deliberately free of dependencies (no Pulumi, no pydantic): the policy pack imports it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# --- labels ---------------------------------------------------------------------------------

# Every resource of an environment carries these two; the policy pack reads them.
ENVIRONMENT_LABEL = "brandclub.environment"
LAYER_LABEL = "brandclub.layer"
# On a service that must never run two tasks (a catalogue row with singleton=True).
SINGLETON_LABEL = "brandclub.singleton"
# What `docker stack deploy` puts on a service: the stack it belongs to.
STACK_NAMESPACE_LABEL = "com.docker.stack.namespace"
# The service label Traefik's Swarm provider filters on (ingress.constraintLabel is its value).
CONSTRAINT_LABEL = "traefik.constraint-label"

Layer = Literal["data", "app", "ingress", "jobs"]
# How Swarm replaces a service's tasks: a new one first (start-first, the old one stops once
# the new one is healthy) or the old one first (stop-first).
UpdateOrder = Literal["start-first", "stop-first"]


def layer_labels(layer: Layer, environment: str | None = None) -> dict[str, str]:
    """The labels of a layer's resources; the swarm-wide ingress has no environment."""
    labels = {ENVIRONMENT_LABEL: environment} if environment is not None else {}
    return {**labels, LAYER_LABEL: layer}


# --- names ----------------------------------------------------------------------------------

ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod", "local")
# Environments alone on a swarm of their own (one machine: `./deploy.sh local`). Their Traefik
# serves them only, so nothing of the ingress is shared, protected or kept past a destroy, and
# it carries the environment's label like the rest of the stack.
STANDALONE_ENVIRONMENTS: tuple[str, ...] = ("local",)

# Swarm-wide objects, shared by every environment on the swarm.
TRAEFIK_STACK = "traefik"
TRAEFIK_PUBLIC_NETWORK = "traefik-public"
SHARED_SERVICES_NETWORK = "shared-services"
TRAEFIK_CERTIFICATES_VOLUME = "traefik-certificates"

# Volumes no service mounts any more, kept declared so that no `pulumi up` has to delete a volume
# that was protected when it was created (Pulumi refuses to delete a protected resource). They
# are unprotected, retained on delete, and exempt from the prod protection policy; removing
# their declaration later forgets them without touching Docker (docs/operations.md#retired-volumes).
# A volume's labels cannot change without replacing it, so this list, not a label, marks them.
#   redis-cache: the cache keeps no snapshots since issue 9 item 15.
RETIRED_VOLUMES: tuple[str, ...] = ("redis-cache",)
# The environments that existed when they retired; an environment made later never had them.
RETIRED_VOLUME_ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")


@dataclass(frozen=True)
class EnvironmentNames:
    """The ``brandclub-{env}-*`` conventions.

    Services are named ``<stack>_<service>`` exactly as ``docker stack deploy`` would name them,
    so runbook commands (``docker service scale brandclub-prod_backend=4``) and
    ``docker stack ps brandclub-prod`` keep working on services Pulumi created.
    """

    environment: str

    @property
    def app_stack(self) -> str:
        return f"brandclub-{self.environment}"

    @property
    def data_stack(self) -> str:
        return f"brandclub-db-{self.environment}"

    def network(self, role: NetworkRole) -> str:
        """The environment network of ``role`` (``public`` is the swarm's traefik-public)."""
        suffix = {"internal": "network", "database": "mariadb", "realtime": "realtime"}
        return TRAEFIK_PUBLIC_NETWORK if role == "public" else f"{self.app_stack}-{suffix[role]}"

    def volume(self, purpose: str) -> str:
        return f"{self.app_stack}-{purpose}"

    def secret(self, purpose: str) -> str:
        return f"{self.data_stack}-{purpose}"

    @staticmethod
    def service(stack: str, service: str) -> str:
        return f"{stack}_{service}"


# --- Frappe's queues ------------------------------------------------------------------------

# Frappe v15's built-in queues and their job timeouts, in seconds (frappe/utils/background_jobs.py,
# get_queues_timeout).
FRAPPE_QUEUE_TIMEOUTS: dict[str, int] = {"short": 300, "default": 300, "long": 1500}
# The queues this platform's workers consume, with their job timeouts: Frappe's, and any queue of
# its own added here (e.g. "reports": 3000). A worker told to stop finishes the job in hand first.
QUEUE_TIMEOUTS: dict[str, int] = {**FRAPPE_QUEUE_TIMEOUTS}


def frappe_workers_map(timeouts: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
    """Frappe's ``workers`` map in common_site_config.json (written by the configurator): every
    queue it does not know, or whose timeout differs from its own, with the timeout. Frappe reads
    the queues it accepts and their timeouts from it (get_queues_timeout: its built-ins, then
    ``{queue: config.get("timeout", 300)}`` for each entry); a queue missing there is refused
    ("Queue should be one of ...")."""
    table = QUEUE_TIMEOUTS if timeouts is None else timeouts
    return {
        queue: {"timeout": timeout}
        for queue, timeout in table.items()
        if FRAPPE_QUEUE_TIMEOUTS.get(queue) != timeout
    }


# Beyond its longest job, the time a stopping worker gets to finish and deregister; bench's own
# supervisor config waits the long queue's 1500 s plus this (stopwaitsecs = 1560).
WORKER_STOP_MARGIN = 60


def worker_stop_grace_seconds(queues: tuple[str, ...]) -> int:
    """The longest job timeout among ``queues`` plus the stop margin."""
    return max(QUEUE_TIMEOUTS[queue] for queue in queues) + WORKER_STOP_MARGIN


# --- the services ---------------------------------------------------------------------------

# Which of the environment's networks a service joins:
#   internal - brandclub-{env}-network: Redis and every app service;
#   database - brandclub-{env}-mariadb: only the processes that talk SQL;
#   realtime - brandclub-{env}-realtime: the websocket and the frontend, which answers there to
#              the site's name (the realtime server checks sessions at http://<site>:8080);
#   public   - traefik-public: Traefik, and every app service Traefik routes to (the ingress
#              says which: the frontend always, the websocket where ingress.websocketDirect).
NetworkRole = Literal["internal", "database", "realtime", "public"]
# The order a service's attachments are listed in.
NETWORK_ROLES: tuple[NetworkRole, ...] = ("internal", "database", "realtime", "public")
SQL: frozenset[NetworkRole] = frozenset({"internal", "database"})


@dataclass(frozen=True)
class Service:
    name: str
    layer: Layer
    networks: frozenset[NetworkRole]
    # The port other services reach it on, under its name (the alias on its networks).
    port: int | None = None
    # An app service that must never run two tasks, not even for the seconds a start-first
    # update overlaps old and new: two schedulers enqueue every scheduled job twice. Config
    # refuses replicas other than 1, it updates stop-first and carries SINGLETON_LABEL. (The
    # data services and Traefik run one task by construction, not by configuration.)
    singleton: bool = False
    # False: every environment runs it. True: it runs where its settings are given (for the
    # ingress: where ingress.manage is true), only in `environments`, and must in `required_in`.
    optional: bool = False
    environments: tuple[str, ...] = ENVIRONMENTS
    required_in: tuple[str, ...] = ()
    # Why `environments` and `required_in` are what they are (it ends the config error).
    because: str = ""
    # A worker: the Frappe queues it consumes, in order.
    queues: tuple[str, ...] = ()
    # Ports published on the node (host mode); only the ingress has any.
    published: tuple[int, ...] = ()

    @property
    def update_order(self) -> UpdateOrder:
        """start-first only for the app services that may run twice: a data service's second
        task would share its volume (two mysqld on one data directory), Traefik's host-mode
        ports 80/443 are bound by one task at a time on a node, and a singleton must never
        overlap itself. A start-first rollout runs extra tasks for a while, which the nodes
        must have room for (components/capacity_preflight.py)."""
        stateless = self.layer == "app" and not self.singleton
        return "start-first" if stateless else "stop-first"

    @property
    def aliases(self) -> tuple[str, ...]:
        """The DNS names it answers to on its environment networks."""
        return (self.name,)

    @property
    def address(self) -> str:
        return f"{self.name}:{self.port}"

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.address}"

    @property
    def stop_grace_seconds(self) -> int | None:
        """A worker's: it finishes the job in hand on SIGTERM, and Swarm kills it when the
        grace period ends, so the period outlasts the longest job its queues may run."""
        return worker_stop_grace_seconds(self.queues) if self.queues else None


def worker(name: str, *queues: str) -> Service:
    """A Frappe worker consuming ``queues``; it talks SQL and reaches the queue Redis."""
    return Service(name, "app", SQL, queues=queues)


MARIADB = Service("mariadb", "data", frozenset({"database"}), port=3306)
REDIS_CACHE = Service("redis-cache", "data", frozenset({"internal"}), port=6379)
REDIS_QUEUE = Service("redis-queue", "data", frozenset({"internal"}), port=6379)

BACKEND = Service("backend", "app", SQL, port=8000)
FRONTEND = Service("frontend", "app", frozenset({"internal", "realtime"}), port=8080)
WEBSOCKET = Service("websocket", "app", frozenset({"internal", "realtime"}), port=9000)
SCHEDULER = Service("scheduler", "app", SQL, singleton=True)
BACKUP = Service(
    "backup",
    "app",
    SQL,
    singleton=True,
    optional=True,
    required_in=("prod",),
    because="architecture section 7",
)
# The restore drill (where backup.drill.enabled; docs/backups.md#restore-drills): restores the
# newest backups into throwaway sites on the stack's MariaDB (so it talks SQL) and serves its
# outcome as Prometheus metrics on traefik-public, where Traefik's unpublished metrics
# entrypoint is too (docs/traefik.md#metrics): its port is published nowhere.
RESTORE_DRILL_METRICS_PORT = 9150
RESTORE_DRILL = Service(
    "restore-drill",
    "app",
    SQL | {"public"},
    port=RESTORE_DRILL_METRICS_PORT,
    singleton=True,
    optional=True,
    because="it restores the backups of that stack's backup service",
)
# Frappe sends mail to it by SMTP; its web UI answers on 8025.
MAILPIT = Service(
    "mailpit",
    "app",
    frozenset({"internal"}),
    port=1025,
    optional=True,
    environments=("dev", "local"),
    because="it would swallow real customer e-mail",
)

# Traefik's own entrypoints: the web ports it publishes, and /ping, reached on traefik-public.
HTTP_PORT = 80
HTTPS_PORT = 443
PING_PORT = 8080
TRAEFIK = Service(
    "traefik",
    "ingress",
    frozenset({"public"}),
    optional=True,
    published=(HTTP_PORT, HTTPS_PORT),
)

DATA_SERVICES: tuple[Service, ...] = (MARIADB, REDIS_CACHE, REDIS_QUEUE)
# In the order the app layer registers them; the backend first (the others wait for it).
APP_SERVICES: tuple[Service, ...] = (
    BACKEND,
    FRONTEND,
    WEBSOCKET,
    worker("queue-default", "default"),
    worker("queue-short", "short", "default"),
    worker("queue-long", "long", "default", "short"),
    SCHEDULER,
    BACKUP,
    RESTORE_DRILL,
    MAILPIT,
)
INGRESS_SERVICES: tuple[Service, ...] = (TRAEFIK,)


def services() -> tuple[Service, ...]:
    """Every row, read when called (a test may add a worker row)."""
    return DATA_SERVICES + APP_SERVICES + INGRESS_SERVICES


def service(name: str) -> Service:
    return next(row for row in services() if row.name == name)


def markdown() -> str:
    """The catalogue as the docs show it: ``python -m components.platform.catalogue``."""
    rows = [
        "| service | layer | port | networks | runs | once | queues |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in services():
        runs = "every environment" if not row.optional else "where configured"
        if row.environments != ENVIRONMENTS:
            runs += f", only in {', '.join(row.environments)}"
        if row.required_in:
            runs += f", required in {', '.join(row.required_in)}"
        cells = (
            row.name,
            row.layer,
            str(row.port or ", ".join(map(str, row.published)) or ""),
            ", ".join(sorted(row.networks)),
            runs,
            "yes" if row.singleton else "",
            ", ".join(row.queues),
        )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
