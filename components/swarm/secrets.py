"""Docker secrets whose names change with their value, so a rotation never clashes.

A Docker secret is immutable and cannot be removed while a service uses it. Giving every value
its own name (``brandclub-db-prod-mariadb-root-password-3f9c1a2b7d``) makes a rotation a
Pulumi replacement: the new secret is created beside the old one, the services that mount it
roll to the new name, and only then is the old secret deleted.

The name ends in a keyed fingerprint (HMAC-SHA256 under the stack secret
``brandclub:secretNameKey``): names show up in previews, exports and ``docker secret ls``, and an
unkeyed digest of a password, however slow, lets anyone who reads a name test guesses offline.
Without the key a name says nothing about the value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pulumi
import pulumi_docker as docker

from components.swarm.services import label_list

# 40 bits tell a stack's few secrets apart; the key, not the length, keeps values private.
_FINGERPRINT_HEX_DIGITS = 10


def secret_fingerprint(key: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 under ``key`` of the purpose and the value, as 10 hex digits.

    The NUL between purpose and value keeps ("a-b", "c") and ("a-", "bc") apart.
    """
    message = f"{purpose}\0{value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:_FINGERPRINT_HEX_DIGITS]


def rotating_secret(
    resource_name: str,
    base_name: str,
    value: str,
    labels: dict[str, str],
    opts: pulumi.ResourceOptions,
    *,
    name_key: str,
) -> docker.Secret:
    """A Docker secret named ``<base_name>-<fingerprint of value under name_key>``, its data
    kept secret."""
    name = f"{base_name}-{secret_fingerprint(name_key, base_name, value)}"
    return named_secret(resource_name, name, value, labels, opts)


def named_secret(
    resource_name: str,
    name: str,
    value: str,
    labels: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> docker.Secret:
    """A Docker secret of exactly this name, its data kept secret. For a secret whose value no
    deploy changes (the caller pins it); every other one is a ``rotating_secret``."""
    return docker.Secret(
        resource_name,
        name=name,
        # The provider expects the data base64-encoded.
        data=pulumi.Output.secret(base64.b64encode(value.encode()).decode()),
        labels=label_list(labels, docker.SecretLabelArgs),
        opts=opts,
    )
