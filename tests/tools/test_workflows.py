"""The delivery workflows: a lint that can fail, and the facts they share with the program."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.config.model import BRANCH_FOR_ENVIRONMENT
from stacktools import environments, pipeline

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
LINT = REPO / "tools" / "lint-workflows.sh"
VALID = """\
on: push
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.sha }}"
"""


def workflow(name: str) -> dict:
    # PyYAML reads the key "on" as the boolean True.
    return yaml.safe_load((WORKFLOWS / name).read_text())


def run_lint(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "candidate.yml"
    path.write_text(text)
    return subprocess.run(
        [str(LINT), str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def test_lint_passes_a_valid_workflow(tmp_path: Path) -> None:
    result = run_lint(tmp_path, VALID)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("broken", "finding"),
    [
        # Valid YAML and valid against the schema: only actionlint's expression check sees it.
        (VALID.replace("github.sha", "github.shaa"), 'property "shaa" is not defined'),
        (VALID.replace("steps:", "stepz:"), 'unexpected key "stepz"'),
        (
            VALID.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    timeout: 5"),
            "timeout",
        ),
    ],
)
def test_lint_fails_a_broken_workflow(tmp_path: Path, broken: str, finding: str) -> None:
    result = run_lint(tmp_path, broken)
    assert result.returncode != 0
    assert finding in result.stdout


def test_workflows_exist_and_are_linted_by_test_sh() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == [
        "build-image.yml",
        "deploy.yml",
        "drift.yml",
        "live.yml",
        "preview.yml",
    ]
    assert "tools/lint-workflows.sh" in (REPO / "test.sh").read_text()


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("deploy.yml", "push"),
        ("preview.yml", "pull_request"),
        ("live.yml", "push"),
        ("live.yml", "pull_request"),
    ],
)
def test_triggering_branches_are_the_programs(name: str, event: str) -> None:
    branches = workflow(name)[True][event]["branches"]
    assert sorted(branches) == sorted(BRANCH_FOR_ENVIRONMENT.values())


def test_pulumi_cli_matches_the_sdk_pin() -> None:
    sdk = re.search(r"^pulumi==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert sdk is not None
    for name in ("deploy.yml", "preview.yml", "drift.yml"):
        assert workflow(name)["env"]["PULUMI_VERSION"] == sdk.group(1), name


def _uses(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["uses"]] if isinstance(node.get("uses"), str) else []
        return found + [u for value in node.values() for u in _uses(value)]
    if isinstance(node, list):
        return [u for value in node for u in _uses(value)]
    return []


# Every remote action by the full commit it was reviewed at, its release in the comment:
# a tag can be moved, a commit cannot.
PINNED = re.compile(r"uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")
# The Node 20 runtime is being retired on GitHub's runners: each action is at a release that
# runs on Node 24 (checked in each action's action.yml at that commit).
RELEASES = {
    "actions/checkout": "v7.0.1",
    "actions/setup-python": "v7.0.0",
    "actions/upload-artifact": "v7.0.0",
    "docker/setup-buildx-action": "v4.3.0",
    "docker/login-action": "v4.1.0",
    "docker/build-push-action": "v7.3.0",
    "pulumi/actions": "v7.0.0",
}


def _action_files() -> list[Path]:
    return [*WORKFLOWS.glob("*.yml"), *REPO.glob(".github/actions/*/action.yml")]


def test_every_action_is_pinned_to_a_commit_with_its_release() -> None:
    files = _action_files()
    uses = [u for path in files for u in _uses(yaml.safe_load(path.read_text()))]
    remote = [u for u in uses if not u.startswith("./")]
    assert remote, "no actions found"
    lines = [
        line.strip().removeprefix("- ")
        for path in files
        for line in path.read_text().splitlines()
        if re.match(r"\s*(- )?uses: (?!\./)", line)
    ]
    assert len(lines) == len(remote)
    found = {}
    for line in lines:
        match = PINNED.fullmatch(line)
        assert match, line
        name, commit, release = match.groups()
        assert found.setdefault(name, (commit, release)) == (commit, release), name
    assert {name: release for name, (_, release) in found.items()} == RELEASES


def test_deploy_is_one_at_a_time_per_stack_and_prod_needs_approval() -> None:
    deploy = workflow("deploy.yml")["jobs"]["deploy"]
    assert deploy["concurrency"] == {
        "group": "deploy-${{ needs.target.outputs.stack }}",
        "cancel-in-progress": False,
    }
    assert deploy["environment"] == "${{ needs.target.outputs.github-environment }}"
    assert set(deploy["needs"]) == {"target", "image"}
    assert pipeline.target_for_branch("main").github_environment == "production"
    script = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert 'pulumi config set brandclub:imageTag "$TAG" --stack "$QUALIFIED"' in script
    assert "--policy-pack policy" in script
    # The run deploys the digest its own image job pushed, not whatever a tag points at now.
    assert 'pulumi config set brandclub:imageDigest "$DIGEST" --stack "$QUALIFIED"' in script
    [rollout] = [step for step in deploy["steps"] if "imageDigest" in step.get("run", "")]
    assert rollout["env"]["DIGEST"] == "${{ needs.image.outputs.digest }}"
    assert rollout["env"]["TAG"] == "${{ needs.image.outputs.tag }}"
    assert rollout["env"]["QUALIFIED"] == "${{ steps.session.outputs.stack }}"
    assert script.index("docker login ghcr.io") < script.index("pulumi up")


def _step_index(steps: list[dict], text: str) -> int:
    [index] = [i for i, step in enumerate(steps) if text in step.get("run", "")]
    return index


def test_only_the_branch_head_deploys_and_the_branch_tag_moves_after_the_deploy() -> None:
    jobs = workflow("deploy.yml")["jobs"]
    steps = jobs["deploy"]["steps"]
    head = _step_index(steps, "git/ref/heads/$BRANCH")
    assert head == 0 and steps[head]["id"] == "head"
    assert '[[ $head == "$GITHUB_SHA" ]]' in steps[head]["run"]
    # Every later step runs only for the head commit.
    assert {step.get("if") for step in steps[1:]} == {"steps.head.outputs.current == 'true'"}
    up = _step_index(steps, "pulumi up")
    move = _step_index(steps, "imagetools create")
    assert up < move
    assert steps[move]["run"] == (
        'docker buildx imagetools create --tag "$IMAGE:$BRANCH" "$IMAGE@$DIGEST"'
    )
    # The build pushes only its own commit's tag: nothing but a deploy moves `:<branch>`.
    push = next(
        s for s in workflow("build-image.yml")["jobs"]["build"]["steps"] if s.get("id") == "push"
    )
    assert push["with"]["tags"] == "${{ inputs.image }}:${{ steps.tag.outputs.tag }}"
    moving = [
        (path.name, line)
        for path in WORKFLOWS.glob("*.yml")
        for line in path.read_text().splitlines()
        if "imagetools create" in line or "docker tag" in line or "docker push" in line
    ]
    assert [name for name, _ in moving] == ["deploy.yml"]


def test_a_build_by_hand_cannot_move_a_deploy_tag() -> None:
    build = workflow("build-image.yml")
    assert set(build[True]["workflow_dispatch"]["inputs"]) == {
        "image",
        "legacy-apps-json-build-arg",
    }
    [tag] = [s for s in build["jobs"]["build"]["steps"] if s.get("id") == "tag"]
    assert "github.event_name == 'workflow_dispatch'" in tag["env"]["BY_HAND"]
    assert "prefix=manual" in tag["run"]
    assert 'echo "tag=$prefix-$GITHUB_SHA"' in tag["run"]


def test_the_image_build_gets_the_one_secret_it_needs() -> None:
    image = workflow("deploy.yml")["jobs"]["image"]
    assert image["secrets"] == {"APPS_JSON": "${{ secrets.APPS_JSON }}"}
    declared = workflow("build-image.yml")[True]["workflow_call"]["secrets"]
    assert set(declared) == {"APPS_JSON"} == set(environments.REPOSITORY_SECRETS)


@pytest.mark.parametrize(
    ("name", "job", "environment"),
    [
        ("deploy.yml", "deploy", "${{ needs.target.outputs.github-environment }}"),
        ("preview.yml", "preview", "${{ needs.tests.outputs.preview-environment }}"),
        ("drift.yml", "drift", "${{ matrix.environment }}"),
    ],
)
def test_each_job_with_credentials_runs_in_its_own_environment(
    name: str, job: str, environment: str
) -> None:
    document = workflow(name)
    assert document["jobs"][job]["environment"] == environment
    text = (WORKFLOWS / name).read_text()
    # No other job of the workflow reads a stack's credentials.
    for other, spec in document["jobs"].items():
        if other != job:
            assert not set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(spec))) & (
                environments.ENVIRONMENT_SECRETS
            ), other
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in text


def test_deploy_installs_only_the_programs_hashed_requirements() -> None:
    steps = workflow("deploy.yml")["jobs"]["deploy"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    assert "setup.sh" not in script and "requirements-dev" not in script
    assert "--require-hashes --no-deps -r requirements.lock" in script
    assert re.search(r"--require-hashes --no-deps \\\s+-r policy/requirements\.lock", script)
    install = _step_index(steps, "--require-hashes")
    session = next(
        i for i, s in enumerate(steps) if s.get("uses") == "./.github/actions/pulumi-session"
    )
    assert install < session, "dependencies are installed before any credential is on the runner"


@pytest.mark.parametrize(
    ("lock", "source"),
    [
        ("requirements.lock", "requirements.txt"),
        ("policy/requirements.lock", "policy/requirements.txt"),
    ],
)
def test_the_locks_pin_what_the_requirements_pin(lock: str, source: str) -> None:
    def pins(path: str) -> dict[str, str]:
        found = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / path).read_text(), re.M)
        return {name.lower().replace("_", "-"): version for name, version in found}

    locked = pins(lock)
    assert pins(source).items() <= locked.items()
    # Every locked package carries at least one hash.
    text = (REPO / lock).read_text()
    assert text.count("==") == len(locked) and text.count("--hash=sha256:") >= len(locked)


def test_image_is_built_with_the_buildkit_secret_and_legacy_arg_only_on_request() -> None:
    build = workflow("build-image.yml")
    legacy = build[True]["workflow_call"]["inputs"]["legacy-apps-json-build-arg"]
    assert legacy == {
        "description": legacy["description"],
        "type": "boolean",
        "default": False,
    }
    frappe = next(s for s in build["jobs"]["build"]["steps"] if s.get("id") == "frappe")
    assert frappe["with"]["secret-files"] == "apps_json=${{ steps.apps.outputs.file }}"
    assert "APPS_JSON_BASE64" not in frappe["with"]["build-args"]
    assert "${{ steps.tag.outputs.tag }}" in frappe["with"]["tags"]


def test_preview_runs_tests_first_and_uses_the_policy_pack() -> None:
    jobs = workflow("preview.yml")["jobs"]
    assert jobs["preview"]["needs"] == "tests"
    assert any(step.get("run") == UNIT_TIER for step in jobs["tests"]["steps"])
    script = "\n".join(step.get("run", "") for step in jobs["preview"]["steps"])
    assert 'pulumi preview --stack "$QUALIFIED" --diff --non-interactive --policy-pack policy' in (
        script
    )


def test_a_failed_preview_reaches_the_pull_request_and_a_newer_push_cancels_it() -> None:
    preview = workflow("preview.yml")["jobs"]["preview"]
    assert preview["concurrency"] == {
        "group": "preview-${{ github.event.pull_request.number }}",
        "cancel-in-progress": True,
    }
    steps = preview["steps"]
    run = _step_index(steps, "pulumi preview")
    comment = _step_index(steps, "stacktools.preview_comment")
    result = _step_index(steps, 'exit "$STATUS"')
    assert run < comment < result
    assert "status=${PIPESTATUS[0]}" in steps[run]["run"]
    assert steps[run]["run"].index("set +e") < steps[run]["run"].index("pulumi preview")
    assert steps[comment]["if"] == "always() && steps.preview.outputs.status != ''"
    assert preview["permissions"]["pull-requests"] == "write"


def test_drift_schedules_cover_every_stack_once() -> None:
    drift = workflow("drift.yml")
    crons = [entry["cron"] for entry in drift[True]["schedule"]]
    picked = [pipeline.drift_stacks(schedule=cron) for cron in crons]
    assert picked == [["prod"], ["dev", "staging"]]
    assert sorted(s for stacks in picked for s in stacks) == sorted(pipeline.STACKS)
    script = "\n".join(step.get("run", "") for step in drift["jobs"]["drift"]["steps"])
    assert 'pulumi refresh --stack "$QUALIFIED" --preview-only --expect-no-changes --json' in script
    assert "python -m stacktools.drift" in script


def _runs_a_day(cron: str) -> int:
    minute, hour = cron.split()[:2]
    assert minute.isdigit(), cron
    if hour.isdigit():
        return 1
    step = int(hour.removeprefix("*/")) if hour.startswith("*/") else 1
    return 24 // step


def test_drift_costs_at_most_a_dozen_runs_a_day() -> None:
    crons = [entry["cron"] for entry in workflow("drift.yml")[True]["schedule"]]
    # Each run is two jobs with a full setup: hourly would be 48 jobs a day for prod alone.
    assert sum(_runs_a_day(cron) for cron in crons) <= 12


def test_drift_and_failed_checks_reach_an_issue_and_a_deploy_is_waited_for_not_skipped() -> None:
    job = workflow("drift.yml")["jobs"]["drift"]
    assert job["permissions"]["issues"] == "write"
    steps = job["steps"]
    alert = _step_index(steps, "gh issue create")
    assert alert == len(steps) - 1 and steps[alert]["if"] == "always()"
    assert steps[alert]["env"]["OUTCOME"] == "${{ steps.refresh.outputs.outcome }}"
    for command in ("gh issue comment", "gh issue close"):
        assert command in steps[alert]["run"]
    # No step is skipped because of a deploy: the check waits for it, and fails if it cannot.
    wait = _step_index(steps, "--status in_progress")
    assert "exit 1" in steps[wait]["run"]
    # It waits for the job that touches the swarm, by the name GitHub gives it: its id.
    assert 'select(.name == "deploy" and .status == "in_progress")' in steps[wait]["run"]
    assert "name" not in workflow("deploy.yml")["jobs"]["deploy"]
    assert all("deploy" not in str(step.get("if", "")) for step in steps)
    refresh = steps[_step_index(steps, "pulumi refresh")]
    assert refresh["id"] == "refresh" and 'exit "$outcome"' in refresh["run"]


def test_codeowners_guard_the_pipeline() -> None:
    owners = (REPO / ".github" / "CODEOWNERS").read_text()
    rules = dict(
        line.split(None, 1) for line in owners.splitlines() if line and not line.startswith("#")
    )
    for path in ("/.github/", "/stacktools/pipeline.py", "/Pulumi.*.yaml", "/requirements.lock"):
        assert rules[path].strip().startswith("@"), path


def test_the_session_refuses_a_backend_ci_cannot_use_before_logging_in() -> None:
    action = yaml.safe_load((REPO / ".github/actions/pulumi-session/action.yml").read_text())
    runs = [step.get("run", "") for step in action["runs"]["steps"]]
    check = next(i for i, run in enumerate(runs) if "-m stacktools.backend" in run)
    login = next(i for i, run in enumerate(runs) if "pulumi login" in run)
    assert check < login
    assert 'pulumi stack select "$QUALIFIED"' in runs[login]
    # The token reaches the login step only; later steps read ~/.pulumi/credentials.json.
    steps = action["runs"]["steps"]
    assert [i for i, s in enumerate(steps) if "inputs.access-token" in str(s.get("env"))] == [
        check,
        login,
    ]


# frappe_docker's release workflow (core-build-stable.yml) builds version-15 with this pair;
# the Containerfile's own defaults are version-16's.
FRAPPE_TOOLCHAIN = {"version-15": {"PYTHON_VERSION": "3.11.6", "NODE_VERSION": "20.19.2"}}
# The reviewed frappe_docker commit (its Containerfile takes both as build args).
FRAPPE_DOCKER_COMMIT = "4b9d35666abd84157ffadbf67558bbd3e1e39de7"


def _build_args(step: dict) -> dict[str, str]:
    lines = [line.strip() for line in step["with"]["build-args"].splitlines() if line.strip()]
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_image_recipe_is_pinned_to_a_reviewed_frappe_docker_commit() -> None:
    build = workflow("build-image.yml")
    assert build["env"]["FRAPPE_DOCKER_REF"] == FRAPPE_DOCKER_COMMIT
    checkout = next(
        s
        for s in build["jobs"]["build"]["steps"]
        if s.get("with", {}).get("repository") == "frappe/frappe_docker"
    )
    assert checkout["with"]["ref"] == "${{ env.FRAPPE_DOCKER_REF }}"


def test_image_is_built_with_frappe_dockers_python_and_node_for_the_branch() -> None:
    build = workflow("build-image.yml")
    env = build["env"]
    expected = FRAPPE_TOOLCHAIN[env["FRAPPE_BRANCH"]]
    assert {key: env[key] for key in expected} == expected
    frappe = next(s for s in build["jobs"]["build"]["steps"] if s.get("id") == "frappe")
    args = _build_args(frappe)
    for key in expected:
        assert args[key] == f"${{{{ env.{key} }}}}", key
    assert args["FRAPPE_BRANCH"] == "${{ env.FRAPPE_BRANCH }}"


def test_the_app_image_adds_the_off_site_tools_to_frappe_dockers_image() -> None:
    """age (encrypted off-site copies), rsync and ssh on top of the frappe_docker build, by its
    digest; the deployed tag is the second build's."""
    steps = workflow("build-image.yml")["jobs"]["build"]["steps"]
    ids = [step.get("id") for step in steps]
    assert ids.index("frappe") < ids.index("push")
    push = steps[ids.index("push")]
    assert push["with"]["file"] == "image/Containerfile"
    assert push["with"]["context"] == "image"
    assert _build_args(push) == {
        "FRAPPE_IMAGE": "${{ inputs.image }}@${{ steps.frappe.outputs.digest }}"
    }
    frappe_tag = steps[ids.index("frappe")]["with"]["tags"]
    assert frappe_tag == "${{ inputs.image }}:${{ steps.tag.outputs.tag }}-frappe"
    containerfile = (REPO / "image" / "Containerfile").read_text()
    [install] = [line for line in containerfile.splitlines() if "apt-get install" in line]
    assert {"age", "rsync", "openssh-client"} <= set(install.split())
    # Every service and job runs as frappe_docker's user.
    assert containerfile.rstrip().splitlines()[-1] == "USER frappe"


