"""Stack configuration: the three stack files load, and every bad input stops the program.

A bad ``Pulumi.<stack>.yaml`` must fail before a single resource is registered, with one
:class:`ConfigError` naming each bad key as the operator writes it, the value found and what is
expected. Secrets must be encrypted stack secrets and their values are never echoed.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.config_loader import ConfigError, Problem
from components.units import canonical_duration, format_size, parse_duration, parse_size
from harness import (
    DELETE,
    PRIVATE_CA,
    S3_OFFSITE,
    STACKS,
    TEST_SECRETS,
    render,
    render_error,
    stack_file_config,
)

MiB = 1024**2
GiB = 1024**3

_MAILPIT = {
    "replicas": 1,
    "limits": {"cpus": 0.25, "memory": "128M"},
    "reservations": {"cpus": 0.05, "memory": "32M"},
}


def _problem_at(error: Exception, key: str) -> Problem:
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {error}"
    matches = [problem for problem in error.problems if problem.key == key]
    assert matches, f"no problem for {key}; problems: {error.problems}"
    assert len(matches) == 1, matches
    return matches[0]


# --- 1. The stack files as committed -------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_loads(stack: str) -> None:
    rendering = render(stack)
    assert rendering.resources, f"{stack} registered nothing"


# --- 2. Bad inputs --------------------------------------------------------------------------

# (stack, overrides, key path, fragment of the expected text, fragment of the found value)
BAD_INPUTS = [
    pytest.param(
        "dev",
        {"brandclub:imageTagg": "develop"},
        "brandclub:imageTagg",
        "did you mean 'imageTag'?",
        "'develop'",
        id="unknown-top-level-key-typo",
    ),
    pytest.param(
        "dev",
        {"brandclub:mariadb": {"bufferPoolSzie": "1G"}},
        "brandclub:mariadb.bufferPoolSzie",
        "did you mean 'bufferPoolSize'?",
        "'1G'",
        id="unknown-nested-key-typo",
    ),
    pytest.param(
        "prod",
        {"brandclub:environment": "prd"},
        "brandclub:environment",
        "'dev', 'staging' or 'prod'",
        "'prd'",
        id="environment-typo-prd",
    ),
    pytest.param(
        "prod",
        {"brandclub:environment": "dev"},
        "brandclub:environment",
        "stack 'prod' must deploy the prod environment",
        "'dev'",
        id="environment-not-matching-stack",
    ),
    pytest.param(
        "dev",
        {"brandclub:services": {"backend": {"replicas": 0}}},
        "brandclub:services.backend.replicas",
        "greater than or equal to 1",
        "0",
        id="replicas-zero",
    ),
    pytest.param(
        "dev",
        {"brandclub:services": {"scheduler": {"replicas": 2}}},
        "brandclub:services.scheduler.replicas",
        "exactly 1",
        "2",
        id="scheduler-two-replicas",
    ),
    pytest.param(
        "prod",
        {"brandclub:services": {"backup": {"replicas": 2}}},
        "brandclub:services.backup.replicas",
        "exactly 1",
        "2",
        id="backup-two-replicas",
    ),
    pytest.param(
        "dev",
        {"brandclub:services": {"backend": {"limits": {"memory": "2 GB"}}}},
        "brandclub:services.backend.limits.memory",
        "a size such as 512M",
        "'2 GB'",
        id="memory-with-space-2-GB",
    ),
    pytest.param(
        "dev",
        {"brandclub:mariadb": {"bufferPoolSize": "2G"}},
        "brandclub:mariadb.bufferPoolSize",
        "less than limits.memory (1G)",
        "2G",
        id="buffer-pool-above-memory-limit",
    ),
    pytest.param(
        "dev",
        {"brandclub:redisCache": {"maxmemory": "384M"}},
        "brandclub:redisCache.maxmemory",
        "less than limits.memory (384M)",
        "384M",
        id="redis-maxmemory-equal-to-limit",
    ),
    pytest.param(
        "staging",
        {"brandclub:redisQueue": {"maxmemory": "1G"}},
        "brandclub:redisQueue.maxmemory",
        "less than limits.memory (512M)",
        "1G",
        id="redis-maxmemory-above-limit",
    ),
    pytest.param(
        "dev",
        {"brandclub:services": {"backend": {"reservations": {"memory": "2G"}}}},
        "brandclub:services.backend.reservations.memory",
        "at most limits.memory (1G)",
        "2G",
        id="memory-reservation-above-limit",
    ),
    pytest.param(
        "dev",
        {"brandclub:services": {"backend": {"reservations": {"cpus": 4.0}}}},
        "brandclub:services.backend.reservations.cpus",
        "at most limits.cpus (1.0)",
        "4.0",
        id="cpu-reservation-above-limit",
    ),
    pytest.param(
        "dev",
        {"brandclub:domains": DELETE},
        "brandclub:domains",
        "this key is required",
        "nothing",
        id="domains-missing",
    ),
    pytest.param(
        "dev",
        {"brandclub:domains": []},
        "brandclub:domains",
        "at least 1 entry",
        "[]",
        id="domains-empty",
    ),
    pytest.param(
        "dev",
        {"brandclub:domains": ["Bad_Domain"]},
        "brandclub:domains[0]",
        "a lower-case DNS name",
        "'Bad_Domain'",
        id="domain-invalid",
    ),
    pytest.param(
        "dev",
        {"brandclub:domains": ["dev.brandclub.com", "dev.brandclub.com"]},
        "brandclub:domains",
        "each domain once",
        "dev.brandclub.com",
        id="domain-duplicated",
    ),
    pytest.param(
        "prod",
        {"brandclub:services": {"mailpit": _MAILPIT}},
        "brandclub:services.mailpit",
        "no mailpit outside dev",
        "enabled",
        id="mailpit-in-prod",
    ),
    pytest.param(
        "staging",
        {"brandclub:services": {"mailpit": _MAILPIT}},
        "brandclub:services.mailpit",
        "no mailpit outside dev",
        "enabled",
        id="mailpit-in-staging",
    ),
    pytest.param(
        "prod",
        {"brandclub:services": {"backup": None}},
        "brandclub:services.backup",
        "a backup service in prod",
        "null",
        id="backup-null-in-prod",
    ),
    pytest.param(
        "dev",
        {"brandclub:services": {"websocket": {"replicas": 2}}},
        "brandclub:ingress.websocketDirect",
        "true when services.websocket.replicas > 1",
        "false",
        id="websocket-replicas-without-websocketDirect",
    ),
    pytest.param(
        "dev",
        {"brandclub:ingress": {"manage": True}},
        "brandclub:ingress.acmeEmail",
        "required where ingress.manage is true",
        "null",
        id="ingress-manage-without-acmeEmail",
    ),
    pytest.param(
        "dev",
        {"brandclub:mariadb": {"version": "10.5"}},
        "brandclub:mariadb.version",
        "one of '10.6', '10.11', '11.4', '11.8'",
        "'10.5'",
        id="mariadb-version-unsupported",
    ),
    pytest.param(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:11.4.5"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:11.4.5",
        id="mariadb-image-other-series",
    ),
    pytest.param(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:11.4-noble"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:11.4-noble",
        id="mariadb-image-other-series-with-os-suffix",
    ),
    pytest.param(
        "dev",
        {"brandclub:healthcheck": {"interval": "30 seconds"}},
        "brandclub:healthcheck.interval",
        "a duration such as 30s",
        "'30 seconds'",
        id="duration-invalid",
    ),
    pytest.param(
        "dev",
        {"brandclub:imageTag": "feature/x"},
        "brandclub:imageTag",
        "a Docker image tag",
        "'feature/x'",
        id="image-tag-invalid",
    ),
    pytest.param(
        "dev",
        {"brandclub:services": {"backend": {"replicas": "2"}}},
        "brandclub:services.backend.replicas",
        "a valid integer",
        "'2'",
        id="replicas-as-string-strict",
    ),
    pytest.param(
        "dev",
        {"brandclub:mariadb": {"buffer_pool_size": "512M"}},
        "brandclub:mariadb.buffer_pool_size",
        "did you mean 'bufferPoolSize'?",
        "'512M'",
        id="snake-case-key-is-not-an-alias",
    ),
    pytest.param(
        "dev",
        {"brandclub:endpointMode": "round-robin"},
        "brandclub:endpointMode",
        "'vip' or 'dnsrr'",
        "'round-robin'",
        id="endpoint-mode-invalid",
    ),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "expected", "found"), BAD_INPUTS)
def test_bad_input_is_reported_before_anything_is_registered(
    stack: str, overrides: dict[str, Any], key: str, expected: str, found: str
) -> None:
    error, registered = render_error(stack, overrides)
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {error}"
    assert registered == []
    problem = _problem_at(error, key)
    assert expected in problem.expected
    assert found in problem.found
    assert str(problem) in str(error)


# --- 2b. Bad inputs that reach mounts, constraints, images and headers (issue 10) ----------

_RESTORE = {"site": "dev.brandclub.com", "date": "2026-11-20"}
_S3 = S3_OFFSITE
_HOST_PATH = "an absolute, normalised path"
_OUTSIDE = "outside system and Docker directories"


def _bad(
    stack: str, overrides: dict[str, Any], key: str, expected: str, found: str, id: str
) -> Any:
    return pytest.param(stack, overrides, key, expected, found, id=id)


def _backup_path(path: str, expected: str, found: str, id: str) -> Any:
    return _bad("prod", {"brandclub:backup": {"hostPath": path}}, "brandclub:backup.hostPath",
                expected, found, id)  # fmt: skip


def _restore_path(path: str, expected: str, found: str, id: str) -> Any:
    return _bad("dev", {"brandclub:restore": {**_RESTORE, "hostPath": path}},
                "brandclub:restore.hostPath", expected, found, id)  # fmt: skip


def _resources(service: str, part: str, field: str, value: object) -> dict[str, Any]:
    return {"brandclub:services": {service: {part: {field: value}}}}


GUARDRAIL_BAD_INPUTS = [
    # Values that end up inside --mount / --constraint arguments and Compose mounts.
    _restore_path(
        "/x,type=volume,source=brandclub-prod-mariadb",
        _HOST_PATH,
        "'/x,type=volume",
        "restore-host-path-smuggles-a-volume-mount",
    ),
    _restore_path("/srv/backups=/etc", _HOST_PATH, "'/srv/backups=/etc'", "restore-path-equals"),
    _backup_path("/opt/backups\n/etc", _HOST_PATH, "'/opt/backups\\n/etc'", "backup-path-newline"),
    _backup_path("/opt/back ups", _HOST_PATH, "'/opt/back ups'", "backup-path-space"),
    _backup_path("/", "/ contains them all", "'/'", "backup-path-root"),
    _backup_path("/srv/../var/lib/docker", _HOST_PATH, "'/srv/../var", "backup-path-dotdot"),
    _backup_path("/opt/./backups", _HOST_PATH, "'/opt/./backups'", "backup-path-dot-segment"),
    _backup_path("/opt//backups", _HOST_PATH, "'/opt//backups'", "backup-path-double-slash"),
    _backup_path("/opt/backups/", _HOST_PATH, "'/opt/backups/'", "backup-path-trailing-slash"),
    _backup_path("opt/backups", _HOST_PATH, "'opt/backups'", "backup-path-relative"),
    _backup_path(
        "/var/lib/docker/volumes/brandclub-dev-mariadb/_data",
        "/var/lib/docker is one",
        "'/var/lib/docker/volumes",
        "backup-path-other-volume",
    ),
    _backup_path("/etc", "/etc is one", "'/etc'", "backup-path-etc"),
    _backup_path("/var", "/var contains /var/lib", "'/var'", "backup-path-ancestor-of-docker"),
    _restore_path("/root/.ssh", "/root is one", "'/root/.ssh'", "restore-path-root-home"),
    _restore_path("/proc/1/root", "/proc is one", "'/proc/1/root'", "restore-path-proc"),
    _bad(
        "dev",
        {"brandclub:placement": {"data": ["node.role == manager\nnode.hostname == x"]}},
        "brandclub:placement.data[0]",
        "one per entry",
        "node.role == manager\\n",
        "constraint-with-newline-splits",
    ),
    _bad(
        "dev",
        {"brandclub:placement": {"data": ["node.role ==\nmanager"]}},
        "brandclub:placement.data[0]",
        "a Swarm placement constraint",
        "'node.role ==\\nmanager'",
        "constraint-newline-around-operator",
    ),
    _bad(
        "dev",
        {"brandclub:placement": {"app": ["node.labels.zone == a,b"]}},
        "brandclub:placement.app[0]",
        "a Swarm placement constraint",
        "'node.labels.zone == a,b'",
        "constraint-value-with-comma",
    ),
    _bad(
        "dev",
        {"brandclub:placement": {"app": ["node.labels.x == y=z"]}},
        "brandclub:placement.app[0]",
        "a Swarm placement constraint",
        "'node.labels.x == y=z'",
        "constraint-value-with-equals",
    ),
    # Settings that put the data at risk.
    _bad(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:latest"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:latest",
        "mariadb-image-latest",
    ),
    _bad(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:lts"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:lts",
        "mariadb-image-lts",
    ),
    _bad(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb",
        "mariadb-image-without-tag",
    ),
    _bad(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb@sha256:" + "ab" * 32}},
        "brandclub:images.mariadb",
        "its tag starting with the series",
        "mariadb@sha256",
        "mariadb-image-digest-only",
    ),
    _bad(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:10"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:10",
        "mariadb-image-major-only",
    ),
    _bad(
        "prod",
        {"brandclub:placement": {"data": []}},
        "brandclub:placement.data",
        "at least one constraint where dataProtection.protect is true",
        "[]",
        "prod-data-placement-empty",
    ),
    # Bounds.
    _bad(
        "dev",
        _resources("backend", "limits", "cpus", 1e-10),
        "brandclub:services.backend.limits.cpus",
        "between 0.01",
        "1e-10",
        "cpus-rounds-to-0",
    ),
    _bad(
        "dev",
        _resources("backend", "limits", "cpus", 0),
        "brandclub:services.backend.limits.cpus",
        "between 0.01",
        "0",
        "cpus-zero",
    ),
    _bad(
        "dev",
        _resources("backend", "limits", "cpus", 65),
        "brandclub:services.backend.limits.cpus",
        "and 64 CPUs",
        "65",
        "cpus-beyond-any-node",
    ),
    _bad(
        "dev",
        _resources("backend", "reservations", "cpus", 0.001),
        "brandclub:services.backend.reservations.cpus",
        "between 0.01",
        "0.001",
        "cpu-reservation-too-small",
    ),
    _bad(
        "dev",
        _resources("backend", "limits", "cpus", float("nan")),
        "brandclub:services",
        "NaN is not a JSON number",
        "'{",
        "cpus-nan",
    ),
    _bad(
        "dev",
        _resources("backend", "limits", "memory", "1"),
        "brandclub:services.backend.limits.memory",
        "between 6M",
        "'1'",
        "memory-one-byte",
    ),
    _bad(
        "dev",
        _resources("backend", "limits", "memory", "100T"),
        "brandclub:services.backend.limits.memory",
        "and 1T",
        "100T",
        "memory-100T",
    ),
    _bad(
        "dev",
        {"brandclub:mariadb": {"reservations": {"memory": "1K"}}},
        "brandclub:mariadb.reservations.memory",
        "between 6M",
        "1K",
        "memory-reservation-1K",
    ),
    _bad(
        "dev",
        {"brandclub:frappe": {"realIpFrom": "0.0.0.0/0"}},
        "brandclub:frappe.realIpFrom",
        "a private range",
        "'0.0.0.0/0'",
        "real-ip-from-everywhere",
    ),
    _bad(
        "dev",
        {"brandclub:frappe": {"realIpFrom": "::/0"}},
        "brandclub:frappe.realIpFrom",
        "a private range",
        "'::/0'",
        "real-ip-from-everywhere-ipv6",
    ),
    _bad(
        "dev",
        {"brandclub:frappe": {"realIpFrom": "8.8.8.0/24"}},
        "brandclub:frappe.realIpFrom",
        "forge its address",
        "'8.8.8.0/24'",
        "real-ip-from-public-range",
    ),
    _bad(
        "dev",
        {"brandclub:frappe": {"clientMaxBodySize": "0"}},
        "brandclub:frappe.clientMaxBodySize",
        "above zero",
        "'0'",
        "upload-limit-off",
    ),
    _bad(
        "dev",
        {"brandclub:frappe": {"clientMaxBodySize": "0m"}},
        "brandclub:frappe.clientMaxBodySize",
        "above zero",
        "'0m'",
        "upload-limit-off-0m",
    ),
    # Small defects.
    _bad(
        "dev",
        {"brandclub:registry": {"username": ""}},
        "brandclub:registry.username",
        "1 to 255 printable characters",
        "''",
        "registry-username-empty",
    ),
    _bad(
        "dev",
        {"brandclub:registry": {"username": "deploy bot"}},
        "brandclub:registry.username",
        "no space",
        "'deploy bot'",
        "registry-username-space",
    ),
    _bad(
        "prod",
        {"brandclub:ingress": {"acmeEmail": "a@b.c,--api.insecure=true"}},
        "brandclub:ingress.acmeEmail",
        "an e-mail address",
        "'a@b.c,--api.insecure=true'",
        "acme-email-smuggles-a-traefik-flag",
    ),
    _bad(
        "prod",
        {"brandclub:ingress": {"acmeEmail": "ops@$(reboot).brandclub.com"}},
        "brandclub:ingress.acmeEmail",
        "an e-mail address",
        "'ops@$(reboot).brandclub.com'",
        "acme-email-with-shell-characters",
    ),
    _bad(
        "dev",
        {"brandclub:ingress": {"contentSecurityPolicy": "default-src 'self'\r\nX-A: 1"}},
        "brandclub:ingress.contentSecurityPolicy",
        "without control characters",
        "default-src",
        "csp-with-crlf",
    ),
    _bad(
        "prod",
        {"brandclub:backup": {"offsite": {**_S3, "bucket2": "x"}}},
        "brandclub:backup.offsite.bucket2",
        "did you mean 'bucket'? (known: kind, endpoint",
        "'x'",
        "offsite-unknown-key-names-the-real-path",
    ),
    _bad(
        "prod",
        {"brandclub:backup": {"offsite": {**_S3, "prefix": "prod\n--delete"}}},
        "brandclub:backup.offsite.prefix",
        "an S3 key prefix",
        "'prod\\n--delete'",
        "offsite-prefix-newline",
    ),
    _bad(
        "prod",
        {
            "brandclub:backup": {
                "offsite": {
                    "kind": "rsync",
                    "target": "b@h:/srv",
                    "knownHosts": "h ssh-ed25519 AAAA\x1b[2J",
                }
            }
        },
        "brandclub:backup.offsite.knownHosts",
        "no control characters",
        "'h ssh-ed25519",
        "offsite-known-hosts-escape-sequence",
    ),
    _bad(
        "dev",
        {"brandclub:services": '{"backend": {"replicas": 1}'},
        "brandclub:services",
        "a map of settings",
        '\'{"backend"',
        "services-broken-json",
    ),
    _bad(
        "dev",
        {"brandclub:ingress": "[1, 2"},
        "brandclub:ingress",
        "not valid JSON",
        "'[1, 2'",
        "ingress-broken-json",
    ),
    _bad(
        "dev",
        {"brandclb:dataProtection": {"protect": True}},
        "brandclb:dataProtection",
        "did you mean 'brandclub:dataProtection'?",
        '"protect":true',
        "namespace-typo-brandclb",
    ),
    _bad(
        "dev",
        {"Brandclub:imageTag": "develop"},
        "Brandclub:imageTag",
        "did you mean 'brandclub:imageTag'?",
        "'develop'",
        "namespace-typo-capital",
    ),
    _bad(
        "dev",
        {"brand-club:backup": {"time": "03:00"}},
        "brand-club:backup",
        "did you mean 'brandclub:backup'?",
        '"time":"03:00"',
        "namespace-typo-dash",
    ),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "expected", "found"), GUARDRAIL_BAD_INPUTS)
def test_guardrail_bad_input_is_reported_before_anything_is_registered(
    stack: str, overrides: dict[str, Any], key: str, expected: str, found: str
) -> None:
    test_bad_input_is_reported_before_anything_is_registered(stack, overrides, key, expected, found)


def test_there_are_at_least_40_guardrail_bad_inputs() -> None:
    assert len(GUARDRAIL_BAD_INPUTS) >= 40
    assert len({p.id for p in GUARDRAIL_BAD_INPUTS}) == len(GUARDRAIL_BAD_INPUTS)


# --- 2c. Traefik's ACME CA and observability settings (issue 11) --------------------------------

_ROOT = PRIVATE_CA.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
_PEBBLE = "https://10.0.0.1:14000/dir"
_ACME_URL = "the https:// URL of an ACME directory"
_PEM_ONLY = "nothing but PEM certificates"
_DER = "to be a DER X.509 certificate in base64"
_MANAGE_ONLY = "unset where ingress.manage is false"


def _ingress(stack: str, settings: dict[str, Any], key: str, expected: str, found: str, id: str):
    return _bad(stack, {"brandclub:ingress": settings}, f"brandclub:ingress.{key}", expected,
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
    test_bad_input_is_reported_before_anything_is_registered(stack, overrides, key, expected, found)


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


@pytest.mark.parametrize("stack", ["prod-eu", "prod2", "staging-blue"])
def test_a_stack_must_be_named_after_its_environment(stack: str) -> None:
    """Two stacks must never claim the same Docker names: prod-eu with environment prod would
    register prod's exact names."""
    environment = stack.split("-")[0].rstrip("0123456789")
    error, registered = render_error(stack, config=stack_file_config(environment))
    assert registered == []
    problem = _problem_at(error, "brandclub:environment")
    assert f"would claim the Docker names of stack '{environment}'" in problem.expected
    assert problem.found == repr(environment)


