"""The in-container job scripts each run alone (`bash -c "<text>"`), so they cannot source a
shared file; the blocks they share are kept identical here instead of drifting apart."""

from __future__ import annotations

import re

import pytest

from fake_commands import SCRIPTS

SHARED = {
    "common prelude": (
        "configurator.sh",
        "create-site.sh",
        "migrate.sh",
        "restore.sh",
        "rotate-db-root-password.sh",
    ),
    "site modes": ("migrate.sh", "restore.sh"),
}


def _block(script: str, name: str) -> str:
    text = (SCRIPTS / script).read_text()
    found = re.findall(rf"^# --- {name}:.*?^# --- end of {name} ---$", text, re.M | re.S)
    assert len(found) == 1, f"{script} must hold the {name} block exactly once"
    return found[0]


@pytest.mark.parametrize("name", SHARED)
def test_shared_blocks_are_identical(name: str) -> None:
    first, *others = SHARED[name]
    block = _block(first, name)
    assert block.count("\n") > 5
    for script in others:
        assert _block(script, name) == block, f"{script}'s {name} differs from {first}'s"
