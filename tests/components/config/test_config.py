"""Stack configuration: the three stack files load, and every bad input stops the program.

A bad ``Pulumi.<stack>.yaml`` must fail before a single resource is registered, with one
:class:`ConfigError` naming each bad key as the operator writes it, the value found and what is
expected. The other files of this kind: test_config_guardrails.py (values that reach mounts,
constraints, images and headers), test_config_ingress.py, test_config_secrets.py and
test_config_rules.py (rules across keys, every problem at once).
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import (
    DELETE,
    STACKS,
    assert_reported_before_registering,
    render,
)

MiB = 1024**2
GiB = 1024**3

_MAILPIT = {
    "replicas": 1,
    "limits": {"cpus": 0.25, "memory": "128M"},
    "reservations": {"cpus": 0.05, "memory": "32M"},
}


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
        "'dev', 'staging', 'prod' or 'local'",
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
    assert_reported_before_registering(stack, overrides, key, expected, found)
