"""stacktools.environments: one GitHub environment per stack and role, and their secrets."""

from __future__ import annotations

import pytest

from stacktools import environments


@pytest.mark.parametrize(
    ("stack", "role", "name"),
    [
        ("prod", environments.DEPLOY, "production"),
        ("prod", environments.PREVIEW, "preview-production"),
        ("prod", environments.DRIFT, "drift-production"),
        ("dev", environments.DEPLOY, "dev"),
        ("staging", environments.DRIFT, "drift-staging"),
    ],
)
def test_environment_names(stack: str, role: str, name: str) -> None:
    assert environments.github_environment(stack, role) == name


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(environments.RoleError, match="no role 'admin'"):
        environments.github_environment("dev", "admin")


def test_no_secret_is_both_a_repository_and_an_environment_secret() -> None:
    assert not environments.REPOSITORY_SECRETS & environments.ENVIRONMENT_SECRETS
