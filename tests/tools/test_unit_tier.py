"""How tools/unit-tier.sh orders its tests: every test marked ``waits`` (it mostly waits out a
timeout or a drain) runs before the others, so its wait overlaps the other workers' CPU-bound
tests (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import REPO

CONFTEST = REPO / "tests" / "conftest.py"


class _Item:
    """As much of a pytest.Item as the collection hooks read."""

    def __init__(self, name: str, *markers: str) -> None:
        self.name = name
        self.markers = set(markers)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None

    def add_marker(self, marker: object) -> None:
        raise AssertionError(f"{self.name} got a marker: {marker}")


def test_the_tests_that_wait_come_first_and_keep_their_order(request: pytest.FixtureRequest):
    items = [
        _Item("quick-1"),
        _Item("drain", "waits"),
        _Item("quick-2"),
        _Item("preflight", "waits"),
        _Item("quick-3"),
    ]
    (conftest,) = [
        plugin
        for plugin in request.config.pluginmanager.get_plugins()
        if Path(getattr(plugin, "__file__", "") or "") == CONFTEST
    ]
    conftest.pytest_collection_modifyitems(request.config, items)
    assert [item.name for item in items] == ["drain", "preflight", "quick-1", "quick-2", "quick-3"]


def test_this_run_collected_its_waiting_tests_first(request: pytest.FixtureRequest) -> None:
    waits = [item.get_closest_marker("waits") is not None for item in request.session.items]
    assert waits == sorted(waits, reverse=True)
