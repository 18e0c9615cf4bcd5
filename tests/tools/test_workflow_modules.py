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


def test_the_old_package_name_runs_the_tools() -> None:
    """brandclub/ forwards to stacktools/ until the workflows and the README call it by name."""
    for tool in ("__main__", "drift", "pipeline"):
        old, new = f"brandclub.{tool}", f"stacktools.{tool}"
        assert importlib.import_module(old).main is importlib.import_module(new).main
