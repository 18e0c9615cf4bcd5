"""Stack configuration, second round (issue 21): values that would execute, reach a command as
an option, exceed what Docker holds or contradict themselves are refused on every stack, before
anything is registered, one problem per value naming its key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config.loader import NESTING_MAX, ConfigError, parse_stack_config
from components.config.stacks import stack_file_domains
from harness import (
    PRIVATE_CA,
    REPO,
    S3_OFFSITE,
    STACKS,
    TEST_ROOT_PASSWORD,
    TEST_SECRETS,
    deep_merge,
    problem_at,
    render,
    render_error,
    stack_file_config,
)
from stacktools import pulumi_yaml

ACME = REPO / "tests" / "fixtures" / "acme"
NOT_A_CA = (ACME / "not-a-ca.pem").read_text()
V1_CERTIFICATE = (ACME / "v1-no-extensions.pem").read_text()
_RSYNC = {"kind": "rsync", "target": "backup@vault.example.net:/srv/brandclub"}
HEADERS = "brandclub:ingress.accessLog.headers[0]"
DIGEST = "sha256:" + "a" * 64
PRIVATE_ACME = "https://ca.internal/acme"
NESTED = f"nested at most {NESTING_MAX} levels"


def _offsite(**values: str) -> dict[str, Any]:
    kind = _RSYNC if values.get("kind", "rsync") == "rsync" else S3_OFFSITE
    return {"brandclub:backup": {"offsite": {**kind, **values}}}


def _restore(date: str) -> dict[str, Any]:
    return {"brandclub:restore": {"site": "<this stack's>", "date": date}}


def _headers(*names: str) -> dict[str, Any]:
    return {"brandclub:ingress": {"accessLog": {"headers": list(names)}}}


def _app(*constraints: str) -> dict[str, Any]:
    return {"brandclub:placement": {"app": list(constraints)}}


def _sites(**storage: str) -> dict[str, Any]:
    return {"brandclub:storage": {"sites": storage}}


# (id, overrides, key, expected): each holds on every stack, where the keys are all checked.
CASES = [
    # 1. Values that reach rsync, ssh, the S3 client or docker.
    ("rsync-host-option", _offsite(target="u@-oProxyCommand=touch${IFS}x:/p"),
     "brandclub:backup.offsite.target", "user@host:/absolute/path"),
    ("rsync-user-option", _offsite(target="-oProxyCommand=x@h:/p"),
     "brandclub:backup.offsite.target", "not starting with '-'"),
    ("rsync-path-substitution", _offsite(target="u@h:/srv/$(reboot)"),
     "brandclub:backup.offsite.target", "nothing a shell would read"),
    ("rsync-path-separator", _offsite(target="u@h:/srv;reboot"),
     "brandclub:backup.offsite.target", "nothing a shell would read"),
    ("s3-endpoint-http", _offsite(kind="s3", endpoint="http://minio.internal:9000"),
     "brandclub:backup.offsite.endpoint", "clear text"),
    ("s3-endpoint-user", _offsite(kind="s3", endpoint="https://key:pw@s3.example.com"),
     "brandclub:backup.offsite.endpoint", "no user"),
    ("s3-bucket-dotdot", _offsite(kind="s3", bucket="a..b"),
     "brandclub:backup.offsite.bucket", "no '..'"),
    ("docker-host-ssh-option", {"docker:host": "ssh://-oProxyCommand=touch${IFS}x"},
     "docker:host", "ssh://[user@]host[:port]"),
    ("docker-host-port", {"docker:host": "tcp://swarm:99999"},
     "docker:host", "a port from 1 to 65535"),
    # 2. Image and registry references.
    ("app-option", {"brandclub:images": {"app": "-q/app"}},
     "brandclub:images.app", "an image repository"),
    ("app-dotdot", {"brandclub:images": {"app": "../x"}},
     "brandclub:images.app", "an image repository"),
    ("redis-digest", {"brandclub:images": {"redis": "redis:6@sha256:xyz"}},
     "brandclub:images.redis", "sha256:<64"),
    ("traefik-port-0", {"brandclub:images": {"traefik": "reg.io:0/traefik:v3"}},
     "brandclub:images.traefik", "outside 1-65535"),
    ("mailpit-upper-case", {"brandclub:images": {"mailpit": "Axllent/mailpit"}},
     "brandclub:images.mailpit", "path component"),
    ("registry-dotdot", {"brandclub:registry": {"server": ".."}},
     "brandclub:registry.server", "a registry host"),
    ("registry-port", {"brandclub:registry": {"server": "ghcr.io:99999"}},
     "brandclub:registry.server", "port 99999 is outside 1-65535"),
    # 5. Data that only moves forward.
    ("restore-week-date", _restore("2026-W47-5"), "brandclub:restore.date", "YYYY-MM-DD"),
    ("restore-basic-date", _restore("20261120"), "brandclub:restore.date", "YYYY-MM-DD"),
    ("restore-feb-30", _restore("2026-02-30"), "brandclub:restore.date", "the calendar has"),
    ("restore-future", _restore("2999-01-01"), "brandclub:restore.date", "not in the future"),
    # 6. Bounds and grammar.
    ("interval-0", {"brandclub:healthcheck": {"interval": "0s"}},
     "brandclub:healthcheck.interval", "at least 1ms"),
    ("timeout-500us", {"brandclub:healthcheck": {"timeout": "500us"}},
     "brandclub:healthcheck.timeout", "at least 1ms"),
    ("start-period-100us", {"brandclub:healthcheck": {"startPeriod": "100us"}},
     "brandclub:healthcheck.startPeriod", "0 or at least 1ms"),
    ("monitor-0", {"brandclub:rollout": {"monitor": "0s"}},
     "brandclub:rollout.monitor", "at least 1ms"),
    ("converge-timeout-0", {"brandclub:rollout": {"convergeTimeout": "0m"}},
     "brandclub:rollout.convergeTimeout", "at least 1ms"),
    ("delay-beyond-go", {"brandclub:rollout": {"delay": "2562048h"}},
     "brandclub:rollout.delay", "time.Duration"),
    ("interval-int64-overflow", {"brandclub:healthcheck": {"interval": "9223372036854775808ns"}},
     "brandclub:healthcheck.interval", "time.Duration"),
    ("parallelism-huge", {"brandclub:rollout": {"parallelism": 10**15}},
     "brandclub:rollout.parallelism", "less than or equal to 32"),
    ("gunicorn-timeout-huge", {"brandclub:frappe": {"gunicornTimeout": 10**9}},
     "brandclub:frappe.gunicornTimeout", "less than or equal to 3600"),
    ("hsts-max-age-huge", {"brandclub:ingress": {"hsts": {"maxAge": 10**12}}},
     "brandclub:ingress.hsts.maxAge", "less than or equal to 63072000"),
    ("csp-5000", {"brandclub:ingress": {"contentSecurityPolicy": "default-src " + "x" * 5000}},
     "brandclub:ingress.contentSecurityPolicy", "at most 1024"),
    ("constraint-3000", _app("node.labels.zone == " + "a" * 3000),
     "brandclub:placement.app[0]", "at most 1024"),
    ("constraint-label-2000", {"brandclub:ingress": {"constraintLabel": "x" * 2000}},
     "brandclub:ingress.constraintLabel", "at most 63"),
    ("role-eq-and-ne", _app("node.role == manager", "node.role != manager"),
     "brandclub:placement.app", "cannot be both == and != manager"),
    ("hostname-two", _app("node.hostname == a", "node.hostname == b"),
     "brandclub:placement.app", "cannot equal both a and b"),
    ("role-neither", _app("node.role != manager", "node.role != worker"),
     "brandclub:placement.app", "leaves none"),
    ("node-foo", _app("node.foo == bar"), "brandclub:placement.app[0]", "knows no 'node.foo'"),
    ("engine-foo", _app("engine.foo == x"), "brandclub:placement.app[0]", "no 'engine.foo'"),
    ("role-admin", _app("node.role == admin"), "brandclub:placement.app[0]", "manager or worker"),
    ("data-two-roles",
     {"brandclub:placement": {"data": ["node.role == manager", "node.role == worker"]}},
     "brandclub:placement.data", "cannot equal both"),
    ("data-against-its-label",
     {"brandclub:placement": {"data": ["node.labels.brandclub.data != true"],
                              "dataNodeLabel": "brandclub.data"}},
     "brandclub:placement.data", "the data node (labelled brandclub.data=true) can meet"),
    ("sites-parent-of-backups", _sites(kind="path", path="/opt/brand-club"),
     "brandclub:storage.sites.path", "apart from backup.hostPath"),
    ("sites-inside-backups", _sites(kind="path", path="/opt/brand-club/backups/sites"),
     "brandclub:storage.sites.path", "apart from backup.hostPath"),
    ("nfs-address-256", _sites(kind="nfs", address="10.0.0.256", export="/srv"),
     "brandclub:storage.sites.address", "an IP address"),
    ("nfs-address-option", _sites(kind="nfs", address="-o", export="/srv"),
     "brandclub:storage.sites.address", "an IP address"),
    ("nfs-option-second-address",
     _sites(kind="nfs", address="10.0.0.5", export="/srv", options=["hard", "addr=10.9.9.9"]),
     "brandclub:storage.sites.options[1]", "other than addr="),
    ("nfs-options-17", _sites(kind="nfs", address="10.0.0.5", export="/", options=["hard"] * 17),
     "brandclub:storage.sites.options", "at most 16"),
    ("apps-33", {"brandclub:frappe": {"apps": ["erpnext"] * 33}},
     "brandclub:frappe.apps", "at most 32"),
    ("headers-33", _headers(*["User-Agent"] * 33), "brandclub:ingress.accessLog.headers",
     "at most 32"),
    ("s3-prefix-600", _offsite(kind="s3", prefix="p" * 600),
     "brandclub:backup.offsite.prefix", "at most 512"),
    ("s3-access-key-2000", _offsite(kind="s3", accessKeyId="A" * 2000),
     "brandclub:backup.offsite.accessKeyId", "1 to 128"),
    ("known-hosts-70k", _offsite(knownHosts="h ssh-ed25519 " + "A" * 70_000),
     "brandclub:backup.offsite.knownHosts", "at most 64 KiB"),
    ("acme-email-300", {"brandclub:ingress": {"acmeEmail": "a" * 290 + "@brandclub.com"}},
     "brandclub:ingress.acmeEmail", "an e-mail address"),
    ("acme-ca-server-cert", {"brandclub:ingress": {"acmeCaCertificate": NOT_A_CA}},
     "brandclub:ingress.acmeCaCertificate", "a CA certificate"),
    ("acme-ca-v1", {"brandclub:ingress": {"acmeCaCertificate": V1_CERTIFICATE}},
     "brandclub:ingress.acmeCaCertificate", "a CA certificate"),
    ("header-session-id", _headers("X-Session-Id"), HEADERS, "without credentials"),
    ("header-sid", _headers("X-Sid"), HEADERS, "without credentials"),
    ("header-otp", _headers("X-OTP"), HEADERS, "without credentials"),
    ("header-signature", _headers("X-Hub-Signature-256"), HEADERS, "without credentials"),
    ("header-sig", _headers("X-Amz-Sig"), HEADERS, "without credentials"),
    ("header-client-cert", _headers("X-SSL-Client-Cert"), HEADERS, "without credentials"),
    ("header-verification", _headers("X-Verification-Code"), HEADERS, "without credentials"),
    ("header-dpop", _headers("DPoP"), HEADERS, "without credentials"),
    ("header-phpsessid", _headers("PHPSESSID"), HEADERS, "without credentials"),
    ("json-duplicate", {"brandclub:services": '{"backend": {"replicas": 1}, "backend": {}}'},
     "brandclub:services", "the key 'backend' appears twice"),
    ("json-nested-duplicate", {"brandclub:ingress": '{"hsts": {"enabled": true, "enabled": 1}}'},
     "brandclub:ingress", "the key 'enabled' appears twice"),
    ("json-recursion", {"brandclub:frappe": "[" * 100_000 + "]" * 100_000},
     "brandclub:frappe", NESTED),
    ("json-deep", {"brandclub:frappe": json.dumps({"apps": [[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]})},
     "brandclub:frappe", NESTED),
]  # fmt: skip
SITES = {
    "dev": "dev.brandclub.com",
    "staging": "staging.brandclub.com",
    "prod": "brandclub.com",
    "local": "brandclub.localhost",
}


def _for(stack: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if "brandclub:restore" not in overrides:
        return overrides
    # Name this stack's own site: the restore is refused for its date alone.
    return {"brandclub:restore": {**overrides["brandclub:restore"], "site": SITES[stack]}}


def _parse_error(stack: str, overrides: dict[str, Any]) -> ConfigError:
    """The loader alone on the stack file with ``overrides``: fast enough for every stack."""
    values = deep_merge(stack_file_config(stack), _for(stack, overrides))
    raw = {key: pulumi_yaml.engine_text(value, allow_nan=True) for key, value in values.items()}
    raw.update(TEST_SECRETS)
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(stack, raw, set(TEST_SECRETS), claimed_domains=stack_file_domains())
    return raised.value


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("overrides", "key", "expected"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_a_bad_value_is_refused_on_every_stack(
    stack: str, overrides: dict[str, Any], key: str, expected: str
) -> None:
    problem = problem_at(_parse_error(stack, overrides), key)
    assert expected in problem.expected, problem


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "expected"),
    [
        pytest.param(STACKS[index % len(STACKS)], *case[1:], id=case[0])
        for index, case in enumerate(CASES)
    ],
)
def test_a_bad_value_stops_the_program_before_anything_is_registered(
    stack: str, overrides: dict[str, Any], key: str, expected: str
) -> None:
    # One stack per value, in turn: the program goes through the same loader on every stack.
    error, registered = render_error(stack, _for(stack, overrides))
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {error}"
    assert registered == []
    assert expected in problem_at(error, key).expected
    assert "Traceback" not in str(error)


@pytest.mark.parametrize("stack", STACKS)
def test_an_nfs_export_of_the_pseudo_root_is_accepted(stack: str) -> None:
    nfs = {"kind": "nfs", "address": "10.0.0.5", "export": "/"}
    rendering = render(stack, {"brandclub:storage": {"sites": nfs}})
    [volume] = [v for v in rendering.of_type("docker:index/volume:Volume") if "-sites-" in v.name]
    assert volume.inputs["driverOpts"]["device"] == ":/"


@pytest.mark.parametrize("stack", STACKS)
def test_a_previous_root_password_equal_to_the_current_one_is_refused(stack: str) -> None:
    secrets = {**TEST_SECRETS, "brandclub:dbRootPasswordPrevious": TEST_ROOT_PASSWORD}
    error, registered = render_error(stack, secrets=secrets)
    assert registered == []
    problem = problem_at(error, "brandclub:dbRootPasswordPrevious")
    assert "different from dbRootPassword" in problem.expected
    assert TEST_ROOT_PASSWORD not in str(error)


def test_every_group_is_reported_in_one_error() -> None:
    error, registered = render_error(
        "prod",
        {
            **_offsite(target="u@-oProxyCommand=x:/p"),
            "brandclub:images": {"app": "-q/app"},
            "brandclub:domains": ["brandclub.com", "staging.brandclub.com"],
            "brandclub:dataProtection": {"protect": False},
            "brandclub:restore": {"site": "brandclub.com", "date": "2026-W47-5"},
            "brandclub:rollout": {"parallelism": 10**15},
            "brandclub:placement": {"app": ["node.foo == bar"]},
        },
    )
    assert registered == []
    for key in (
        "brandclub:backup.offsite.target",
        "brandclub:images.app",
        "brandclub:domains[1]",
        "brandclub:restore.date",
        "brandclub:rollout.parallelism",
        "brandclub:placement.app[0]",
    ):
        assert problem_at(error, key)


@pytest.mark.parametrize(
    "overrides",
    [
        {"brandclub:healthcheck": {"startPeriod": "0s"}},
        {"brandclub:rollout": {"delay": "0s", "parallelism": 32}},
        _app("node.labels.zone == a", "node.labels.zone != b"),
        _headers("User-Agent", "X-Country-Code", "Accept-Language"),
        {"brandclub:images": {"redis": "registry.example.com:5000/lib/redis:6.2@" + DIGEST}},
        _sites(kind="path", path="/opt/brand-club-sites"),
        {"brandclub:ingress": {"acmeCaServer": PRIVATE_ACME, "acmeCaCertificate": PRIVATE_CA}},
    ],
    ids=["start-period-0", "no-delay", "zone", "country-code", "ported", "near", "private-ca"],
)  # fmt: skip
def test_legitimate_values_near_the_new_rules_are_accepted(overrides: dict[str, Any]) -> None:
    render("prod", overrides)