@pytest.mark.parametrize(
    "overrides",
    [
        {"brandclub:domains": ["shop.xn--p1ai"]},
        {"brandclub:domains": ["dev.brandclub.com", "xn--80ak6aa92e.xn--p1ai"]},
        {"brandclub:frappe": {"realIpFrom": "172.16.0.0/12"}},
        {"brandclub:frappe": {"clientMaxBodySize": "10m"}},
        {"brandclub:backup": {"hostPath": "/srv/brand-club/backups"}},
        {"brandclub:placement": {"app": ["node.labels.tier == app", "node.platform.os==linux"]}},
        {"brandclub:images": {"mariadb": "mariadb:10.6.21-jammy"}},
        {
            "brandclub:services": {
                "backend": {
                    "limits": {"cpus": 0.01, "memory": "6M"},
                    "reservations": {"cpus": 0.01, "memory": "6M"},
                }
            }
        },
        {"docker:host": "ssh://deploy@swarm.brandclub.com", "aws:region": "eu-central-1"},
    ],
    ids=repr,
)
def test_good_values_near_the_new_limits_are_accepted(overrides: dict[str, Any]) -> None:
    render("dev", overrides)


def test_backup_key_absent_in_prod() -> None:
    config = stack_file_config("prod")
    del config["brandclub:services"]["backup"]
    error, registered = render_error("prod", config=config)
    assert registered == []
    problem = _problem_at(error, "brandclub:services.backup")
    assert "a backup service in prod" in problem.expected


