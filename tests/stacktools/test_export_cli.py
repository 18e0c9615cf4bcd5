"""The stack export's command line: ``python -m stacktools render``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import yaml

from components.config.units import parse_size
from export_checks import (
    SECRETS,
    memory_bytes,
    never_written,
)
from harness import REPO, render, stack_file_config
from stacktools.__main__ import main
from stacktools.export import EXPORT_DEFAULTS

# --- the command line ----------------------------------------------------------------------


SECRET_VARIABLES = (
    "BRANDCLUB_DB_ROOT_PASSWORD",
    "BRANDCLUB_ADMIN_PASSWORD",
    "BRANDCLUB_SECRET_NAME_KEY",
)


def _environment(secrets: dict[str, str] | None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    return {**environment, **(secrets or {})}


def _cli(
    *arguments: str, secrets: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m stacktools render ARGUMENTS``, run in this process (a new one costs a
    second of imports; test_cli_runs_as_a_module runs the module itself)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, _environment(secrets), clear=True),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        status = main(["render", *arguments])
    return subprocess.CompletedProcess(arguments, status, stdout.getvalue(), stderr.getvalue())


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "stacktools", "render", "--stack", "dev", "--out", str(tmp_path)],
        cwd=REPO,
        env=_environment(None),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "dev" / "manifest.json").exists()


def test_cli_writes_files_with_config_overlays(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "brandclub:images": {"app": "local/brandclub-standin"},
                    "brandclub:endpointMode": "dnsrr",
                    "brandclub:services": {"backend": {"replicas": 3}},
                }
            }
        )
    )
    completed = _cli(
        "--stack", "staging", "--out", str(tmp_path / "out"), "--config", str(overlay),
        "--set", "brandclub:services.frontend.replicas=2",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    directory = tmp_path / "out" / "staging"
    app = yaml.safe_load((directory / "brandclub-staging.yml").read_text())["services"]
    data = yaml.safe_load((directory / "brandclub-db-staging.yml").read_text())["services"]
    assert app["backend"]["deploy"]["replicas"] == 3
    assert app["frontend"]["deploy"]["replicas"] == 2
    # Deep merge: a key next to an overridden one keeps the stack file's value.
    backend_limits = stack_file_config("staging")["brandclub:services"]["backend"]["limits"]
    written_limits = app["backend"]["deploy"]["resources"]["limits"]
    assert memory_bytes(written_limits["memory"]) == parse_size(backend_limits["memory"])
    assert app["backend"]["image"] == "local/brandclub-standin:staging"
    assert {s["deploy"]["endpoint_mode"] for s in [*app.values(), *data.values()]} == {"dnsrr"}
    # The commands, in deploy order, with the paths just written.
    lines = completed.stdout.splitlines()
    deploys = [line.strip() for line in lines if "docker stack deploy" in line]
    assert deploys == [
        f"docker stack deploy -c {directory}/brandclub-db-staging.yml brandclub-db-staging",
        f"docker stack deploy -c {directory}/brandclub-staging.yml brandclub-staging",
    ]


def test_cli_reports_bad_input_without_writing(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("services: {backend: {replicas: 3}}\n")
    out = tmp_path / "out"
    completed = _cli("--stack", "dev", "--out", str(out), "--config", str(bare))
    assert completed.returncode == 2
    assert "namespace" in completed.stderr
    invalid = _cli(
        "--stack", "dev", "--out", str(out), "--set", "brandclub:services.backend.replicas=x"
    )
    assert invalid.returncode == 1
    assert "brandclub:services.backend.replicas" in invalid.stderr
    assert not out.exists()


def test_default_export_runs_the_plain_tag_and_digest_pins_it(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    unpinned = _cli("--stack", "dev", "--out", str(tmp_path / "plain"))
    pinned = _cli("--stack", "dev", "--out", str(tmp_path / "pinned"), "--digest", digest)
    assert unpinned.returncode == 0 and pinned.returncode == 0, unpinned.stderr + pinned.stderr
    tag = stack_file_config("dev")["brandclub:imageTag"]

    def app_images(out: str) -> set[str]:
        services = yaml.safe_load((tmp_path / out / "dev" / "brandclub-dev.yml").read_text())
        return {s["image"] for key, s in services["services"].items() if key != "mailpit"}

    assert app_images("plain") == {f"ghcr.io/brand-club/brandclub:{tag}"}
    assert app_images("pinned") == {f"ghcr.io/brand-club/brandclub:{tag}@{digest}"}


def test_cli_takes_secrets_from_the_environment_for_pulumis_secret_names(tmp_path: Path) -> None:
    values = dict(zip(SECRET_VARIABLES, SECRETS.values(), strict=True))
    with_values = _cli("--stack", "dev", "--out", str(tmp_path / "real"), secrets=values)
    without = _cli("--stack", "dev", "--out", str(tmp_path / "placeholder"))
    assert with_values.returncode == 0 and without.returncode == 0
    assert "BRANDCLUB_DB_ROOT_PASSWORD" in without.stderr
    assert "note:" not in with_values.stderr

    def secret_names(out: str) -> list[str]:
        manifest = json.loads((tmp_path / out / "dev" / "manifest.json").read_text())
        return [entry["name"] for entry in manifest["secrets"]]

    # The very names `pulumi up` gives for these values. The one secret a service mounts is
    # MariaDB's, pinned: its name carries no fingerprint, so the placeholder gives it too.
    deployed = render("dev", EXPORT_DEFAULTS, secrets=SECRETS).of_type("docker:index/secret:Secret")
    root = next(r.inputs["name"] for r in deployed if "mariadb" in r.inputs["name"])
    assert secret_names("real") == [root]
    assert secret_names("placeholder") == [root]
    never_written(tmp_path / "real" / "dev", list(SECRETS.values()))
