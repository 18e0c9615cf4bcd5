"""stacktools.pipeline: the branch -> stack map the workflows ask for, from the program's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacktools import pipeline
from stacktools.engine import stack_file_config


@pytest.mark.parametrize(
    ("branch", "stack", "environment"),
    [("develop", "dev", "dev"), ("staging", "staging", "staging"), ("main", "prod", "production")],
)
def test_each_deploying_branch_has_its_stack(branch: str, stack: str, environment: str) -> None:
    found = pipeline.target_for_branch(branch)
    assert (found.stack, found.branch, found.github_environment) == (stack, branch, environment)
    assert pipeline.target_for_stack(stack) == found


def test_the_map_agrees_with_each_stack_files_image_tag() -> None:
    for stack in pipeline.STACKS:
        assert (
            stack_file_config(stack)["brandclub:imageTag"]
            == pipeline.target_for_stack(stack).branch
        )


def test_image_is_the_programs_app_repository() -> None:
    assert pipeline.target_for_stack("prod").image == "ghcr.io/brand-club/brandclub"


def test_the_local_stack_is_never_the_pipelines() -> None:
    assert "local" not in pipeline.STACKS
    assert "local" not in pipeline.drift_stacks(stack="all")
    with pytest.raises(pipeline.PipelineError, match=r"deployed by \./deploy\.sh local"):
        pipeline.target_for_stack("local")


@pytest.mark.parametrize("branch", ["feature/x", "master", ""])
def test_other_branches_deploy_nowhere(branch: str) -> None:
    with pytest.raises(pipeline.PipelineError, match="deploys nowhere"):
        pipeline.target_for_branch(branch)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"schedule": "17 * * * *"}, ["prod"]),
        ({"schedule": "17 */3 * * *"}, ["prod"]),
        ({"schedule": "43 5 * * *"}, ["dev", "staging"]),
        ({"stack": "all"}, ["dev", "staging", "prod"]),
        ({"stack": "staging"}, ["staging"]),
    ],
)
def test_drift_stacks(kwargs: dict[str, str], expected: list[str]) -> None:
    assert pipeline.drift_stacks(**kwargs) == expected


@pytest.mark.parametrize(
    "kwargs", [{}, {"schedule": "hourly"}, {"stack": "qa"}, {"schedule": "* * *"}]
)
def test_drift_stacks_refuses_what_it_cannot_map(kwargs: dict[str, str]) -> None:
    with pytest.raises(pipeline.PipelineError):
        pipeline.drift_stacks(**kwargs)


def test_cli_appends_to_github_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "output"
    output.write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert pipeline.main(["target", "--branch", "staging"]) == 0
    expected = "stack=staging\nbranch=staging\ngithub-environment=staging\n"
    assert output.read_text().startswith("earlier=1\n" + expected)
    assert capsys.readouterr().out.startswith(expected)


def test_cli_reports_an_unknown_branch(capsys: pytest.CaptureFixture[str]) -> None:
    assert pipeline.main(["target", "--branch", "hotfix"]) == 2
    assert "deploys nowhere" in capsys.readouterr().err


def test_each_role_has_its_own_environment_per_stack() -> None:
    found = pipeline.target_for_stack("prod")
    assert (found.github_environment, found.preview_environment, found.drift_environment) == (
        "production",
        "preview-production",
        "drift-production",
    )
    names = pipeline.github_environments()
    assert len(names) == len(set(names)) == len(pipeline.STACKS) * len(pipeline.ROLES)
    with pytest.raises(pipeline.PipelineError, match="no role"):
        pipeline.github_environment("dev", "admin")


def test_drift_matrix_carries_each_stacks_drift_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert pipeline.main(["drift-stacks", "--stack", "all"]) == 0
    lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert json.loads(lines["matrix"]) == [
        {"stack": "dev", "environment": "drift-dev"},
        {"stack": "staging", "environment": "drift-staging"},
        {"stack": "prod", "environment": "drift-production"},
    ]
