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
from tests.harness import (
    DELETE,
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
