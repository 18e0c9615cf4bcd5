"""components/scripts/frontend.sh: the frontend's websocket task list, kept current for nginx's
sticky upstream, and nginx reloaded only when it changes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from fake_commands import SCRIPTS, FakeBin, run_script

# getent as glibc's prints `ahostsv4`: each address three times (one line per socket type).
FAKE_GETENT = """
[[ $1 == ahostsv4 && $2 == websocket ]] || exit 2
[[ -s $FAKE_ADDRESSES ]] || exit 2
while read -r address; do
  for kind in STREAM DGRAM RAW; do echo "$address $kind"; done
done <"$FAKE_ADDRESSES"
"""
# nginx -s reload fails while $FAKE_NGINX_DOWN exists (nginx not started yet); each reload
# that succeeds is one line of $FAKE_RELOADS.
FAKE_NGINX = """
[[ ! -e $FAKE_NGINX_DOWN ]] || { echo "nginx: no pid" >&2; exit 1; }
echo "$*" >>"$FAKE_RELOADS"
"""


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    fakes = FakeBin(tmp_path)
    fakes.add("getent", FAKE_GETENT)
    fakes.add("nginx", FAKE_NGINX)
    return fakes


def _env(fakes: FakeBin, tmp_path: Path, **extra: str) -> dict[str, str]:
    return fakes.env(
        SOCKETIO="websocket:9000",
        SOCKETIO_SERVERS_FILE=str(tmp_path / "socketio-servers.inc"),
        FAKE_ADDRESSES=str(tmp_path / "addresses"),
        FAKE_NGINX_DOWN=str(tmp_path / "nginx-down"),
        FAKE_RELOADS=str(tmp_path / "reloads"),
        **extra,
    )


def test_writes_every_task_sorted_once_with_the_port(fakes: FakeBin, tmp_path: Path) -> None:
    """Sorted by address, so every frontend replica builds the same list and hashes a client to
    the same task; each address once although getent prints it per socket type."""
    (tmp_path / "addresses").write_text("10.0.1.12\n10.0.1.9\n")
    done = run_script("frontend.sh", _env(fakes, tmp_path, FRONTEND_RESOLVE_ONCE="1"))
    assert done.returncode == 0, done.stderr
    servers = (tmp_path / "socketio-servers.inc").read_text()
    assert servers == "server 10.0.1.9:9000;\nserver 10.0.1.12:9000;\n"
    assert "websocket tasks: 10.0.1.9:9000 10.0.1.12:9000" in done.stdout
    # The first list is written before nginx starts: nothing to reload.
    assert fakes.calls("nginx") == []


def test_no_task_yet_is_one_server_marked_down(fakes: FakeBin, tmp_path: Path) -> None:
    """nginx refuses an upstream without servers; a server marked down lets it start and answer
    502 for /socket.io until a websocket task appears."""
    done = run_script("frontend.sh", _env(fakes, tmp_path, FRONTEND_RESOLVE_ONCE="1"))
    assert done.returncode == 0, done.stderr
    servers = (tmp_path / "socketio-servers.inc").read_text()
    assert servers.startswith("server 127.0.0.1:9000 down;")


def test_requires_the_websocket_address(fakes: FakeBin, tmp_path: Path) -> None:
    env = _env(fakes, tmp_path, FRONTEND_RESOLVE_ONCE="1")
    del env["SOCKETIO"]
    done = run_script("frontend.sh", env)
    assert done.returncode != 0
    assert "SOCKETIO" in done.stderr


def _set_addresses(path: Path, text: str) -> None:
    """What the fake getent answers from now on; renamed into place, so the script's lookup
    never reads half of it."""
    path.with_suffix(".new").write_text(text)
    path.with_suffix(".new").replace(path)


def _reloads(tmp_path: Path) -> list[str]:
    """The reloads nginx took, in order."""
    reloads = tmp_path / "reloads"
    return reloads.read_text().splitlines() if reloads.exists() else []


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.waits
def test_reloads_nginx_once_per_change_and_retries_a_failed_reload(
    fakes: FakeBin, tmp_path: Path
) -> None:
    """The entrypoint runs (here: until a file appears) while the list is watched: a changed
    list is written and nginx reloaded, an unchanged one costs nothing, and a reload nginx
    refused is tried again at the next lookup."""
    addresses, servers = tmp_path / "addresses", tmp_path / "socketio-servers.inc"
    stop = tmp_path / "stop"
    addresses.write_text("10.0.1.9\n")
    fakes.add("entrypoint", f'while [[ ! -e "{stop}" ]]; do sleep 0.05; done; echo nginx-ran')
    env = _env(fakes, tmp_path, SOCKETIO_RESOLVE_INTERVAL="0.1", NGINX_ENTRYPOINT="entrypoint")
    (tmp_path / "nginx-down").touch()
    process = subprocess.Popen(
        ["bash", str(SCRIPTS / "frontend.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: servers.exists() and fakes.calls("entrypoint"))
        time.sleep(0.5)  # several lookups with nothing changed
        assert fakes.calls("nginx") == []
        # A task replaced while nginx cannot take a reload yet: retried until it can.
        _set_addresses(addresses, "10.0.1.9\n10.0.1.14\n")
        _wait_for(lambda: len(fakes.calls("nginx")) >= 2)
        assert "10.0.1.14:9000" in servers.read_text()
        (tmp_path / "nginx-down").unlink()
        _wait_for(lambda: _reloads(tmp_path) == ["-s reload"])
        time.sleep(0.5)  # several lookups with nothing changed since
        assert _reloads(tmp_path) == ["-s reload"], "reloaded with nothing changed"
        _set_addresses(addresses, "10.0.1.14\n")
        _wait_for(lambda: len(_reloads(tmp_path)) == 2)
        assert servers.read_text() == "server 10.0.1.14:9000;\n"
    finally:
        stop.touch()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "nginx-ran" in out
    assert "trying again" in out
