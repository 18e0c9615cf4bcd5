"""Stack configuration: bad values that would reach mounts, constraints, images and headers
(issue 10) stop the program before anything is registered.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import (
    S3_OFFSITE,
    assert_reported_before_registering,
    bad_input,
)

MiB = 1024**2
GiB = 1024**3

_RESTORE = {"site": "dev.brandclub.com", "date": "2026-11-20"}
_S3 = S3_OFFSITE
_HOST_PATH = "an absolute, normalised path"
_OUTSIDE = "outside system and Docker directories"


def _backup_path(path: str, expected: str, found: str, id: str) -> Any:
    return bad_input("prod", {"brandclub:backup": {"hostPath": path}}, "brandclub:backup.hostPath",
                expected, found, id)  # fmt: skip


def _restore_path(path: str, expected: str, found: str, id: str) -> Any:
    return bad_input("dev", {"brandclub:restore": {**_RESTORE, "hostPath": path}},
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
    bad_input(
        "dev",
        {"brandclub:placement": {"data": ["node.role == manager\nnode.hostname == x"]}},
        "brandclub:placement.data[0]",
        "one per entry",
        "node.role == manager\\n",
        "constraint-with-newline-splits",
    ),
    bad_input(
        "dev",
        {"brandclub:placement": {"data": ["node.role ==\nmanager"]}},
        "brandclub:placement.data[0]",
        "a Swarm placement constraint",
        "'node.role ==\\nmanager'",
        "constraint-newline-around-operator",
    ),
    bad_input(
        "dev",
        {"brandclub:placement": {"app": ["node.labels.zone == a,b"]}},
        "brandclub:placement.app[0]",
        "a Swarm placement constraint",
        "'node.labels.zone == a,b'",
        "constraint-value-with-comma",
    ),
    bad_input(
        "dev",
        {"brandclub:placement": {"app": ["node.labels.x == y=z"]}},
        "brandclub:placement.app[0]",
        "a Swarm placement constraint",
        "'node.labels.x == y=z'",
        "constraint-value-with-equals",
    ),
    # Settings that put the data at risk.
    bad_input(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:latest"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:latest",
        "mariadb-image-latest",
    ),
    bad_input(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:lts"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:lts",
        "mariadb-image-lts",
    ),
    bad_input(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb",
        "mariadb-image-without-tag",
    ),
    bad_input(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb@sha256:" + "ab" * 32}},
        "brandclub:images.mariadb",
        "its tag starting with the series",
        "mariadb@sha256",
        "mariadb-image-digest-only",
    ),
    bad_input(
        "dev",
        {"brandclub:images": {"mariadb": "mariadb:10"}},
        "brandclub:images.mariadb",
        "an image of the 10.6 series",
        "mariadb:10",
        "mariadb-image-major-only",
    ),
    bad_input(
        "prod",
        {"brandclub:placement": {"data": []}},
        "brandclub:placement.data",
        "at least one constraint where dataProtection.protect is true",
        "[]",
        "prod-data-placement-empty",
    ),
    # Bounds.
    bad_input(
        "dev",
        _resources("backend", "limits", "cpus", 1e-10),
        "brandclub:services.backend.limits.cpus",
        "between 0.01",
        "1e-10",
        "cpus-rounds-to-0",
    ),
    bad_input(
        "dev",
        _resources("backend", "limits", "cpus", 0),
        "brandclub:services.backend.limits.cpus",
        "between 0.01",
        "0",
        "cpus-zero",
    ),
    bad_input(
        "dev",
        _resources("backend", "limits", "cpus", 65),
        "brandclub:services.backend.limits.cpus",
        "and 64 CPUs",
        "65",
        "cpus-beyond-any-node",
    ),
    bad_input(
        "dev",
        _resources("backend", "reservations", "cpus", 0.001),
        "brandclub:services.backend.reservations.cpus",
        "between 0.01",
        "0.001",
        "cpu-reservation-too-small",
    ),
    bad_input(
        "dev",
        _resources("backend", "limits", "cpus", float("nan")),
        "brandclub:services",
        "NaN is not a JSON number",
        "'{",
        "cpus-nan",
    ),
    bad_input(
        "dev",
        _resources("backend", "limits", "memory", "1"),
        "brandclub:services.backend.limits.memory",
        "between 6M",
        "'1'",
        "memory-one-byte",
    ),
    bad_input(
        "dev",
        _resources("backend", "limits", "memory", "100T"),
        "brandclub:services.backend.limits.memory",
        "and 1T",
        "100T",
        "memory-100T",
    ),
    bad_input(
        "dev",
        {"brandclub:mariadb": {"reservations": {"memory": "1K"}}},
        "brandclub:mariadb.reservations.memory",
        "between 6M",
        "1K",
        "memory-reservation-1K",
    ),
    bad_input(
        "dev",
        {"brandclub:frappe": {"realIpFrom": "0.0.0.0/0"}},
        "brandclub:frappe.realIpFrom",
        "a private range",
        "'0.0.0.0/0'",
        "real-ip-from-everywhere",
    ),
    bad_input(
        "dev",
        {"brandclub:frappe": {"realIpFrom": "::/0"}},
        "brandclub:frappe.realIpFrom",
        "a private range",
        "'::/0'",
        "real-ip-from-everywhere-ipv6",
    ),
    bad_input(
        "dev",
        {"brandclub:frappe": {"realIpFrom": "8.8.8.0/24"}},
        "brandclub:frappe.realIpFrom",
        "forge its address",
        "'8.8.8.0/24'",
        "real-ip-from-public-range",
    ),
    bad_input(
        "dev",
        {"brandclub:frappe": {"clientMaxBodySize": "0"}},
        "brandclub:frappe.clientMaxBodySize",
        "above zero",
        "'0'",
        "upload-limit-off",
    ),
    bad_input(
        "dev",
        {"brandclub:frappe": {"clientMaxBodySize": "0m"}},
        "brandclub:frappe.clientMaxBodySize",
        "above zero",
        "'0m'",
        "upload-limit-off-0m",
    ),
    # Small defects.
    bad_input(
        "dev",
        {"brandclub:registry": {"username": ""}},
        "brandclub:registry.username",
        "1 to 255 printable characters",
        "''",
        "registry-username-empty",
    ),
    bad_input(
        "dev",
        {"brandclub:registry": {"username": "deploy bot"}},
        "brandclub:registry.username",
        "no space",
        "'deploy bot'",
        "registry-username-space",
    ),
    bad_input(
        "prod",
        {"brandclub:ingress": {"acmeEmail": "a@b.c,--api.insecure=true"}},
        "brandclub:ingress.acmeEmail",
        "an e-mail address",
        "'a@b.c,--api.insecure=true'",
        "acme-email-smuggles-a-traefik-flag",
    ),
    bad_input(
        "prod",
        {"brandclub:ingress": {"acmeEmail": "ops@$(reboot).brandclub.com"}},
        "brandclub:ingress.acmeEmail",
        "an e-mail address",
        "'ops@$(reboot).brandclub.com'",
        "acme-email-with-shell-characters",
    ),
    bad_input(
        "dev",
        {"brandclub:ingress": {"contentSecurityPolicy": "default-src 'self'\r\nX-A: 1"}},
        "brandclub:ingress.contentSecurityPolicy",
        "without control characters",
        "default-src",
        "csp-with-crlf",
    ),
    bad_input(
        "prod",
        {"brandclub:backup": {"offsite": {**_S3, "bucket2": "x"}}},
        "brandclub:backup.offsite.bucket2",
        "did you mean 'bucket'? (known: kind, endpoint",
        "'x'",
        "offsite-unknown-key-names-the-real-path",
    ),
    bad_input(
        "prod",
        {"brandclub:backup": {"offsite": {**_S3, "prefix": "prod\n--delete"}}},
        "brandclub:backup.offsite.prefix",
        "an S3 key prefix",
        "'prod\\n--delete'",
        "offsite-prefix-newline",
    ),
    bad_input(
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
    bad_input(
        "dev",
        {"brandclub:services": '{"backend": {"replicas": 1}'},
        "brandclub:services",
        "a map of settings",
        '\'{"backend"',
        "services-broken-json",
    ),
    bad_input(
        "dev",
        {"brandclub:ingress": "[1, 2"},
        "brandclub:ingress",
        "not valid JSON",
        "'[1, 2'",
        "ingress-broken-json",
    ),
    bad_input(
        "dev",
        {"brandclb:dataProtection": {"protect": True}},
        "brandclb:dataProtection",
        "did you mean 'brandclub:dataProtection'?",
        '"protect":true',
        "namespace-typo-brandclb",
    ),
    bad_input(
        "dev",
        {"Brandclub:imageTag": "develop"},
        "Brandclub:imageTag",
        "did you mean 'brandclub:imageTag'?",
        "'develop'",
        "namespace-typo-capital",
    ),
    bad_input(
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
    assert_reported_before_registering(stack, overrides, key, expected, found)


def test_there_are_at_least_40_guardrail_bad_inputs() -> None:
    assert len(GUARDRAIL_BAD_INPUTS) >= 40
    assert len({p.id for p in GUARDRAIL_BAD_INPUTS}) == len(GUARDRAIL_BAD_INPUTS)
