"""create-site.sh: waits for real loopback ports, then creates the site with a stand-in `bench`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_commands import FAKE_BENCH, FakeBin, make_bench, run_script

ADMIN_PASSWORD = "admin-Pa55-word"
DB_ROOT_PASSWORD = "root-Pa55-word"


def _bound_socket() -> socket.socket:
    """A loopback port that refuses connections until listen() is called."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def ports() -> Iterator[dict[str, socket.socket]]:
    """Database, cache and queue ports, listening."""
    sockets = {name: _bound_socket() for name in ("db", "cache", "queue")}
    for sock in sockets.values():
        sock.listen()
    yield sockets
    for sock in sockets.values():
        sock.close()


def _port(sock: socket.socket) -> int:
    return sock.getsockname()[1]


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    fakes = FakeBin(tmp_path)
    fakes.add("bench", FAKE_BENCH)
    return fakes


def _env(
    fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], **extra: str
) -> dict[str, str]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "admin").write_text(ADMIN_PASSWORD + "\n")
    (secrets / "db-root").write_text(DB_ROOT_PASSWORD)
    defaults = dict(
        BENCH_DIR=str(make_bench(tmp_path, {})),
        SITE_NAME="dev.brandclub.com",
        INSTALL_APPS="erpnext brandclub",
        DB_HOST="127.0.0.1",
        DB_PORT=str(_port(ports["db"])),
        REDIS_CACHE=f"redis://127.0.0.1:{_port(ports['cache'])}",
        REDIS_QUEUE=f"redis://:queue-pass@127.0.0.1:{_port(ports['queue'])}/0",
        ADMIN_PASSWORD_FILE=str(secrets / "admin"),
        DB_ROOT_PASSWORD_FILE=str(secrets / "db-root"),
        WAIT_TIMEOUT="5",
        WAIT_INTERVAL="0.05",
    )
    return fakes.env(**{**defaults, **extra})


def test_creates_the_site_with_its_apps(
    fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket]
) -> None:
    result = run_script("create-site.sh", _env(fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    assert fakes.calls() == [
        [
            "bench",
            "new-site",
            "dev.brandclub.com",
            "--mariadb-user-host-login-scope=%",
            "--admin-password",
            ADMIN_PASSWORD,
            "--db-root-username=root",
            "--db-root-password",
            DB_ROOT_PASSWORD,
            "--install-app",
            "erpnext",
            "--install-app",
            "brandclub",
            "--set-default",
        ]
    ]
    output = result.stdout + result.stderr
    for secret in (ADMIN_PASSWORD, DB_ROOT_PASSWORD, "queue-pass"):
        assert secret not in output
    waits = [line.split(": ", 1)[1] for line in output.splitlines() if "waiting for" in line]
    assert waits == [
        f"waiting for database at 127.0.0.1:{_port(ports['db'])}",
        f"waiting for cache Redis at 127.0.0.1:{_port(ports['cache'])}",
        f"waiting for queue Redis at 127.0.0.1:{_port(ports['queue'])}",
    ]


def test_an_existing_site_is_left_alone(
    fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket]
) -> None:
    env = _env(fakes, tmp_path, ports)
    site = Path(env["BENCH_DIR"]) / "sites" / "dev.brandclub.com"
    site.mkdir()
    (site / "site_config.json").write_text("{}")
    for sock in ports.values():
        sock.close()  # nothing to wait for: an existing site needs no service

    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert "site dev.brandclub.com exists, nothing to do" in result.stdout
    assert fakes.calls() == []


def test_waits_for_a_service_that_comes_up_late(
    fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket]
) -> None:
    late = _bound_socket()
    env = _env(fakes, tmp_path, ports, REDIS_QUEUE=f"redis://127.0.0.1:{_port(late)}")
    timer = threading.Timer(0.5, late.listen)
    timer.start()
    try:
        started = time.monotonic()
        result = run_script("create-site.sh", env)
        elapsed = time.monotonic() - started
    finally:
        timer.cancel()
        late.close()

    assert result.returncode == 0, result.stderr
    assert elapsed >= 0.5
    assert [call[1] for call in fakes.calls()] == ["new-site"]


def test_gives_up_on_an_unreachable_service(
    fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket]
) -> None:
    closed = _bound_socket()  # bound, never listening: connections are refused
    closed_port = _port(closed)
    env = _env(fakes, tmp_path, ports, REDIS_CACHE=f"redis://127.0.0.1:{closed_port}")
    env["WAIT_TIMEOUT"] = "1"
    try:
        started = time.monotonic()
        result = run_script("create-site.sh", env)
        elapsed = time.monotonic() - started
    finally:
        closed.close()

    assert result.returncode == 1
    assert 1 <= elapsed < 5
    assert (f"cache Redis at 127.0.0.1:{closed_port} not reachable after 1s") in result.stderr
    assert fakes.calls() == []


def test_without_apps_only_frappe_is_installed(
    fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket]
) -> None:
    result = run_script("create-site.sh", _env(fakes, tmp_path, ports, INSTALL_APPS=""))

    assert result.returncode == 0, result.stderr
    assert "--install-app" not in fakes.calls()[0]
    assert fakes.calls()[0][-1] == "--set-default"


@pytest.mark.parametrize(
    ("variable", "content", "message"),
    [
        ("ADMIN_PASSWORD_FILE", None, "cannot read secret file"),
        ("DB_ROOT_PASSWORD_FILE", "\n", "is empty"),
    ],
)
def test_a_missing_or_empty_secret_fails_clearly(
    fakes: FakeBin,
    tmp_path: Path,
    ports: dict[str, socket.socket],
    variable: str,
    content: str | None,
    message: str,
) -> None:
    env = _env(fakes, tmp_path, ports)
    secret = tmp_path / "broken-secret"
    if content is not None:
        secret.write_text(content)
    env[variable] = str(secret)
    result = run_script("create-site.sh", env)

    assert result.returncode == 1
    assert message in result.stderr
    assert str(secret) in result.stderr
    assert fakes.calls() == []


def test_a_missing_variable_is_named(
    fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket]
) -> None:
    env = _env(fakes, tmp_path, ports)
    del env["SITE_NAME"]
    result = run_script("create-site.sh", env)

    assert result.returncode == 1
    assert "missing required environment variable(s): SITE_NAME" in result.stderr
    assert fakes.calls() == []