# --- 3./4. Secrets --------------------------------------------------------------------------

SET_SECRET = "pulumi config set --secret brandclub:dbRootPassword <value> --stack dev"
# Every test secret but the root password, which these tests leave out or misplace.
NO_ROOT_PASSWORD = {k: v for k, v in TEST_SECRETS.items() if k != "brandclub:dbRootPassword"}


def test_missing_secret_says_how_to_set_it() -> None:
    error, registered = render_error("dev", secrets=NO_ROOT_PASSWORD)
    assert registered == []
    problem = _problem_at(error, "brandclub:dbRootPassword")
    assert problem.found == "nothing"
    assert SET_SECRET in problem.expected
    assert len(error.problems) == 1


@pytest.mark.parametrize("password", ["pw", "Plain-Text-Zq8!leak"], ids=["short", "long"])
def test_plain_text_secret_is_rejected_without_echoing_it(password: str) -> None:
    error, registered = render_error(
        "dev", overrides={"brandclub:dbRootPassword": password}, secrets=NO_ROOT_PASSWORD
    )
    assert registered == []
    problem = _problem_at(error, "brandclub:dbRootPassword")
    assert "encrypted secret" in problem.expected
    assert SET_SECRET in problem.expected
    assert password not in str(error)
    assert all(password not in p.found + p.expected for p in error.problems)
    assert len(error.problems) == 1


