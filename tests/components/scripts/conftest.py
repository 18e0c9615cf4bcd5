"""Fixtures of the job-script tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from create_site_support import bound_socket
from fake_commands import FakeBin, add_frappe


@pytest.fixture
def frappe_fakes(tmp_path: Path) -> FakeBin:
    """The Frappe stand-ins on PATH: ``bench`` as the real one runs Frappe's commands, and the
    ``mariadb`` client (tests/stand_ins)."""
    fakes = FakeBin(tmp_path)
    add_frappe(fakes)
    return fakes


@pytest.fixture
def ports() -> Iterator[dict[str, socket.socket]]:
    """Database, cache and queue ports, listening."""
    sockets = {name: bound_socket() for name in ("db", "cache", "queue")}
    for sock in sockets.values():
        sock.listen()
    yield sockets
    for sock in sockets.values():
        sock.close()
