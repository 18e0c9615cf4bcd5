"""Fixtures of the stack-export tests."""

from __future__ import annotations

import pytest

from export_checks import SECRETS, Exported, export_into
from harness import STACKS, render
from stacktools.export import EXPORT_DEFAULTS


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    """Each stack as the command line exports it (plain repo:tag, no made-up registry digest),
    written and read back."""
    out = tmp_path_factory.mktemp("export")
    return {
        stack: export_into(render(stack, EXPORT_DEFAULTS, secrets=SECRETS), out) for stack in STACKS
    }
