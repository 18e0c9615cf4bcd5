"""One rendering of each stack file under Pulumi's mocks, shared by every test that only reads.

A rendering (stacktools.engine.Rendering) is the index tests read: every registered resource with
its inputs and options, the services by swarm name, the networks they join, the invokes made.
Any other configuration a test renders with harness.render is rendered once per session too.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from fake_commands import FakeBin
from harness import STACKS, Rendering, render

# Rendering a stack under the mocks allocates hundreds of thousands of short-lived objects, and
# the session keeps every rendering: with the default thresholds (700, 10, 10) the collector ran
# so often that it took about a sixth of the tier's in-process CPU (measured in docs/testing.md).
# Collections stay on, rarer; a worker grows by about 15 MB.
gc.set_threshold(50_000, 50, 1_000)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that mostly wait (marked ``waits``) first: the unit tier's workers take the
    collection in contiguous slices and steal from each other's tails, so waits at the front
    overlap the other workers' CPU-bound tests instead of leaving cores idle at the end."""
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # The session's renderings are garbage only now, as the process ends: moved out of the
    # collector's reach, they are not traversed once more on the way out, which the unit tier's
    # run waits for (each worker's exit took about 0.7 s longer).
    gc.freeze()


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendering]:
    """Every stack as its Pulumi.<stack>.yaml deploys it, indexed by stack name."""
    return {stack: render(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    """An empty directory of fake commands first on PATH, for the tests that run the job and
    backup scripts; each adds the fakes it needs (fake_commands.add_frappe: Frappe's)."""
    return FakeBin(tmp_path)
