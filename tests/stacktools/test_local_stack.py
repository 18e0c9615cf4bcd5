"""stacktools/local_stack.py: the local stack's config file outside the tree, and its secrets."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from components.config.model import StackConfig
from harness import REPO
from stacktools import local_stack, pulumi_yaml

SECURE = {"brandclub:adminPassword": "v1:Zm9v", "brandclub:secretNameKey": "v1:YmFy"}


def test_the_config_file_is_the_tracked_settings_plus_this_machines_secrets(tmp_path: Path):
    path = tmp_path / "Pulumi.local.yaml"
    local_stack.write_config_file(path)
    tracked = pulumi_yaml.load(local_stack.TRACKED.read_text())["config"]
    assert pulumi_yaml.load(path.read_text())["config"] == tracked
    # What Pulumi adds on stack creation and `config set --secret`, then the next run.
    written = path.read_text().replace("config:\n", "config:\n" + "".join(
        f"  {key}:\n    secure: {value}\n" for key, value in SECURE.items()
    ), 1)  # fmt: skip
    path.write_text("encryptionsalt: v1:c2FsdA==:v1:abc:def\n" + written)
    local_stack.write_config_file(path)
    again = pulumi_yaml.load(path.read_text())
    assert again["encryptionsalt"] == "v1:c2FsdA==:v1:abc:def"
    assert again["config"] == tracked | {key: {"secure": v} for key, v in SECURE.items()}
    assert local_stack.missing_secrets(path) == ["dbRootPassword"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config:\n  brandclub:adminPassword:\n    secure: v1:x\n", "holds encrypted values"),
        ("encryptionsalt: v1:x\nconfig:\n  brandclub:environment: local\n", "encrypted values"),
        ("config:\n  brandclub:environment: local\nenvironment: [x]\n", "the last top-level key"),
    ],
    ids=["a-secret", "a-salt", "config-not-last"],
)
def test_a_tracked_file_it_cannot_extend_safely_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    tracked = tmp_path / "tracked.yaml"
    tracked.write_text(text)
    with pytest.raises(local_stack.LocalStackError, match=message):
        local_stack.write_config_file(tmp_path / "out.yaml", tracked)


def test_generated_secrets_pass_the_stacks_own_rules_and_never_repeat() -> None:
    for key in ("dbRootPassword", "adminPassword"):
        values = {local_stack.generate(key) for _ in range(20)}
        assert len(values) == 20
        for value in values:
            StackConfig._strong_password(SecretStr(value))
    key = local_stack.generate("secretNameKey")
    StackConfig._long_random_key(SecretStr(key))
    assert len(local_stack.generate("passphrase")) >= 32
    with pytest.raises(local_stack.LocalStackError):
        local_stack.generate("registryPassword")


def test_the_passphrase_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    local_stack.prepare(tmp_path)
    passphrase = tmp_path / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    first = passphrase.read_text()
    local_stack.prepare(tmp_path)
    assert passphrase.read_text() == first
    assert (tmp_path / "Pulumi.local.yaml").exists()


def test_it_loads_the_secret_rules_without_the_model() -> None:
    # deploy.sh runs it three times per deploy: the model would add pydantic to each start.
    loader = "import json, sys, stacktools.local_stack; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", loader], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    tops = {name.split(".")[0] for name in json.loads(loaded)}
    assert not tops & {"pydantic", "pulumi", "pulumi_docker"}