# --- each tier where it can run ------------------------------------------------------------
# A hosted runner is not root and already has Docker: the live tier would fail at its first
# apt-get there, or add its minutes to every pull request. Preview and deploy wait for lint and
# the unit tier only; the live tier is its own workflow, which nothing waits for.

UNIT_TIER = "BRANDCLUB_LIVE=0 ./test.sh"
GATED = ("preview.yml", "deploy.yml")


def _steps(document: dict) -> list[tuple[str, dict]]:
    return [(job, step) for job, spec in document["jobs"].items() for step in spec.get("steps", [])]


def _live_tier_steps(document: dict) -> list[tuple[str, dict]]:
    """Steps that run the live tier: test.sh without BRANDCLUB_LIVE=0, pytest -m live, .ci/run."""
    found = []
    for job, step in _steps(document):
        script = step.get("run", "")
        live_switch = {**document.get("env", {}), **step.get("env", {})}.get("BRANDCLUB_LIVE")
        runs_test_sh = "./test.sh" in script and "BRANDCLUB_LIVE=0" not in script
        if (
            (runs_test_sh and str(live_switch) != "0")
            or "BRANDCLUB_LIVE=1" in script
            or "-m live" in script
            or ".ci/run" in script
        ):
            found.append((job, step))
    return found


