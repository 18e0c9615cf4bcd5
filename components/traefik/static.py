"""Traefik's static configuration: every argument and environment variable the one Traefik of the
swarm starts with is built here, and nowhere else.

Entrypoints:

- ``web`` (:80) and ``websecure`` (:443): the only ports published, in host mode so the client's
  address reaches the access log and nginx. ``web`` answers everything with a permanent redirect
  to HTTPS; ``websecure`` is the default entrypoint of any router that names none.
- ``traefik`` (:8080): ``/ping`` for the health check (``traefik healthcheck --ping`` in the
  container reads Traefik's defaults, which are these).
- ``metrics`` (``ingress.metrics.port``, 8082): ``/metrics`` in Prometheus' format, reachable on
  ``traefik-public`` only.

The ACME resolver orders from ``ingress.acmeCaServer``; with ``ingress.certificates: default``
there is no resolver, and Traefik serves every router's TLS with its own self-signed default
certificate (local). A private CA's certificate
(``ingress.acmeCaCertificate``) reaches Traefik as a Docker config file, named by
``LEGO_CA_CERTIFICATES``: Traefik's ACME client (``pkg/provider/acme/provider.go``, 3.x) builds
its pool of trusted roots from the files listed there (separated by ``:``) when the resolver sets
no ``caCertificates`` of its own, and then trusts those roots only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.config.ingress import IngressSettings
from components.platform.catalogue import (
    CONSTRAINT_LABEL,
    HTTP_PORT,
    HTTPS_PORT,
    PING_PORT,
    TRAEFIK_PUBLIC_NETWORK,
)
from components.platform.drain import TRAEFIK_SWARM_REFRESH_SECONDS
from components.swarm.services import HostPort

HTTP_ENTRYPOINT = "web"
HTTPS_ENTRYPOINT = "websecure"
PING_ENTRYPOINT = "traefik"
METRICS_ENTRYPOINT = "metrics"
CERT_RESOLVER = "letsencrypt"
CERTIFICATES_PATH = "/certificates"
ACME_CA_CERTIFICATES_PATH = "/etc/traefik/acme-ca-certificates.pem"
LEGO_CA_CERTIFICATES = "LEGO_CA_CERTIFICATES"
# Published on the node: the web entrypoints, nothing else.
PUBLISHED_PORTS = (HostPort(HTTP_PORT, HTTP_ENTRYPOINT), HostPort(HTTPS_PORT, HTTPS_ENTRYPOINT))


@dataclass(frozen=True)
class StaticConfiguration:
    arguments: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)


def static_configuration(settings: IngressSettings, read_timeout: int = 120) -> StaticConfiguration:
    """What Traefik starts with, from the ingress settings of the stack that runs it.

    ``read_timeout``: seconds Traefik may spend reading one request, body included (a slow
    upload); Traefik v3's own default is 60 s.
    """
    arguments = [
        *_providers(settings),
        *_entrypoints(read_timeout),
        *_resolver(settings),
        "--ping=true",
        f"--ping.entryPoint={PING_ENTRYPOINT}",
        *_access_log(settings),
        *_metrics(settings),
        f"--log.level={settings.log_level}",
        # No calls home: Traefik's version check (on by default) and usage statistics.
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
    ]
    environment = {}
    if settings.acme_ca_certificate is not None:
        environment[LEGO_CA_CERTIFICATES] = ACME_CA_CERTIFICATES_PATH
    return StaticConfiguration(tuple(arguments), environment)


def _providers(settings: IngressSettings) -> list[str]:
    constraint = f"Label(`{CONSTRAINT_LABEL}`,`{settings.constraint_label}`)"
    return [
        "--providers.swarm=true",
        "--providers.swarm.endpoint=unix:///var/run/docker.sock",
        "--providers.swarm.exposedByDefault=false",
        f"--providers.swarm.network={TRAEFIK_PUBLIC_NETWORK}",
        f"--providers.swarm.constraints={constraint}",
        # Traefik polls the swarm for tasks (Swarm has no events for them): how long it may
        # still route to a task Swarm has removed, which the routed services' drain outlasts
        # (components/platform/drain.py). Traefik's default is 15 s.
        f"--providers.swarm.refreshSeconds={TRAEFIK_SWARM_REFRESH_SECONDS}s",
    ]


def _entrypoints(read_timeout: int) -> list[str]:
    web, websecure = f"--entrypoints.{HTTP_ENTRYPOINT}", f"--entrypoints.{HTTPS_ENTRYPOINT}"
    return [
        f"{web}.address=:{HTTP_PORT}",
        f"{web}.http.redirections.entrypoint.to={HTTPS_ENTRYPOINT}",
        f"{web}.http.redirections.entrypoint.scheme=https",
        f"{web}.http.redirections.entrypoint.permanent=true",
        f"{websecure}.address=:{HTTPS_PORT}",
        # A router that names no entrypoint is served here only, never on ping's or metrics'.
        f"{websecure}.asDefault=true",
        f"{websecure}.transport.respondingTimeouts.readTimeout={read_timeout}s",
        f"--entrypoints.{PING_ENTRYPOINT}.address=:{PING_PORT}",
    ]


def _resolver(settings: IngressSettings) -> list[str]:
    if settings.certificates != "acme":
        return []
    acme = f"--certificatesresolvers.{CERT_RESOLVER}.acme"
    return [
        f"{acme}.caServer={settings.acme_ca_server}",
        f"{acme}.email={settings.acme_email}",
        f"{acme}.storage={CERTIFICATES_PATH}/acme.json",
        f"{acme}.tlsChallenge=true",
    ]


def _access_log(settings: IngressSettings) -> list[str]:
    access_log = settings.access_log
    if not access_log.enabled:
        return []
    # Every field (client address, host, method, path, status, durations, router, service and
    # the task that answered, TLS version); of the request headers only those listed, so
    # Cookie and Authorization never reach the log.
    return [
        "--accesslog=true",
        f"--accesslog.format={access_log.format}",
        "--accesslog.fields.defaultMode=keep",
        "--accesslog.fields.headers.defaultMode=drop",
        *(f"--accesslog.fields.headers.names.{name}=keep" for name in access_log.headers),
    ]


def _metrics(settings: IngressSettings) -> list[str]:
    metrics = settings.metrics
    if not metrics.enabled:
        return []
    return [
        f"--entrypoints.{METRICS_ENTRYPOINT}.address=:{metrics.port}",
        "--metrics.prometheus=true",
        f"--metrics.prometheus.entryPoint={METRICS_ENTRYPOINT}",
        "--metrics.prometheus.addEntryPointsLabels=true",
        "--metrics.prometheus.addServicesLabels=true",
    ]