def test_secret_under_mistyped_key_is_not_echoed() -> None:
    # `pulumi config set --secret brandclub:dbRootPasword ...`: the value is still a secret.
    password = "hunter2-typo-Zq8"
    error, registered = render_error(
        "dev", secrets={**NO_ROOT_PASSWORD, "brandclub:dbRootPasword": password}
    )
    assert registered == []
    _problem_at(error, "brandclub:dbRootPassword")
    typo = _problem_at(error, "brandclub:dbRootPasword")
    assert "did you mean 'dbRootPassword'?" in typo.expected
    assert password not in str(error)


def test_secret_that_looks_like_json_is_accepted() -> None:
    # A password is text, whatever characters it starts with.
    render("dev", secrets={**TEST_SECRETS, "brandclub:dbRootPassword": '{"a": 1, "b": "Zq8"}'})


# --- 5. Many problems, one error ------------------------------------------------------------


def test_all_problems_are_reported_in_one_error() -> None:
    overrides = {
        "brandclub:environment": "dev",
        "brandclub:imageTag": "feature/x",
        "brandclub:dbRootPassword": "pw",
        "brandclub:services": {
            "backend": {"replicas": 0},
            "scheduler": {"replicas": 2},
        },
        "brandclub:mariadb": {"limits": {"memory": "2 GB"}},
        "brandclub:healthcheck": {"interval": "soon"},
        "brandclub:ingresss": {"manage": True},
    }
    error, registered = render_error("prod", overrides, secrets=NO_ROOT_PASSWORD)
    assert isinstance(error, ConfigError)
    assert registered == []
    expected_keys = {
        "brandclub:dbRootPassword",
        "brandclub:environment",
        "brandclub:imageTag",
        "brandclub:services.backend.replicas",
        "brandclub:services.scheduler.replicas",
        "brandclub:mariadb.limits.memory",
        "brandclub:healthcheck.interval",
        "brandclub:ingresss",
    }
    assert len(error.problems) == len(expected_keys)
    assert {problem.key for problem in error.problems} == expected_keys
    first_line, *lines = str(error).splitlines()
    assert first_line == (
        f"Stack 'prod' has {len(expected_keys)} configuration problem(s); nothing was deployed:"
    )
    assert len(lines) == len(expected_keys)
    for key in expected_keys:
        assert any(line.startswith(f"  - {key}: ") for line in lines), key


