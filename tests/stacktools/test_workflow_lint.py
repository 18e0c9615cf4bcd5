"""stacktools.workflow_lint: what actionlint cannot check, each rule seen failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacktools import workflow_lint

ACTION = """\
name: Session
description: test
inputs:
  needed:
    description: required, no default
    required: true
  optional:
    description: has a default
    required: false
    default: ""
runs:
  using: composite
  steps:
    - run: "true"
      shell: bash
"""
CALLED = """\
on:
  workflow_call:
    inputs:
      tag: {type: string, required: true}
    secrets:
      APPS_JSON: {required: false}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "$X"
        env:
          X: ${{ secrets.APPS_JSON }}
"""
GOOD = """\
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - uses: ./.github/actions/session
        with:
          needed: ${{ secrets.SWARM_SSH_KEY }}
  image:
    uses: ./.github/workflows/called.yml
    with:
      tag: main
    secrets:
      APPS_JSON: ${{ secrets.APPS_JSON }}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".github" / "actions" / "session").mkdir(parents=True)
    (tmp_path / ".github" / "actions" / "session" / "action.yml").write_text(ACTION)
    (tmp_path / ".github" / "workflows").mkdir()
    (tmp_path / ".github" / "workflows" / "called.yml").write_text(CALLED)
    return tmp_path


def lint(repo: Path, text: str) -> list[str]:
    path = repo / ".github" / "workflows" / "candidate.yml"
    path.write_text(text)
    return workflow_lint.check_workflow(path, repo)


def test_a_good_workflow_and_a_reusable_one_pass(repo: Path) -> None:
    assert lint(repo, GOOD) == []
    assert workflow_lint.check_workflow(repo / ".github" / "workflows" / "called.yml", repo) == []


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (("needed: ${{", "neded: ${{"), "input 'neded' is not declared"),
        (("needed: ${{", "optional: ${{"), "required input 'needed' is not given"),
        (("    environment: production\n", ""), "secret SWARM_SSH_KEY does not exist in this job"),
        (("environment: production", "environment: prod"), "environment 'prod' is none of"),
        (("SWARM_SSH_KEY", "DEPLOY_SSH_KEY"), "secret DEPLOY_SSH_KEY does not exist"),
        (
            ("    secrets:\n      APPS_JSON: ${{ secrets.APPS_JSON }}", "    secrets: inherit"),
            "`secrets: inherit` hands",
        ),
        (("APPS_JSON: ${{", "OTHER: ${{"), "input 'OTHER' is not declared"),
        (("      tag: main\n", ""), "required input 'tag' is not given"),
        (
            (
                "    environment: production\n",
                "    environment: production\n"
                "    env:\n      T: ${{ secrets.PULUMI_ACCESS_TOKEN }}\n",
            ),
            "job env reads secret PULUMI_ACCESS_TOKEN",
        ),
        (
            ("on: push\n", "on: push\nenv:\n  T: ${{ secrets.APPS_JSON }}\n"),
            "workflow env reads secret APPS_JSON",
        ),
        (("./.github/actions/session", "./.github/actions/missing"), "has no action.yml"),
    ],
)
def test_each_rule_finds_its_fault(repo: Path, change: tuple[str, str], finding: str) -> None:
    old, new = change
    assert old in GOOD
    findings = lint(repo, GOOD.replace(old, new, 1))
    assert any(finding in line for line in findings), findings


def test_a_reusable_workflow_reads_only_the_secrets_it_declares(repo: Path) -> None:
    called = repo / ".github" / "workflows" / "called.yml"
    called.write_text(CALLED.replace("secrets.APPS_JSON", "secrets.SWARM_SSH_KEY"))
    [finding] = workflow_lint.check_workflow(called, repo)
    assert "secret SWARM_SSH_KEY does not exist" in finding


def test_cli_exit_status(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / ".github" / "workflows" / "called.yml"
    assert workflow_lint.main([str(path)]) == 0
    path.write_text(CALLED.replace("    secrets:\n      APPS_JSON: {required: false}\n", ""))
    assert workflow_lint.main([str(path)]) == 1
    assert "1 finding(s)" in capsys.readouterr().out
