"""Every ``python -m MODULE`` a workflow runs names a module this repository has."""

from __future__ import annotations

import importlib.util
import re

from harness import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def test_every_module_a_workflow_runs_exists() -> None:
    modules = {
        module
        for workflow in WORKFLOWS
        for module in re.findall(r"python -m ([\w.]+)", workflow.read_text())
    }
    assert modules, "no workflow runs a module: the pattern is stale"
    assert [m for m in sorted(modules) if importlib.util.find_spec(m) is None] == []
