"""Brand Club guardrails: rules every preview and deploy must pass, whatever the stack file says.

The pack reads facts the resources carry, and the program's service catalogue
(``components/platform/catalogue.py``, which depends on nothing), never the program itself: the
``brandclub.layer`` / ``brandclub.environment`` labels every layer puts on its resources, the
``brandclub.singleton`` label of a service that must run exactly once, the
``com.docker.stack.namespace`` label plus the service name (``<stack>_<process>``), and from the
catalogue the swarm-wide names, Traefik's published ports and the retired volumes.

Networks are handed to services by id, and the id of a network being created is unknown during a
preview. The network rules are therefore stack policies that use two facts: the Network
resources a service depends on (known in every preview) and, when known, the ids themselves (a
network looked up by name, like ``traefik-public`` outside the stack that owns it, is not a
resource of the stack, so only its id can show it). An unknown id is never taken as a match nor
as a violation. Values the resource policies need are never unknown for this program; if one
ever is, the SDK reports "can't run policy during preview" instead of passing or failing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from components.platform.catalogue import (
    ENVIRONMENT_LABEL,
    FRONTEND,
    LAYER_LABEL,
    MARIADB,
    RETIRED_VOLUMES,
    SHARED_SERVICES_NETWORK,
    SINGLETON_LABEL,
    STACK_NAMESPACE_LABEL,
    STANDALONE_ENVIRONMENTS,
    TRAEFIK,
    TRAEFIK_PUBLIC_NETWORK,
    TRAEFIK_STACK,
    EnvironmentNames,
)

SERVICE = "docker:index/service:Service"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
SECRET = "docker:index/secret:Secret"
PROD = "prod"
# What every environment on the swarm shares: only the stack that runs Traefik creates them.
SHARED_NETWORKS = frozenset({TRAEFIK_PUBLIC_NETWORK, SHARED_SERVICES_NETWORK})
TRAEFIK_SERVICE = EnvironmentNames.service(TRAEFIK_STACK, TRAEFIK.name)
# The only ports Traefik publishes: its web entrypoints (ping and metrics stay on traefik-public).
INGRESS_PUBLISHED_PORTS = frozenset(TRAEFIK.published)
# Names that say "secret"; *_FILE variables point at a mounted Docker secret instead.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)


def _known(read: Callable[[], Any]) -> Any:
    """The value, or None while the engine does not know it yet (a preview)."""
    try:
        return read()
    except UnknownValueError:
        return None


def _number(value: Any) -> str:
    # Numbers reach a policy as protobuf doubles: 2.0 for "2 replicas".
    return f"{value:g}" if isinstance(value, float) else str(value)


def labels(props: Mapping[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in props.get("labels") or []}


def process_name(props: Mapping[str, Any]) -> str:
    """``brandclub-prod_backend`` in stack ``brandclub-prod`` -> ``backend``."""
    namespace = labels(props).get(STACK_NAMESPACE_LABEL, "")
    name = props["name"]
    return name[len(namespace) + 1 :] if namespace and name.startswith(f"{namespace}_") else name


def _env(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props["taskSpec"]["containerSpec"].get("env") or {}


def _attachment_ids(props: Mapping[str, Any]) -> list[str | None]:
    attachments = props["taskSpec"].get("networksAdvanceds") or []
    return [_known(lambda a=attachment: a["id"]) for attachment in attachments]


# ---- resource policies ---------------------------------------------------------------------


def _data_service_no_published_port(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE or labels(args.props).get(LAYER_LABEL) != "data":
        return
    ports = (args.props.get("endpointSpec") or {}).get("ports") or []
    if ports:
        published = ", ".join(_number(p.get("publishedPort", p.get("targetPort"))) for p in ports)
        report(
            f"data service {args.props['name']} publishes port(s) {published}; data services "
            "are reached only over their environment's overlay networks"
        )


def _ingress_publishes_web_ports_only(
    args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type != SERVICE or labels(args.props).get(LAYER_LABEL) != "ingress":
        return
    ports = (args.props.get("endpointSpec") or {}).get("ports") or []
    extra = [
        _number(p.get("publishedPort", p.get("targetPort")))
        for p in ports
        if p.get("publishedPort", p.get("targetPort")) not in INGRESS_PUBLISHED_PORTS
    ]
    if extra:
        report(
            f"{args.props['name']} publishes port(s) {', '.join(extra)}; Traefik publishes only "
            "80 and 443 (its ping and metrics entrypoints are reached on traefik-public)"
        )


def _memory_limit(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE:
        return
    limits = (args.props["taskSpec"].get("resources") or {}).get("limits") or {}
    if not limits.get("memoryBytes"):
        report(f"service {args.props['name']} has no memory limit (taskSpec.resources.limits)")


def _prod_replicas(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE:
        return
    tags = labels(args.props)
    if tags.get(ENVIRONMENT_LABEL) != PROD or tags.get(LAYER_LABEL) != "app":
        return
    process = process_name(args.props)
    singleton = tags.get(SINGLETON_LABEL) == "true"
    replicas = ((args.props.get("mode") or {}).get("replicated") or {}).get("replicas")
    if singleton and replicas != 1:
        report(
            f"{args.props['name']} runs {_number(replicas)} replicas; {process} must run exactly 1"
        )
    elif not singleton and (replicas is None or replicas < 2):
        report(f"{args.props['name']} runs {_number(replicas)} replica(s); prod needs at least 2")


def _prod_data_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Docker secrets are not data: their values live in the stack config, and a rotation
    # replaces them, which protect would block.
    if args.resource_type not in (SERVICE, NETWORK, VOLUME):
        return
    tags = labels(args.props)
    holds_data = tags.get(LAYER_LABEL) == "data" or args.resource_type == VOLUME
    if args.resource_type == VOLUME and _retired(args.props, tags.get(ENVIRONMENT_LABEL)):
        return  # mounted by nothing, and unprotected on purpose so it can go (the catalogue)
    if tags.get(ENVIRONMENT_LABEL) == PROD and holds_data and not args.opts.protect:
        report(f"{args.resource_type} {args.name} holds prod data and is not protected")


def _prod_data_on_a_labelled_node(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # A role (node.role == manager) matches every manager of a swarm that has several; the
    # data volumes are on one node, which only a node label names (docs/multi-node.md).
    if args.resource_type != SERVICE:
        return
    tags = labels(args.props)
    if tags.get(ENVIRONMENT_LABEL) != PROD or tags.get(LAYER_LABEL) != "data":
        return
    constraints = (args.props["taskSpec"].get("placement") or {}).get("constraints") or []
    if not any(constraint.startswith("node.labels.") for constraint in constraints):
        report(
            f"{args.props['name']} holds prod data but no node label pins it to the data node "
            f"(constraints: {constraints}); set brandclub:placement.dataNodeLabel"
        )


def _shared_ingress_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = _known(lambda: args.props.get("name"))
    shared = (args.resource_type == NETWORK and name in SHARED_NETWORKS) or (
        args.resource_type == SERVICE and name == TRAEFIK_SERVICE
    )
    # A standalone environment's ingress (labelled with it) serves that environment alone.
    if labels(args.props).get(ENVIRONMENT_LABEL) in STANDALONE_ENVIRONMENTS:
        return
    if shared and not args.opts.protect:
        report(
            f"{args.resource_type} {name} is shared by every environment on the swarm and is "
            "not protected"
        )


def _retired(props: Mapping[str, Any], environment: str | None) -> bool:
    names = EnvironmentNames(environment or "")
    return props.get("name") in {names.volume(purpose) for purpose in RETIRED_VOLUMES}


def _no_secret_named_env(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE:
        return
    for name in _env(args.props):
        if SECRET_NAME.search(name) and not name.upper().endswith("_FILE"):
            report(
                f"service {args.props['name']} sets {name} in a plain environment variable; "
                f"mount a Docker secret and pass its path in {name}_FILE"
            )


# ---- stack policies ------------------------------------------------------------------------


def _of_type(resources: Iterable[PolicyResource], type_: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == type_]


def _network_deps(resource: PolicyResource) -> list[PolicyResource]:
    return [d for d in resource.dependencies if d.resource_type == NETWORK]


def _display_name(resource: PolicyResource) -> str:
    return _known(lambda: resource.props["name"]) or resource.name


def _data_services_private(args: StackValidationArgs, report: ReportViolation) -> None:
    networks = _of_type(args.resources, NETWORK)
    for service in _of_type(args.resources, SERVICE):
        tags = labels(service.props)
        if tags.get(LAYER_LABEL) != "data":
            continue
        environment = tags.get(ENVIRONMENT_LABEL)
        own = [
            n
            for n in networks
            if labels(n.props).get(LAYER_LABEL) == "data"
            and labels(n.props).get(ENVIRONMENT_LABEL) == environment
        ]
        for network in _network_deps(service):
            if network not in own:
                report(
                    f"data service {service.props['name']} joins network "
                    f"{_display_name(network)}, which is not one of its environment's data "
                    "networks",
                    service.urn,
                )
        own_ids = {_known(lambda n=n: n.props.get("id")) for n in own}
        if None in own_ids:
            continue  # a data network still being created: its id cannot be compared yet
        for network_id in _attachment_ids(service.props):
            if network_id is not None and network_id not in own_ids:
                report(
                    f"data service {service.props['name']} joins network id {network_id}, "
                    "which is not one of its environment's data networks (a looked-up network "
                    "such as traefik-public?)",
                    service.urn,
                )


def _frontend_off_database_network(args: StackValidationArgs, report: ReportViolation) -> None:
    services = _of_type(args.resources, SERVICE)
    for mariadb in (s for s in services if process_name(s.props) == MARIADB.name):
        environment = labels(mariadb.props).get(ENVIRONMENT_LABEL)
        database_networks = _network_deps(mariadb)
        database_ids = {i for i in _attachment_ids(mariadb.props) if i is not None}
        for frontend in services:
            tags = labels(frontend.props)
            if (
                process_name(frontend.props) != FRONTEND.name
                or tags.get(ENVIRONMENT_LABEL) != environment
            ):
                continue
            shared = [n for n in _network_deps(frontend) if n in database_networks]
            shared_ids = database_ids & {i for i in _attachment_ids(frontend.props) if i}
            names = [_display_name(n) for n in shared] or sorted(shared_ids)
            if names:
                report(
                    f"{frontend.props['name']} joins the MariaDB network ({', '.join(names)}); "
                    "the frontend must never reach the database",
                    frontend.urn,
                )


def _secret_contents(secret: PolicyResource) -> set[str]:
    data = _known(lambda: secret.props.get("data"))
    if not isinstance(data, str) or not data:
        return set()
    contents = {data}
    # The provider takes the secret base64-encoded; compare the text a service would see too.
    with contextlib.suppress(binascii.Error, UnicodeDecodeError):
        contents.add(base64.b64decode(data, validate=True).decode())
    return contents


def _no_docker_secret_value_in_env(args: StackValidationArgs, report: ReportViolation) -> None:
    # A value may be in several secrets (the root password: MariaDB's and the jobs'); each is
    # named, sorted, whatever order the resources were registered in.
    secrets: dict[str, set[str]] = {}
    for secret in _of_type(args.resources, SECRET):
        for value in _secret_contents(secret):
            secrets.setdefault(value, set()).add(_display_name(secret))
    for service in _of_type(args.resources, SERVICE):
        for name, value in _env(service.props).items():
            leaked = sorted(secrets.get(_known(lambda v=value: v), ()))
            if leaked:
                noun = "Docker secret" if len(leaked) == 1 else "Docker secrets"
                report(
                    f"service {service.props['name']} puts the value of {noun} "
                    f"{' and '.join(leaked)} in plain environment variable {name}",
                    service.urn,
                )


POLICIES: tuple[ResourceValidationPolicy | StackValidationPolicy, ...] = (
    ResourceValidationPolicy(
        name="data-service-no-published-port",
        description="MariaDB and Redis publish no port.",
        validate=_data_service_no_published_port,
    ),
    StackValidationPolicy(
        name="data-service-private-networks",
        description="Data services join only their environment's data networks, never "
        "traefik-public.",
        validate=_data_services_private,
    ),
    StackValidationPolicy(
        name="frontend-off-database-network",
        description="The frontend never joins the network MariaDB is on.",
        validate=_frontend_off_database_network,
    ),
    ResourceValidationPolicy(
        name="ingress-publishes-web-ports-only",
        description="Traefik publishes 80 and 443 only; metrics and ping are never published.",
        validate=_ingress_publishes_web_ports_only,
    ),
    ResourceValidationPolicy(
        name="service-memory-limit",
        description="Every service has a memory limit.",
        validate=_memory_limit,
    ),
    ResourceValidationPolicy(
        name="prod-replicas",
        description="In prod, stateless app services run at least 2 replicas and singletons "
        "(the scheduler, the backup loop) exactly 1.",
        validate=_prod_replicas,
    ),
    ResourceValidationPolicy(
        name="prod-data-protected",
        description="Prod data-layer resources and volumes are protected.",
        validate=_prod_data_protected,
    ),
    ResourceValidationPolicy(
        name="prod-data-on-labelled-node",
        description="Prod's data services are pinned to the data node by a node label.",
        validate=_prod_data_on_a_labelled_node,
    ),
    ResourceValidationPolicy(
        name="shared-ingress-protected",
        description="traefik-public, shared-services and the Traefik service are protected "
        "(except on a standalone environment's own swarm: local).",
        validate=_shared_ingress_protected,
    ),
    ResourceValidationPolicy(
        name="no-secret-named-env",
        description="No password, token or key in a plain environment variable.",
        validate=_no_secret_named_env,
    ),
    StackValidationPolicy(
        name="no-docker-secret-value-in-env",
        description="No Docker secret's value in a plain environment variable.",
        validate=_no_docker_secret_value_in_env,
    ),
)
