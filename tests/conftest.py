"""One rendering of each stack file under Pulumi's mocks, shared by every test that only reads.

A rendering (stacktools.engine.Rendering) is the index tests read: every registered resource with
its inputs and options, the services by swarm name, the networks they join, the invokes made.
Any other configuration a test renders with harness.render is rendered once per session too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_commands import FAKE_BENCH, FakeBin
from harness import STACKS, Rendering, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendering]:
    """Every stack as its Pulumi.<stack>.yaml deploys it, indexed by stack name."""
    return {stack: render(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    """A stand-in bench on PATH, for the tests that run the job and backup scripts."""
    fakes = FakeBin(tmp_path)
    fakes.add("bench", FAKE_BENCH)
    return fakes