# --- 6. Units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512M", 512 * MiB),
        ("1.5G", 1536 * MiB),
        ("2GiB", 2 * GiB),
        ("256mb", 256 * MiB),
        ("1g", GiB),
        ("64Ki", 64 * 1024),
        ("1T", 1024**4),
        ("1024", 1024),
        ("1024B", 1024),
        (1073741824, GiB),
    ],
)
def test_parse_size_accepts(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "value",
    ["2 GB", "", "-1M", "0", "0M", "1.5", "1.5B", "M", "12X", "1G ", " 1G", True, False, 0, -5, 1.5,
     None],
    ids=repr,
)  # fmt: skip
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="a size such as 512M"):
        parse_size(value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(GiB, "1G"), (1536 * MiB, "1536M"), (512 * MiB, "512M"), (2048, "2K"), (1023, "1023B")],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
    assert parse_size(text) == size


@pytest.mark.parametrize("value", ["30s", "1m30s", "500ms", "1h", "10m", "100us", "2h45m0s"])
def test_parse_duration_accepts(value: str) -> None:
    assert parse_duration(value) == value


@pytest.mark.parametrize(
    "value", ["30", "30 s", "30 seconds", "", "s", "-5s", "1d", 30, None, True], ids=repr
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="a duration such as 30s"):
        parse_duration(value)