@pytest.mark.parametrize("name", GATED)
def test_preview_and_deploy_gate_on_lint_and_the_unit_tier_only(name: str) -> None:
    document = workflow(name)
    assert _live_tier_steps(document) == []
    unit = [job for job, step in _steps(document) if step.get("run") == UNIT_TIER]
    # The job that computes the target runs the tier, so everything after it waits for it.
    assert unit == [next(iter(document["jobs"]))]


def test_the_live_tier_is_its_own_workflow_that_nothing_waits_for() -> None:
    live = workflow("live.yml")
    # The live-swarm tier and the multi-node tier, both in the one job.
    assert [job for job, _ in _live_tier_steps(live)] == ["live", "live"]
    assert set(live[True]) == {"pull_request", "push", "workflow_dispatch"}
    # No workflow waits for it: no needs across workflows, no workflow_run trigger.
    for path in WORKFLOWS.glob("*.yml"):
        document = yaml.safe_load(path.read_text())
        assert "workflow_run" not in document[True], path.name
        if path.name != "live.yml":
            assert _live_tier_steps(document) == [], path.name
    # It uses no secret, so pull requests from forks get it too.
    assert "secrets." not in (WORKFLOWS / "live.yml").read_text()
    assert live["permissions"] == {"contents": "read"}


