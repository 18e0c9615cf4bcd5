"""Unit tests (no swarm, part of the fast tier) for the live tier's own tools: the reachability
check, the image cache, the mirror look-up and the convergence rule."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import render
from images import build
from images.standin import answers
from tests.live import swarm
from tests.live.swarm import ServiceState, Task


@pytest.fixture
def server() -> Iterator[Callable[..., int]]:
    """A one-connection TCP server on loopback that sends ``reply`` (after reading a line when
    ``after_request``), or nothing at all."""
    listeners: list[socket.socket] = []

    def start(reply: bytes, after_request: bool = False) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def handle() -> None:
            connection, _ = listener.accept()
            with connection:
                if after_request:
                    connection.recv(64)
                if reply:
                    connection.sendall(reply)
                connection.recv(64)  # hold the connection until the client gives up

        threading.Thread(target=handle, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in listeners:
        listener.close()


MARIADB_GREETING = b"\x5b\x00\x00\x00\x0a10.11.18-MariaDB\x00"


def test_a_mariadb_greeting_counts_as_reachable(server) -> None:
    assert answers("mariadb", "127.0.0.1", server(MARIADB_GREETING), 2)


def test_a_redis_pong_counts_as_reachable(server) -> None:
    assert answers("redis", "127.0.0.1", server(b"+PONG\r\n", after_request=True), 2)


@pytest.mark.parametrize("protocol", ["mariadb", "redis"])
def test_an_accepting_but_silent_peer_is_not_reachable(server, protocol: str) -> None:
    # What a transparent proxy does for any address: accept, then say nothing.
    assert not answers(protocol, "127.0.0.1", server(b""), 0.5)


def test_another_protocol_is_not_mariadb(server) -> None:
    assert not answers("mariadb", "127.0.0.1", server(b"HTTP/1.1 200 OK\r\n\r\n"), 2)


def test_a_closed_port_is_not_reachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    assert not answers("redis", "127.0.0.1", port, 1)


def test_mirror_from_deb822_sources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BRANDCLUB_LIVE_DEBIAN_MIRROR", raising=False)
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert build.debian_mirror([sources]) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BRANDCLUB_LIVE_DEBIAN_MIRROR", raising=False)
    sources = tmp_path / "sources.list"
    sources.write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert build.debian_mirror([sources, tmp_path / "missing"]) == "http://other.example/debian"
    assert build.debian_mirror([tmp_path / "missing"]) == build.DEFAULT_MIRROR


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch) -> Path:
    """A ``docker`` on PATH that logs its arguments and reports an image labelled $FAKE_LABEL."""
    calls = tmp_path / "calls"
    script = tmp_path / "docker"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        'if [[ "$1 $2" == "image inspect" ]]; then\n'
        '  [[ -n "${FAKE_LABEL:-}" ]] || exit 1\n'
        f'  printf \'{{"{build.INPUTS_LABEL}": "%s"}}\\n\' "$FAKE_LABEL"\n'
        "fi\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return calls


def _builds(calls: Path) -> list[str]:
    return [line for line in calls.read_text().splitlines() if line.startswith("build ")]


def test_an_image_with_the_same_inputs_is_reused(fake_docker: Path, monkeypatch) -> None:
    image = build.LocalImage("local/x:v1", "app", {"VERSION": "v1"})
    assert build.build_image(image, "base:1", "context-a")  # nothing there yet: built
    label = next(
        arg.split("=", 1)[1]
        for arg in _builds(fake_docker)[0].split()
        if arg.startswith(build.INPUTS_LABEL)
    )
    monkeypatch.setenv("FAKE_LABEL", label)
    assert not build.build_image(image, "base:1", "context-a")
    assert len(_builds(fake_docker)) == 1


@pytest.mark.parametrize(
    "change",
    [{"base": "base:2"}, {"context": "context-b"}, {"args": {"VERSION": "v2"}}],
    ids=json.dumps,
)
def test_changed_inputs_rebuild(fake_docker: Path, monkeypatch, change: dict) -> None:
    image = build.LocalImage("local/x:v1", "app", {"VERSION": "v1"})
    build.build_image(image, "base:1", "context-a")
    label = _builds(fake_docker)[0].split(f"{build.INPUTS_LABEL}=")[1].split()[0]
    monkeypatch.setenv("FAKE_LABEL", label)
    changed = build.LocalImage(image.tag, image.target, change.get("args", image.build_args))
    assert build.build_image(
        changed, change.get("base", "base:1"), change.get("context", "context-a")
    )


def _task(image: str = "app:v2", state: str = "running", health: str | None = "healthy") -> Task:
    return Task("t", "svc", image, state, "c", health, "2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("update_state", "tasks", "converged"),
    [
        ("completed", [_task()], True),
        (None, [_task(health=None)], True),  # no health check, no update yet
        ("rollback_completed", [_task()], True),
        ("updating", [_task()], False),
        ("completed", [_task(), _task(image="app:v1")], False),  # start-first overlap
        ("completed", [_task(image="app:v1")], False),
        ("completed", [_task(state="starting", health="starting")], False),
        ("completed", [_task(health="unhealthy")], False),
        ("completed", [], False),
    ],
)
def test_convergence_rule(update_state: str | None, tasks: list[Task], converged: bool) -> None:
    state = ServiceState("svc", "app:v2", 1, update_state, 7, tuple(tasks))
    assert state.converged is converged


def test_a_dockerd_that_does_not_come_up_fails_the_tier(tmp_path: Path, monkeypatch) -> None:
    # The tier must fail, not skip, when it cannot get a daemon: here dockerd exits at once.
    for name, body in (
        ("docker", "exit 1"),
        ("dockerd", "echo 'failed to start daemon' >&2; exit 1"),
    ):
        script = tmp_path / name
        script.write_text(f"#!/usr/bin/env bash\n{body}\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(swarm, "DOCKERD_LOG", tmp_path / "dockerd.log")
    with pytest.raises(RuntimeError, match="failed to start daemon"):
        swarm.Daemon.ensure(start_timeout=10)


# --- the stand-in's bench, as the real job scripts call it (no database needed) -----------------

STANDIN = Path(build.IMAGES_DIR) / "standin.py"
SCRIPTS = Path(build.IMAGES_DIR).parent / "components" / "scripts"


@pytest.fixture
def standin_bench(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """The stand-in called as ``bench`` (first on PATH) in a bench directory with two apps."""
    bench_dir = tmp_path / "frappe-bench"
    for folder in ("sites", "apps/frappe", "apps/erpnext"):
        (bench_dir / folder).mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # standin.py dispatches on the name it is called by, as in the image (its shebang: python3).
    shutil.copy(STANDIN, bin_dir / "bench")
    (bin_dir / "bench").chmod(0o755)

    def run(*command: str, **env: str) -> subprocess.CompletedProcess:
        environment = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "BENCH_DIR": str(bench_dir),
            **env,
        }
        return subprocess.run(
            command, cwd=bench_dir, env=environment, capture_output=True, text=True, timeout=30
        )

    run.bench_dir = bench_dir  # type: ignore[attr-defined]
    return run


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_set_config_writes_common_and_site_configs(standin_bench) -> None:
    sites = standin_bench.bench_dir / "sites"
    assert standin_bench("bench", "set-config", "-g", "db_host", "mariadb").returncode == 0
    assert standin_bench("bench", "set-config", "-gp", "db_port", "3306").returncode == 0
    assert _json(sites / "common_site_config.json") == {"db_host": "mariadb", "db_port": 3306}
    (sites / "a.test").mkdir()
    (sites / "a.test" / "site_config.json").write_text('{"db_name": "_a"}')
    site_set = ("bench", "--site", "a.test", "set-config", "-p", "maintenance_mode", "1")
    assert standin_bench(*site_set).returncode == 0
    assert _json(sites / "a.test" / "site_config.json") == {"db_name": "_a", "maintenance_mode": 1}
    missing = standin_bench("bench", "--site", "b.test", "set-config", "-p", "x", "1")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_the_configurator_script_configures_the_standin_bench(standin_bench) -> None:
    """The real configurator.sh against the stand-in, with what the program hands it."""
    configurator = render("dev").named("jobs-configurator").inputs["environment"]
    env = dict(line.split("=", 1) for line in configurator["JOB_ENV"].splitlines())
    result = standin_bench("bash", str(SCRIPTS / "configurator.sh"), **env)
    assert result.returncode == 0, result.stderr
    sites = standin_bench.bench_dir / "sites"
    assert (sites / "apps.txt").read_text().split() == ["erpnext", "frappe"]
    common = _json(sites / "common_site_config.json")
    assert common["db_port"] == 3306 and common["socketio_port"] == 9000
    assert common["redis_cache"] == env["REDIS_CACHE"]


# A root password that starts with a dash is still the option's value, as with bench (click).
NEW_SITE = (
    *("bench", "new-site", "a.test", "--mariadb-user-host-login-scope=%"),
    *("--admin-password", "pw", "--db-root-username=root", "--db-root-password", "-root-pw"),
    *("--install-app", "hrms", "--set-default"),
)


def test_new_site_refuses_an_unconfigured_bench_and_unknown_apps(standin_bench) -> None:
    unconfigured = standin_bench(*NEW_SITE)
    assert unconfigured.returncode == 1 and "no db_host" in unconfigured.stderr
    sites = standin_bench.bench_dir / "sites"
    (sites / "common_site_config.json").write_text('{"db_host": "mariadb"}')
    (sites / "apps.txt").write_text("frappe\nerpnext\n")
    unknown = standin_bench(*NEW_SITE)
    assert unknown.returncode == 1 and "hrms not in sites/apps.txt" in unknown.stderr
    assert not (sites / "a.test").exists()
    no_password = standin_bench(*NEW_SITE[:4], "--db-root-password", "-root-pw")
    assert no_password.returncode == 2 and "--admin-password" in no_password.stderr


def test_migrate_fails_for_a_missing_site_and_on_request(standin_bench) -> None:
    assert standin_bench("bench", "--site", "a.test", "migrate").returncode == 1
    sites = standin_bench.bench_dir / "sites"
    (sites / "a.test").mkdir()
    (sites / "a.test" / "site_config.json").write_text('{"db_name": "_a"}')
    failed = standin_bench("bench", "--site", "all", "migrate", STANDIN_FAIL_MIGRATE="yes")
    assert failed.returncode == 1 and "simulated failure" in failed.stderr
    assert failed.stdout == "Migrating a.test\n"