def test_every_broken_rule_of_one_object_is_reported() -> None:
    error, registered = render_error(
        "prod",
        {
            "brandclub:mariadb": {
                "version": "10.5",
                "bufferPoolSize": "4G",
                "reservations": {"memory": "3G"},
            }
        },
    )
    assert isinstance(error, ConfigError) and registered == []
    assert {p.key for p in error.problems} == {
        "brandclub:mariadb.version",
        "brandclub:mariadb.bufferPoolSize",
        "brandclub:mariadb.reservations.memory",
    }


def test_every_broken_stack_rule_is_reported() -> None:
    error, registered = render_error(
        "prod",
        {
            "brandclub:domains": ["brandclub.com", "brandclub.com"],
            "brandclub:services": {"websocket": {"replicas": 3}},
            "brandclub:ingress": {"websocketDirect": False},
            "brandclub:images": {"mariadb": "mariadb:11.8"},
        },
    )
    assert isinstance(error, ConfigError) and registered == []
    assert {p.key for p in error.problems} == {
        "brandclub:domains",
        "brandclub:ingress.websocketDirect",
        "brandclub:images.mariadb",
    }


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("30s", "30s"),
        ("60s", "1m"),
        ("120s", "2m"),
        ("90s", "1m30s"),
        ("600s", "10m"),
        ("3600s", "1h"),
        ("5400s", "1h30m"),
        ("2h0m5s", "2h0m5s"),
        ("86400s", "24h"),
        ("1500ms", "1.5s"),
        ("500ms", "500ms"),
        ("100us", "100µs"),
        ("0s", "0s"),
    ],
)
def test_canonical_duration_is_gos_short_spelling(value: str, canonical: str) -> None:
    assert canonical_duration(value) == canonical
    if "." not in canonical:  # stack config takes whole numbers only
        assert canonical_duration(canonical.replace("µs", "us")) == canonical


