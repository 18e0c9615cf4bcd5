"""stacktools.drift on the engine documents in tests/fixtures/drift (see its README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components import pulumi_sdk
from stacktools import drift

FIXTURES = Path(__file__).parents[1] / "fixtures" / "drift"
REPO = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/brand-club/brandclub:main"
DIGEST = "sha256:5f0c3f4d7f1f2f6b9a3e1d2c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f40312"
SERVICE = "docker:index/service:Service"


def report(name: str) -> drift.Report:
    return drift.analyse(json.loads((FIXTURES / name).read_text()), "prod")


def test_no_drift() -> None:
    found = report("no-drift.json")
    assert (found.drifted, found.errors, found.exit_code) == ([], [], drift.NO_DRIFT)
    assert found.summary == {"same": 27}


def test_scaled_service() -> None:
    found = report("replicas-scaled.json")
    assert found.drifted == [
        drift.Drifted(
            SERVICE,
            "app-backend",
            "brandclub-prod_backend",
            "changed",
            (drift.Change("mode.replicated.replicas", "2", "4"),),
        )
    ]
    assert found.exit_code == drift.DRIFT


def test_webhook_redeploy_shows_the_repinned_image() -> None:
    found = report("image-webhook-redeploy.json")
    assert [(d.name, d.swarm_name) for d in found.drifted] == [
        ("app-backend", "brandclub-prod_backend"),
        ("app-frontend", "brandclub-prod_frontend"),
    ]
    assert found.drifted[0].changes == (
        drift.Change("taskSpec.containerSpec.image", f'"{IMAGE}"', f'"{IMAGE}@{DIGEST}"'),
        drift.Change("taskSpec.forceUpdate", "(absent)", "1"),
    )


def test_deleted_service() -> None:
    found = report("service-deleted.json")
    assert found.drifted == [
        drift.Drifted(SERVICE, "app-queue-long", "brandclub-prod_queue-long", "deleted")
    ]


def test_engine_error_is_never_no_drift() -> None:
    found = report("engine-error.json")
    assert found.exit_code == drift.UNREADABLE
    assert found.drifted == []
    assert found.errors[0].startswith("data-internal-network: Error pinging Docker server")
    assert "Host key verification failed" in found.errors[0]
    assert found.errors[1] == "preview failed"


def test_the_expect_no_changes_error_is_the_finding_not_a_failure() -> None:
    document = json.loads((FIXTURES / "replicas-scaled.json").read_text())
    document["diagnostics"] = [
        {
            "message": "error: no changes were expected but changes were proposed",
            "severity": "error",
        }
    ]
    assert drift.analyse(document).exit_code == drift.DRIFT


def test_a_refresh_op_without_detailed_diff_is_compared_output_by_output() -> None:
    document = json.loads((FIXTURES / "replicas-scaled.json").read_text())
    step = next(s for s in document["steps"] if s["op"] == "update")
    step.update(op="refresh", detailedDiff=None)
    unchanged = next(s for s in document["steps"] if s["op"] == "same")
    unchanged["op"] = "refresh"
    found = drift.analyse(document)
    assert [(d.name, d.changes) for d in found.drifted] == [
        ("app-backend", (drift.Change("mode.replicated.replicas", "2", "4"),))
    ]


def test_secrets_are_never_printed() -> None:
    document = json.loads((FIXTURES / "replicas-scaled.json").read_text())
    step = next(s for s in document["steps"] if s["op"] == "update")
    step["oldState"]["outputs"]["taskSpec"]["containerSpec"]["env"]["API_TOKEN"] = "[secret]"
    step["newState"]["outputs"]["taskSpec"]["containerSpec"]["env"]["API_TOKEN"] = {
        drift.SECRET_SIG_KEY: pulumi_sdk.SECRET_SIG,
        "plaintext": '"hunter2-live"',
    }
    step["detailedDiff"]["taskSpec.containerSpec.env.API_TOKEN"] = {"kind": "update"}
    rendered = drift.markdown(drift.analyse(document)) + drift.text(drift.analyse(document))
    assert "hunter2" not in rendered
    assert "| `taskSpec.containerSpec.env.API_TOKEN` | `[secret]` | `[secret]` |" in rendered


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("mode.replicated.replicas", ["mode", "replicated", "replicas"]),
        ("taskSpec.networksAdvanceds[1].id", ["taskSpec", "networksAdvanceds", 1, "id"]),
        ('labels["traefik.enable"]', ["labels", "traefik.enable"]),
    ],
)
def test_split_path(path: str, parts: list) -> None:
    assert drift.split_path(path) == parts


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "Expecting value"),
        ("Error: no stack named 'prod' found", "Expecting value"),
        ("[]", "expected a JSON object"),
        ("{}", "not an engine result"),
        ('{"steps": [{"urn": "x"}]}', "without op/urn"),
    ],
)
def test_unreadable_documents_exit_2(tmp_path: Path, content: str, reason: str) -> None:
    document = tmp_path / "refresh.json"
    document.write_text(content)
    summary = tmp_path / "summary.md"
    result = subprocess.run(
        [sys.executable, "-m", "stacktools.drift", str(document), "--summary", str(summary)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == drift.UNREADABLE
    assert reason in result.stderr
    assert summary.read_text().startswith("## Drift check failed: cannot read")


def test_cli_writes_the_job_summary_and_exits_1_on_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = drift.main([str(FIXTURES / "replicas-scaled.json"), "--stack", "prod"])
    assert code == drift.DRIFT
    assert summary.read_text() == (
        "earlier step\n"
        "## Drift in stack `prod`: 1 resource(s) differ from Pulumi's state\n\n"
        "### docker:index/service:Service `app-backend` (`brandclub-prod_backend`)\n\n"
        "| property | state (Pulumi) | live (swarm) |\n"
        "|---|---|---|\n"
        "| `mode.replicated.replicas` | `2` | `4` |\n\n"
    )
    assert capsys.readouterr().out == (
        "Drift in stack prod: 1 resource(s) differ from Pulumi's state\n"
        "- docker:index/service:Service app-backend (brandclub-prod_backend)\n"
        "    mode.replicated.replicas: state 2 -> live 4\n"
    )


def test_cli_exits_0_without_drift(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    code = drift.main([str(FIXTURES / "no-drift.json"), "--summary", str(summary)])
    assert code == drift.NO_DRIFT
    assert summary.read_text() == "## No drift\n\n"
