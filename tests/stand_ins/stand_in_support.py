"""What every Python stand-in (the fake Frappe CLI, the fake `mariadb` client) shares: the call
log of tests/fake_commands.py, process snapshots, and one fake MariaDB server kept in a file.

Runs inside the stand-ins' own processes (the scripts under test start them), so it depends on
nothing but the standard library and reads its settings from the environment the test gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# As in tests/fake_commands.py: ASCII unit/record separators.
_UNIT, _RECORD = "\x1f", "\x1e"


def record_call(name: str, argv: list[str]) -> None:
    """Appends the call to $FAKE_CALLS, as the bash recorder of fake_commands.FakeBin does."""
    log = os.environ.get("FAKE_CALLS")
    if log:
        with open(log, "a") as calls:
            calls.write("".join(f"{part}{_UNIT}" for part in [name, *argv]) + _RECORD)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone, or another user's process
        return ""


def snapshot_processes(by: str) -> None:
    """Appends every process's command line and environment, and `ps -eo args`, as seen at this
    moment, to $FAKE_PROC_SNAPSHOTS (one JSON line), when the test asked for it."""
    target = os.environ.get("FAKE_PROC_SNAPSHOTS")
    if not target:
        return
    import subprocess  # here only: every stand-in process would pay for its import

    processes = [
        {
            "pid": int(proc.name),
            "cmdline": _read(proc / "cmdline"),
            "environ": _read(proc / "environ"),
        }
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit()
    ]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
    with open(target, "a") as snapshots:
        snapshots.write(json.dumps({"by": by, "processes": processes, "ps": ps}) + "\n")


class AccessDeniedError(Exception):
    """As pymysql reports a refused login."""

    def __init__(self, user: str) -> None:
        super().__init__(1045, f"Access denied for user '{user}'@'10.0.9.7' (using password: YES)")


@contextlib.contextmanager
def database_server() -> Iterator[dict[str, Any]]:
    """The fake server's state ($FAKE_DB, JSON), locked and written back after the block:
    ``root_password``, ``root_hosts``, ``users`` ("name@host" -> password), ``databases``
    (name -> {"apps": [...], "enable_scheduler": 0|1, ...}) and ``statements`` (SQL received)."""
    path = Path(os.environ["FAKE_DB"])
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        yield state
        path.write_text(json.dumps(state, indent=1))


def new_database_server(path: Path, root_password: str, **extra: Any) -> Path:
    state = {
        "root_password": root_password,
        "root_hosts": ["%", "localhost"],
        "users": {},
        "databases": {},
        "statements": [],
        **extra,
    }
    path.write_text(json.dumps(state, indent=1))
    return path


def database_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
