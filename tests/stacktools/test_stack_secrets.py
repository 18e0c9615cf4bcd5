"""stacktools.stack_secrets: a clean checkout plus the documented CI environment renders every
pipeline stack, its secrets read from the committed ciphertext."""

from __future__ import annotations

import shutil
from pathlib import Path

import pulumi_passphrase
import pytest
import yaml

from components.config.loader import ConfigError
from components.config.secret_rules import NAMESPACE, SECRET_KEYS
from harness import NO_ROOT_PASSWORD, REPO, TEST_SECRETS, render, stack_file_config
from stacktools import backend, environments, pipeline, stack_secrets

PASSPHRASE = "the-environment-secret-PULUMI_CONFIG_PASSPHRASE"


def clean_checkout(tmp_path: Path, stack: str) -> Path:
    """The project and the stack's file, as `git clone` gives them."""
    for name in ("Pulumi.yaml", f"Pulumi.{stack}.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def set_secrets(checkout: Path, stack: str, values: dict[str, str]) -> None:
    """What the operator's `pulumi stack change-secrets-provider passphrase` and
    `pulumi config set --secret` leave in the stack file, to be committed."""
    path = checkout / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    for key in stack_secrets.OTHER_PROVIDER_KEYS:
        document.pop(key, None)
    salt = pulumi_passphrase.new_salt(PASSPHRASE)
    document[stack_secrets.SALT_KEY] = salt
    for key, value in values.items():
        document["config"][key] = {"secure": pulumi_passphrase.encrypt(PASSPHRASE, salt, value)}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def ci_secrets(checkout: Path, stack: str, environ: dict[str, str]) -> dict[str, str]:
    """The secret config values the Pulumi CLI hands the program in CI: each committed
    ciphertext, unlocked with the environment's passphrase."""
    document = yaml.safe_load((checkout / f"Pulumi.{stack}.yaml").read_text())
    salt = document[stack_secrets.SALT_KEY]
    return {
        key: pulumi_passphrase.decrypt(environ[backend.PASSPHRASE], salt, value["secure"])
        for key, value in document["config"].items()
        if stack_secrets.is_ciphertext(value)
    }


def documented_ci_environment() -> dict[str, str]:
    """A deploy job's environment: every secret its GitHub environment holds (Pulumi Cloud)."""
    environ = {name: f"value of {name}" for name in environments.ENVIRONMENT_SECRETS}
    environ["PULUMI_BACKEND_URL"] = ""
    environ[backend.PASSPHRASE] = PASSPHRASE
    return environ


@pytest.mark.parametrize("stack", pipeline.STACKS)
def test_a_clean_checkout_and_the_ci_environment_render_the_stack(
    tmp_path: Path, stack: str
) -> None:
    checkout = clean_checkout(tmp_path, stack)
    set_secrets(checkout, stack, TEST_SECRETS)
    assert stack_secrets.stack_problems(stack, checkout) == []
    environ = documented_ci_environment()
    assert backend.main(["--stack", stack], environ) == 0
    secrets = ci_secrets(checkout, stack, environ)
    assert secrets == TEST_SECRETS
    # The committed ciphertext is no config value of its own: the program sees the rest of the
    # file as it is in the repository, and the secrets as the CLI decrypted them.
    committed = yaml.safe_load((checkout / f"Pulumi.{stack}.yaml").read_text())["config"]
    plain = {k: v for k, v in committed.items() if not stack_secrets.is_ciphertext(v)}
    assert plain.keys() == {
        k for k, v in stack_file_config(stack).items() if not stack_secrets.is_ciphertext(v)
    }
    rendering = render(stack, secrets=secrets)
    assert rendering.services, stack


def test_the_offline_engine_ignores_committed_ciphertext(tmp_path: Path) -> None:
    # The unit tier renders with stand-in secrets and no passphrase: a committed ciphertext
    # must neither count as a value nor be taken for a plain-text one.
    checkout = clean_checkout(tmp_path, "dev")
    set_secrets(checkout, "dev", TEST_SECRETS)
    committed = yaml.safe_load((checkout / "Pulumi.dev.yaml").read_text())["config"]
    with pytest.raises(ConfigError, match="dbRootPassword: found nothing; expected a secret"):
        render("dev", config=committed, secrets=NO_ROOT_PASSWORD, cached=False)


def test_a_wrong_passphrase_unlocks_nothing(tmp_path: Path) -> None:
    checkout = clean_checkout(tmp_path, "dev")
    set_secrets(checkout, "dev", TEST_SECRETS)
    environ = documented_ci_environment() | {backend.PASSPHRASE: "another stack's passphrase"}
    with pytest.raises(pulumi_passphrase.WrongPassphraseError):
        ci_secrets(checkout, "dev", environ)


def test_the_environment_documents_every_credential_the_backends_need() -> None:
    needed = {name for names in backend.CREDENTIALS.values() for name in names}
    assert needed | {backend.PASSPHRASE, "PULUMI_BACKEND_URL"} <= environments.ENVIRONMENT_SECRETS


def test_a_stack_file_without_ciphertext_names_each_missing_piece(tmp_path: Path) -> None:
    checkout = clean_checkout(tmp_path, "staging")
    document = yaml.safe_load((checkout / "Pulumi.staging.yaml").read_text())
    for key in (stack_secrets.SALT_KEY, *(f"{NAMESPACE}:{k}" for k in SECRET_KEYS)):
        document.pop(key, None)
        document["config"].pop(key, None)
    found = stack_secrets.problems(document, "staging")
    assert len(found) == 1 + len(SECRET_KEYS)
    assert "change-secrets-provider passphrase --stack staging" in found[0]
    for key, problem in zip(SECRET_KEYS, found[1:], strict=True):
        assert f"pulumi config set --secret {NAMESPACE}:{key} <value> --stack staging" in problem


def test_plain_text_and_other_providers_are_refused() -> None:
    document = {
        "secretsprovider": "awskms://alias/x",
        "encryptedkey": "abc",
        stack_secrets.SALT_KEY: "v1:c2FsdA==:v1:a:b",
        "config": {f"{NAMESPACE}:{key}": "plain" for key in SECRET_KEYS},
    }
    found = stack_secrets.problems(document, "prod")
    assert "another secrets provider (secretsprovider, encryptedkey)" in found[0]
    assert [p for p in found[1:] if "in plain text" in p] == found[1:]
    assert len(found) == 1 + len(SECRET_KEYS)


def test_cli_fails_until_the_ciphertext_is_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = clean_checkout(tmp_path, "dev")
    monkeypatch.setattr(stack_secrets, "REPO", checkout)
    document = yaml.safe_load((checkout / "Pulumi.dev.yaml").read_text())
    document.pop(stack_secrets.SALT_KEY, None)
    (checkout / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    assert stack_secrets.main(["check", "--stack", "dev"]) == 2
    assert "PULUMI_CONFIG_PASSPHRASE" in capsys.readouterr().err
    set_secrets(checkout, "dev", TEST_SECRETS)
    assert stack_secrets.main(["check", "--stack", "dev"]) == 0
