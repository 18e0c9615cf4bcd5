"""Unit tests (no swarm, part of the fast tier) for the live tier's own tools: the reachability
check, the image cache, the mirror look-up and the convergence rule."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stacktools.engine import Registered
from tests.live import rollout, swarm
from tests.live.images import build
from tests.live.images.standin import answers
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
    assert not answers(protocol, "127.0.0.1", server(b""), 0.2)


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


# --- rolling out in the program's order ------------------------------------------------------


def test_update_outcome_counts_a_completed_rollback_as_failed() -> None:
    asked = swarm.parse_docker_time("2026-01-01T00:00:10.5Z")
    assert asked is not None

    def state(update: str | None, started: str | None) -> ServiceState:
        return ServiceState("svc", "app:v2", 1, update, 7, (_task(),), started)

    assert state("completed", "2026-01-01T00:00:11.123456789Z").update_outcome(asked) == "completed"
    # An update that started before this deploy is an old one: still waiting for ours.
    assert state("completed", "2026-01-01T00:00:09Z").update_outcome(asked) is None
    assert state(None, None).update_outcome(asked) is None
    assert state("updating", "2026-01-01T00:00:11Z").update_outcome(asked) is None
    assert state("rollback_started", "2026-01-01T00:00:11Z").update_outcome(asked) is None
    for ended in ("rollback_completed", "rollback_paused", "paused"):
        assert state(ended, "2026-01-01T00:00:11Z").update_outcome(asked) == "failed"


def _registered(name: str, urn: str, dependencies: list[str]) -> Registered:
    return Registered(
        rollout.SERVICE, name, urn, "", True, {"name": name}, {}, {"dependencies": dependencies}
    )


def test_service_layers_follow_the_dependency_edges() -> None:
    services = [
        _registered("s_frontend", "u:frontend", ["u:backend", "u:component"]),
        _registered("s_backend", "u:backend", ["u:jobs"]),
        _registered("s_worker", "u:worker", ["u:backend"]),
        _registered("s_mailpit", "u:mailpit", []),
    ]
    assert rollout.service_layers(services) == [
        ["s_backend", "s_mailpit"],
        ["s_frontend", "s_worker"],
    ]


@dataclass
class _Job:
    name: str
    environment: dict[str, str]
    ignore_changes: list[str] = field(default_factory=list)


def test_changed_jobs_are_the_ones_pulumi_command_replaces() -> None:
    applied = {"create": {"JOB_IMAGE": "a:v1"}, "migrate": {"JOB_IMAGE": "a:v1"}}
    jobs = [
        _Job("create", {"JOB_IMAGE": "a:v2"}, ["environment.JOB_IMAGE"]),
        _Job("migrate", {"JOB_IMAGE": "a:v2"}),
        _Job("boot-check", {"JOB_IMAGE": "a:v2"}),  # never applied: it runs
    ]
    assert [job.name for job in rollout.changed_jobs(applied, jobs)] == ["migrate", "boot-check"]
    same = [_Job("migrate", {"JOB_IMAGE": "a:v1"})]
    assert rollout.changed_jobs(applied, same) == []
