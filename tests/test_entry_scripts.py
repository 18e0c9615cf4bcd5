"""deploy.sh: the README's one command from a checkout to `pulumi up`, with a stand-in pulumi."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copy(REPO / "deploy.sh", tmp_path / "deploy.sh")
    (tmp_path / "setup.sh").write_text("#!/usr/bin/env bash\necho setup >> calls\n")
    (tmp_path / "setup.sh").chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text('#!/usr/bin/env bash\necho "pulumi $*" >> calls\n')
    (bin_dir / "pulumi").chmod(0o755)
    return tmp_path


def _deploy(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{workspace / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(workspace / "deploy.sh"), *args],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "pulumi"),
    [
        (["dev"], "pulumi up --stack dev --policy-pack policy"),
        (["prod", "preview"], "pulumi preview --stack prod --policy-pack policy"),
        (["staging", "up", "--yes"], "pulumi up --stack staging --policy-pack policy --yes"),
    ],
)
def test_sets_up_then_runs_pulumi(workspace: Path, args: list[str], pulumi: str) -> None:
    result = _deploy(workspace, *args)
    assert result.returncode == 0, result.stderr
    assert (workspace / "calls").read_text().splitlines() == ["setup", pulumi]


@pytest.mark.parametrize(
    ("args", "message"),
    [([], "usage"), (["qa"], "unknown stack 'qa'"), (["dev", "destroy"], "unknown action")],
)
def test_refuses_bad_arguments_before_doing_anything(
    workspace: Path, args: list[str], message: str
) -> None:
    result = _deploy(workspace, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (workspace / "calls").exists()


def test_sets_up_the_virtualenv_even_without_the_pulumi_cli(workspace: Path) -> None:
    # Only what deploy.sh and the stand-in setup.sh call, so no real pulumi can be found.
    tools = workspace / "tools"
    tools.mkdir()
    for tool in ("bash", "env", "dirname"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    (workspace / "bin" / "pulumi").unlink()
    result = subprocess.run(
        ["bash", str(workspace / "deploy.sh"), "dev"],
        cwd=workspace,
        env={"PATH": f"{workspace / 'bin'}:{tools}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert (workspace / "calls").read_text().splitlines() == ["setup"]
    assert "the Pulumi CLI is not installed" in result.stderr
    assert "curl -fsSL https://get.pulumi.com | sh" in result.stderr
