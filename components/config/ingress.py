"""The ``ingress`` section: Traefik's settings, and this environment's routing choices.

Traefik's static configuration (the ACME directory, its CA, the access-log format, the metrics
port) is read only from the stack that runs Traefik (``ingress.manage``); the other stacks may not
set it, so two stacks never disagree about the one Traefik of the swarm.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    field_validator,
)

from components.config.certificates import pem_certificates
from components.config.formats import (
    LETS_ENCRYPT,
    acme_directory_url,
    is_lets_encrypt,
    logged_header,
)
from components.config.types import Email, HeaderText, Model, Violation, matching
from components.platform.catalogue import PING_PORT

HSTS_MAX_AGE_MAX = 63072000


class HstsSettings(Model):
    enabled: bool = False
    # At most two years, the longest the HSTS preload list asks for; a longer one only makes
    # a mistake outlive every fix.
    max_age: int = Field(default=HSTS_MAX_AGE_MAX, ge=0, le=HSTS_MAX_AGE_MAX)
    include_subdomains: bool = True
    preload: bool = False


class AccessLogSettings(Model):
    # This environment's requests in Traefik's access log (its routers' observability); in the
    # stack that runs Traefik, also whether Traefik writes an access log at all.
    enabled: bool = True
    format: Literal["json", "common"] = "json"
    # Request headers written with each line; every other header is dropped.
    headers: list[Annotated[str, AfterValidator(logged_header)]] = Field(
        default_factory=lambda: ["User-Agent"], max_length=32
    )


class MetricsSettings(Model):
    # This environment's routers in Traefik's Prometheus metrics; in the stack that runs
    # Traefik, also whether Traefik serves /metrics at all.
    enabled: bool = True
    # Traefik's own entrypoint for /metrics: reachable on traefik-public, published nowhere.
    port: int = Field(default=8082, ge=1024, le=65535)

    @field_validator("port")
    @classmethod
    def _free_port(cls, port: int) -> int:
        if port == PING_PORT:
            raise ValueError(f"a port other than {PING_PORT}, where Traefik answers /ping")
        return port


# Traefik's static configuration: read only from the stack that runs it (ingress.manage).
TRAEFIK_ONLY_KEYS = (
    "certificates",
    "acmeCaServer",
    "acmeCaCertificate",
    "accessLog.format",
    "accessLog.headers",
    "metrics.port",
)
# The ACME resolver's settings: meaningless where ingress.certificates is default.
ACME_KEYS = ("acmeEmail", "acmeCaServer", "acmeCaCertificate")


class IngressSettings(Model):
    # True in exactly one stack per swarm: that stack runs Traefik and creates traefik-public
    # and shared-services; the others look the two networks up by name.
    manage: bool = False
    # Where Traefik's certificates come from: "acme", its ACME resolver; "default", Traefik's
    # own self-signed default certificate and no resolver at all, for a machine no CA can
    # reach (local; docs/traefik.md#where-the-certificates-come-from).
    certificates: Literal["acme", "default"] = "acme"
    acme_email: Email | None = None
    # The ACME directory Traefik's resolver orders certificates from
    # (docs/traefik.md#where-the-certificates-come-from).
    acme_ca_server: Annotated[str, AfterValidator(acme_directory_url)] = LETS_ENCRYPT
    # A private ACME CA's root (PEM): the only roots the resolver then trusts for that server.
    acme_ca_certificate: Annotated[str, AfterValidator(pem_certificates)] | None = None
    constraint_label: Annotated[
        str,
        matching(r"[a-z0-9][a-z0-9-]{0,62}", "lower-case letters, digits and dashes (at most 63)"),
    ] = "traefik-public"
    websocket_direct: bool = False
    hsts: HstsSettings = Field(default_factory=HstsSettings)
    noindex: bool = False
    content_security_policy: HeaderText | None = None
    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = "INFO"
    access_log: AccessLogSettings = Field(default_factory=AccessLogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if self.certificates == "default":
            broken += [
                Violation(
                    key,
                    _value(self, key),
                    "unset where ingress.certificates is default: Traefik then runs no ACME "
                    "resolver",
                )
                for key in ACME_KEYS
                if _is_set(self, key)
            ]
        elif self.manage and self.acme_email is None:
            broken.append(
                Violation(
                    "acmeEmail",
                    None,
                    "the Let's Encrypt account e-mail, required where ingress.manage is true "
                    "and ingress.certificates is acme",
                )
            )
        if not self.manage:
            broken += [
                Violation(
                    key,
                    _value(self, key),
                    "unset where ingress.manage is false: it is Traefik's static configuration, "
                    "read only from the stack that runs Traefik; set it there",
                )
                for key in TRAEFIK_ONLY_KEYS
                if _is_set(self, key)
            ]
        if self.acme_ca_certificate is not None and is_lets_encrypt(self.acme_ca_server):
            broken.append(
                Violation(
                    "acmeCaCertificate",
                    self.acme_ca_certificate,
                    f"unset while acmeCaServer is Let's Encrypt ({self.acme_ca_server}): the "
                    "certificate replaces the system roots Traefik trusts Let's Encrypt with; "
                    "it is for a private CA's acmeCaServer",
                )
            )
        return broken


def _is_set(model: BaseModel, dotted_key: str) -> bool:
    """Whether the stack file states ``dotted_key`` (camelCase) below ``model``."""
    *parents, key = dotted_key.split(".")
    for parent in parents:
        model = getattr(model, _snake(parent))
    return _snake(key) in model.model_fields_set


def _value(model: BaseModel, dotted_key: str) -> object:
    for key in dotted_key.split("."):
        model = getattr(model, _snake(key))
    return model


def _snake(key: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), key)
