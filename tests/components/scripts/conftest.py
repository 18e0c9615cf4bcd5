"""Fixtures of the job-script tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_commands import FakeBin, add_frappe


@pytest.fixture
def frappe_fakes(tmp_path: Path) -> FakeBin:
    """The Frappe stand-ins on PATH: ``bench`` as the real one runs Frappe's commands, and the
    ``mariadb`` client (tests/stand_ins)."""
    fakes = FakeBin(tmp_path)
    add_frappe(fakes)
    return fakes