def test_failure_ratio_must_survive_the_round_trip() -> None:
    error, registered = render_error("dev", {"brandclub:rollout": {"maxFailureRatio": 0.25}})
    assert isinstance(error, ConfigError) and registered == []
    [problem] = error.problems
    assert problem.key == "brandclub:rollout.maxFailureRatio"
    assert "multiple of 0.1" in problem.expected


# --- 7. Weak passwords ----------------------------------------------------------------------

WEAK_PASSWORDS = [
    pytest.param(key, password, id=f"{key.split(':')[1]}-{label}")
    for key in ("brandclub:dbRootPassword", "brandclub:adminPassword")
    for label, password in (
        ("Summer2024!", "Summer2024!"),  # 11 characters
        ("admin", "admin"),
        ("a", "a"),
        ("long-lower-only", "correcthorsebatterystaple"),
        ("two-classes", "correct-horse-battery"),
    )
]


@pytest.mark.parametrize(("key", "password"), WEAK_PASSWORDS)
def test_weak_password_is_refused_unechoed(key: str, password: str) -> None:
    error, registered = render_error("dev", secrets={**TEST_SECRETS, key: password})
    assert registered == []
    problem = _problem_at(error, key)
    assert "at least 12 characters and 3 of the 4 character classes" in problem.expected
    assert problem.found == "a secret value (not shown)"
    if len(password) > 3:  # "a" is in any English sentence
        assert password not in str(error).replace(key, "")


@pytest.mark.parametrize(
    "password", ["Summer2024!x", "correct-horse-7", "CORRECT-HORSE-7", "Zq8" + "x" * 9]
)
def test_strong_enough_password_is_accepted(password: str) -> None:
    render("dev", secrets={**TEST_SECRETS, "brandclub:adminPassword": password})


@pytest.mark.parametrize("cpus", [float("nan"), float("inf")], ids=repr)
def test_a_non_finite_cpu_count_is_called_what_it_is(cpus: float) -> None:
    """Not "less than or equal to 64": a NaN that reached the model is no number at all."""
    from pydantic import ValidationError

    from components.config_sections import Resources

    with pytest.raises(ValidationError) as raised:
        Resources.model_validate({"cpus": cpus, "memory": "1G"})
    [detail] = raised.value.errors()
    assert detail["type"] == "finite_number"
