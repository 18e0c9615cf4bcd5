"""Fixtures of the job-script tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from create_site_support import DB_ROOT_PASSWORD, bound_socket
from fake_commands import FakeBin, add_frappe, make_bench, new_database_server


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


# The create-site tests' database server and bench; the other scripts' tests bring their own.
@pytest.fixture
def db(tmp_path: Path) -> Path:
    return new_database_server(tmp_path / "db.json", DB_ROOT_PASSWORD)


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return make_bench(tmp_path, {})
