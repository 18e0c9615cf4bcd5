"""Docker configs: the non-secret files the program hands to services, named by their content.

A Docker config is immutable and cannot be removed while a service uses it, exactly like a
secret. The name therefore ends in a fingerprint of the content
(``brandclub-prod-nginx-template-3f9c1a2b7d``): a changed file is a Pulumi replacement, the new
config is created beside the old one, the services roll to it, and only then is the old one
deleted. The content is not secret, so a plain SHA-256 prefix names it (the secrets' slow,
salted derivation exists only to keep their values from being guessed).

The repository's files live in components/nginx/ and components/scripts/, as plain files, so
the live tier and anyone reading the repository see exactly what a container gets. One config
comes from the stack configuration instead: a private ACME CA's certificates
(``ingress.acmeCaCertificate``, see ``components/traefik_ingress.py``), named the same way.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_docker as docker

from components.platform.drain import DRAIN_SCRIPT, DRAIN_TARGET
from components.swarm.services import label_list

_FINGERPRINT_HEX_DIGITS = 10

ConfigRole = Literal["nginx-template", "health-checks", "drain"]


@dataclass(frozen=True)
class ServiceConfigFile:
    """A file of the repository and where a service finds it."""

    source: Path
    # The path inside the container.
    target: str

    @property
    def content(self) -> str:
        return self.source.read_text()


# The frontend's nginx site template. The image's unchanged nginx-entrypoint.sh reads this very
# path, substitutes its fixed list of variables and writes /etc/nginx/conf.d/frappe.conf; the
# config mount replaces the template frappe_docker bakes into the image.
NGINX_TEMPLATE = ServiceConfigFile(
    Path(__file__).parents[1] / "nginx" / "frappe.conf.template",
    "/templates/nginx/frappe.conf.template",
)

# The Frappe processes' health checks (components/frappe/health_checks.py): each health-checked
# service mounts the file and its Docker health check runs one function of it.
HEALTH_CHECKS = ServiceConfigFile(
    Path(__file__).parents[1] / "scripts" / "lib" / "health-checks.sh",
    "/usr/local/lib/brandclub/health-checks.sh",
)

# The routed services' stop wrapper (components/platform/drain.py): their command runs under it.
DRAIN = ServiceConfigFile(DRAIN_SCRIPT, DRAIN_TARGET)

CONFIG_FILES: dict[ConfigRole, ServiceConfigFile] = {
    "nginx-template": NGINX_TEMPLATE,
    "health-checks": HEALTH_CHECKS,
    "drain": DRAIN,
}


def content_fingerprint(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:_FINGERPRINT_HEX_DIGITS]


def fingerprinted_config(
    resource_name: str,
    base_name: str,
    content: str,
    labels: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> docker.ServiceConfig:
    """A Docker config named ``<base_name>-<fingerprint of content>``."""
    return docker.ServiceConfig(
        resource_name,
        name=f"{base_name}-{content_fingerprint(content)}",
        # The provider takes the data base64-encoded and reads it back the same way.
        data=base64.b64encode(content.encode()).decode(),
        labels=label_list(labels, docker.ServiceConfigLabelArgs),
        opts=opts,
    )