def test_the_live_tier_runs_on_a_hosted_runner() -> None:
    job = workflow("live.yml")["jobs"]["live"]
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    runs = [step.get("run", "") for step in steps]
    [tier] = [i for i, script in enumerate(runs) if "-m live" in script]
    # Root for apt-get, debootstrap, /var/cache and the daemon; the runner's own dockerd is used
    # because it answers; PATH is sudo's, so the virtualenv's python by path.
    assert (
        runs[tier] == "sudo BRANDCLUB_LIVE=1 .venv/bin/python -m pytest -m live -p no:cacheprovider"
    )
    [setup] = [i for i, script in enumerate(runs) if script == "./setup.sh"]
    [apt] = [i for i, script in enumerate(runs) if "sudo apt-get install" in script]
    assert setup < tier and apt < tier
    assert "debootstrap" in runs[apt] and "debian-archive-keyring" in runs[apt]
    # Every apt-get runs through sudo: the runner user is not root.
    for script in runs:
        for line in script.splitlines():
            assert "apt-get" not in line or line.strip().startswith("sudo apt-get"), line
    # The report is kept whether the tier passed or not.
    [report] = [
        step for step in steps if step.get("uses", "").startswith("actions/upload-artifact")
    ]
    assert report["if"] == "always()"
    assert report["with"]["path"].split() == [
        "build/live-report.json",
        "build/multinode-report.json",
    ]
    assert steps.index(report) > tier
    # The multi-node tier after the live one, whether that passed or failed, under its lock.
    [multinode] = [i for i, script in enumerate(runs) if "-m multinode" in script]
    assert tier < multinode < steps.index(report)
    assert steps[multinode]["if"] == "success() || failure()"
    assert runs[multinode].startswith("sudo BRANDCLUB_LIVE=1 flock /tmp/brandclub-multinode.lock")
