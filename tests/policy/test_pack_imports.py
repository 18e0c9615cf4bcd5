"""The policy pack runs on its own: it imports the program's service catalogue and nothing else
of the program, so neither pydantic nor pulumi_docker (policy/requirements.txt has neither)."""

from __future__ import annotations

import json
import subprocess
import sys

from harness import REPO

# As policy/__main__.py starts it: guardrails.py beside it, the repository above it.
LOADER = """
import json, sys
sys.path[:0] = [sys.argv[1] + "/policy", sys.argv[1]]
import guardrails
print(json.dumps(sorted(sys.modules)))
"""


def test_the_pack_imports_only_the_catalogue_of_the_program() -> None:
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", LOADER, str(REPO)],
            cwd=REPO / "policy",
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & {"pydantic", "pulumi_docker", "pulumi_command", "stacktools"}
    assert [name for name in loaded if name.split(".")[0] == "components"] == [
        "components",
        "components.platform",
        "components.platform.catalogue",
    ]
    assert "pulumi_policy" in tops


def test_the_packs_requirements_are_the_policy_sdk_alone() -> None:
    lines = (REPO / "policy" / "requirements.txt").read_text().splitlines()
    requirements = [line for line in lines if line.strip() and not line.startswith("#")]
    assert [line.split("==")[0] for line in requirements] == ["pulumi-policy"]
