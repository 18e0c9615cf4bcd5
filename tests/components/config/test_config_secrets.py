"""Stack configuration: secrets are encrypted stack secrets, strong, and never echoed."""

from __future__ import annotations

import pytest

from harness import (
    NO_ROOT_PASSWORD,
    TEST_SECRETS,
    problem_at,
    render,
    render_error,
)

MiB = 1024**2
GiB = 1024**3

SET_SECRET = "pulumi config set --secret brandclub:dbRootPassword <value> --stack dev"
# Every test secret but the root password, which these tests leave out or misplace.


def test_missing_secret_says_how_to_set_it() -> None:
    error, registered = render_error("dev", secrets=NO_ROOT_PASSWORD)
    assert registered == []
    problem = problem_at(error, "brandclub:dbRootPassword")
    assert problem.found == "nothing"
    assert SET_SECRET in problem.expected
    assert len(error.problems) == 1


@pytest.mark.parametrize("password", ["pw", "Plain-Text-Zq8!leak"], ids=["short", "long"])
def test_plain_text_secret_is_rejected_without_echoing_it(password: str) -> None:
    error, registered = render_error(
        "dev", overrides={"brandclub:dbRootPassword": password}, secrets=NO_ROOT_PASSWORD
    )
    assert registered == []
    problem = problem_at(error, "brandclub:dbRootPassword")
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
    problem_at(error, "brandclub:dbRootPassword")
    typo = problem_at(error, "brandclub:dbRootPasword")
    assert "did you mean 'dbRootPassword'?" in typo.expected
    assert password not in str(error)


def test_secret_that_looks_like_json_is_accepted() -> None:
    # A password is text, whatever characters it starts with.
    render("dev", secrets={**TEST_SECRETS, "brandclub:dbRootPassword": '{"a": 1, "b": "Zq8"}'})


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
    problem = problem_at(error, key)
    assert "at least 12 characters and 3 of the 4 character classes" in problem.expected
    assert problem.found == "a secret value (not shown)"
    if len(password) > 3:  # "a" is in any English sentence
        assert password not in str(error).replace(key, "")


@pytest.mark.parametrize(
    "password", ["Summer2024!x", "correct-horse-7", "CORRECT-HORSE-7", "Zq8" + "x" * 9]
)
def test_strong_enough_password_is_accepted(password: str) -> None:
    render("dev", secrets={**TEST_SECRETS, "brandclub:adminPassword": password})
