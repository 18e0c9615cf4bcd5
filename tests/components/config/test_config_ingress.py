"""Stack configuration: Traefik's ACME CA and observability settings (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest

from harness import (
    PRIVATE_CA,
    assert_reported_before_registering,
    bad_input,
    render,
)

MiB = 1024**2
GiB = 1024**3

_ROOT = PRIVATE_CA.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
_PEBBLE = "https://10.0.0.1:14000/dir"
_ACME_URL = "the https:// URL of an ACME directory"
_PEM_ONLY = "nothing but PEM certificates"
_DER = "to be a DER X.509 certificate in base64"
_MANAGE_ONLY = "unset where ingress.manage is false"


def _ingress(stack: str, settings: dict[str, Any], key: str, expected: str, found: str, id: str):
    return bad_input(stack, {"brandclub:ingress": settings}, f"brandclub:ingress.{key}", expected,
                found, id)  # fmt: skip


def _ca(pem: str, expected: str, id: str, found: str = "") -> Any:
    settings = {"acmeCaServer": _PEBBLE, "acmeCaCertificate": pem}
    return _ingress("prod", settings, "acmeCaCertificate", expected, found, id)


INGRESS_BAD_INPUTS = [
    _ingress(
        "prod",
        {"acmeCaServer": "http://10.0.0.1:14000/dir"},
        "acmeCaServer",
        _ACME_URL,
        "'http://10.0.0.1",
        "acme-ca-server-plain-http",
    ),
    _ingress(
        "prod",
        {"acmeCaServer": "https://ca.internal/dir,--api.insecure=true"},
        "acmeCaServer",
        _ACME_URL,
        "--api.insecure",
        "acme-ca-server-smuggles-a-flag",
    ),
    _ingress(
        "prod",
        {"acmeCaServer": "https://ca.internal/dir --api.insecure"},
        "acmeCaServer",
        _ACME_URL,
        "'https://ca.internal",
        "acme-ca-server-space",
    ),
    _ingress(
        "prod",
        {"acmeCaServer": "https://ca.internal/dir\n--api.insecure"},
        "acmeCaServer",
        _ACME_URL,
        "ca.internal",
        "acme-ca-server-newline",
    ),
    _ingress(
        "prod",
        {"acmeCaServer": "https://ca.internal/dir?token=x"},
        "acmeCaServer",
        _ACME_URL,
        "?token",
        "acme-ca-server-query",
    ),
    _ingress(
        "prod",
        {"acmeCaServer": "https://ca.internal:70000/dir"},
        "acmeCaServer",
        _ACME_URL,
        "70000",
        "acme-ca-server-port-out-of-range",
    ),
    _ingress(
        "prod",
        {"acmeCaServer": "https://$(reboot)/dir"},
        "acmeCaServer",
        _ACME_URL,
        "$(reboot)",
        "acme-ca-server-shell",
    ),
    _ingress("prod", {"acmeCaServer": ""}, "acmeCaServer", _ACME_URL, "''", "acme-ca-server-empty"),
    _ca("not a certificate", _PEM_ONLY, "acme-ca-certificate-plain-text", "'not a certificate'"),
    _ca("", "one or more PEM certificates", "acme-ca-certificate-empty", "''"),
    _ca(
        _ROOT + "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
        "a CA's key never leaves the CA",
        "acme-ca-certificate-with-a-private-key",
    ),
    _ca(
        _ROOT.replace("MII", "MI!", 1),
        "inside each certificate block",
        "acme-ca-certificate-bad-base64-character",
    ),
    _ca(
        _ROOT.replace("\n", "", 2).replace("-----BEGIN CERTIFICATE-----", "", 1),
        _PEM_ONLY,
        "acme-ca-certificate-no-begin-line",
    ),
    _ca(
        _ROOT.rsplit("-----END", 1)[0],
        "end with -----END CERTIFICATE-----",
        "acme-ca-certificate-truncated",
    ),
    _ca(
        "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n",
        _DER,
        "acme-ca-certificate-base64-of-text",
    ),
    _ca(
        "-----BEGIN CERTIFICATE-----\nQUJ\n-----END CERTIFICATE-----\n",
        _DER,
        "acme-ca-certificate-base64-unpadded",
    ),
    _ca(PRIVATE_CA + "# made by openssl\n", _PEM_ONLY, "acme-ca-certificate-trailing-text"),
    _ingress(
        "prod",
        {"acmeCaCertificate": PRIVATE_CA},
        "acmeCaCertificate",
        "replaces the system roots Traefik trusts Let's Encrypt with",
        "-----BEGIN",
        "acme-ca-certificate-with-lets-encrypt",
    ),
    _ingress(
        "prod",
        {"accessLog": {"format": "xml"}},
        "accessLog.format",
        "'json' or 'common'",
        "'xml'",
        "access-log-format",
    ),
    _ingress(
        "prod",
        {"accessLog": {"headers": ["User-Agent", "Cookie"]}},
        "accessLog.headers[1]",
        "never reach a log",
        "'Cookie'",
        "access-log-header-cookie",
    ),
    _ingress(
        "prod",
        {"accessLog": {"headers": ["authorization"]}},
        "accessLog.headers[0]",
        "never reach a log",
        "'authorization'",
        "access-log-header-authorization",
    ),
    _ingress(
        "prod",
        {"accessLog": {"headers": ["X-Frappe-CSRF-Token"]}},
        "accessLog.headers[0]",
        "never reach a log",
        "'X-Frappe-CSRF-Token'",
        "access-log-header-csrf-token",
    ),
    _ingress(
        "prod",
        {"accessLog": {"headers": ["User.Agent=keep"]}},
        "accessLog.headers[0]",
        "a header name such as User-Agent",
        "'User.Agent=keep'",
        "access-log-header-dot",
    ),
    _ingress(
        "prod",
        {"accessLog": {"enabled": "yes"}},
        "accessLog.enabled",
        "a valid boolean",
        "'yes'",
        "access-log-enabled-yes",
    ),
    _ingress(
        "prod",
        {"metrics": {"port": 8080}},
        "metrics.port",
        "where Traefik answers /ping",
        "8080",
        "metrics-port-of-ping",
    ),
    _ingress(
        "prod",
        {"metrics": {"port": 443}},
        "metrics.port",
        "greater than or equal to 1024",
        "443",
        "metrics-port-privileged",
    ),
    _ingress(
        "prod",
        {"metrics": {"port": "8082"}},
        "metrics.port",
        "a valid integer",
        "'8082'",
        "metrics-port-text",
    ),
    _ingress(
        "prod",
        {"metrics": {"prot": 9100}},
        "metrics.prot",
        "did you mean 'port'?",
        "9100",
        "metrics-key-typo",
    ),
    _ingress(
        "dev",
        {"acmeCaServer": _PEBBLE},
        "acmeCaServer",
        _MANAGE_ONLY,
        "'https://10.0.0.1",
        "acme-ca-server-where-traefik-is-not-run",
    ),
    _ingress(
        "staging",
        {"acmeCaServer": _PEBBLE, "acmeCaCertificate": PRIVATE_CA},
        "acmeCaCertificate",
        _MANAGE_ONLY,
        "-----BEGIN",
        "acme-ca-certificate-where-traefik-is-not-run",
    ),
    _ingress(
        "dev",
        {"accessLog": {"format": "common"}},
        "accessLog.format",
        _MANAGE_ONLY,
        "'common'",
        "access-log-format-where-traefik-is-not-run",
    ),
    _ingress(
        "dev",
        {"accessLog": {"headers": ["Referer"]}},
        "accessLog.headers",
        _MANAGE_ONLY,
        "Referer",
        "access-log-headers-where-traefik-is-not-run",
    ),
    _ingress(
        "staging",
        {"metrics": {"port": 9100}},
        "metrics.port",
        _MANAGE_ONLY,
        "9100",
        "metrics-port-where-traefik-is-not-run",
    ),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "expected", "found"), INGRESS_BAD_INPUTS)
def test_ingress_bad_input_is_reported_before_anything_is_registered(
    stack: str, overrides: dict[str, Any], key: str, expected: str, found: str
) -> None:
    assert_reported_before_registering(stack, overrides, key, expected, found)


@pytest.mark.parametrize(
    "ingress",
    [
        {"acmeCaServer": "https://acme-staging-v02.api.letsencrypt.org/directory"},
        {"acmeCaServer": "https://ca.internal.example:9000/acme/acme/directory"},
        {"acmeCaServer": "https://pebble:14000/dir", "acmeCaCertificate": _ROOT},
        {"acmeCaServer": "https://[fd00::1]:14000/dir", "acmeCaCertificate": PRIVATE_CA},
        {"acmeCaServer": _PEBBLE, "acmeCaCertificate": PRIVATE_CA.replace("\n", "\r\n")},
        {"accessLog": {"format": "common", "headers": []}, "metrics": {"port": 65535}},
        {"accessLog": {"headers": ["User-Agent", "Referer", "X-Request-Id"]}},
    ],
    ids=["le-staging", "step-ca", "pebble-by-name", "ipv6", "crlf", "common-no-headers", "more"],
)
def test_good_ingress_values_are_accepted(ingress: dict[str, Any]) -> None:
    render("prod", {"brandclub:ingress": ingress})


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_each_environment_chooses_its_own_observability(stack: str) -> None:
    """accessLog.enabled and metrics.enabled are this environment's routers' choice, allowed in
    every stack; Traefik's own settings only where it runs."""
    render(
        stack,
        {"brandclub:ingress": {"accessLog": {"enabled": False}, "metrics": {"enabled": False}}},
    )
