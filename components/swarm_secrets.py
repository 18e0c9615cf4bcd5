"""Docker secrets whose names change with their value, so a rotation never clashes.

A Docker secret is immutable and cannot be removed while a service uses it. Giving every value
its own name (``brandclub-db-prod-mariadb-root-password-3f9c1a2b7d``) makes a rotation a
Pulumi replacement: the new secret is created beside the old one, the services that mount it
roll to the new name, and only then is the old secret deleted.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import pulumi
import pulumi_docker as docker

from components.swarm import label_list

# The fingerprint is part of a name that previews, logs and `docker secret ls` show. A slow,
# salted derivation truncated to 40 bits lets it tell values apart without letting anyone
# who reads the name test password guesses at speed.
_FINGERPRINT_ROUNDS = 200_000
_FINGERPRINT_HEX_DIGITS = 10


@functools.lru_cache(maxsize=64)
def secret_fingerprint(purpose: str, value: str) -> str:
    derived = hashlib.pbkdf2_hmac(
        "sha256", value.encode(), f"brandclub-swarm-secret:{purpose}".encode(), _FINGERPRINT_ROUNDS
    )
    return derived.hex()[:_FINGERPRINT_HEX_DIGITS]


def rotating_secret(
    resource_name: str,
    base_name: str,
    value: str,
    labels: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> docker.Secret:
    """A Docker secret named ``<base_name>-<fingerprint of value>``, its data kept secret."""
    return docker.Secret(
        resource_name,
        name=f"{base_name}-{secret_fingerprint(base_name, value)}",
        # The provider expects the data base64-encoded.
        data=pulumi.Output.secret(base64.b64encode(value.encode()).decode()),
        labels=label_list(labels, docker.SecretLabelArgs),
        opts=opts,
    )
