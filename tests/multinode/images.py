"""The stand-in images on every node: built once on node 1 by the live tier's own recipe
(tests/live/images/build.py, reusing what is up to date), then saved once and loaded into the
other engines, as a registry-less swarm needs (each engine has its own image store)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from tests.live.images.build import (
    APP_REPOSITORY,
    IMAGES,
    MARIADB_IMAGE,
    REDIS_IMAGE,
    base_image,
    build_image,
    context_digest,
    debian_mirror,
)
from tests.multinode.cluster import Node

# The app release the tier deploys: the data services' and the app's images, nothing else.
APP_TAG = "v1"
TAGS = (MARIADB_IMAGE, REDIS_IMAGE, f"{APP_REPOSITORY}:{APP_TAG}")


def load_everywhere(nodes: tuple[Node, ...]) -> dict[str, float]:
    """Build on the first node, load into the others; seconds per step."""
    first, *others = nodes
    timings: dict[str, float] = {}
    started = time.monotonic()
    previous = os.environ.get("DOCKER_HOST")
    # build.py runs the docker CLI, which follows DOCKER_HOST.
    os.environ["DOCKER_HOST"] = first.host
    try:
        base = base_image(debian_mirror())
        context = context_digest()
        for image in IMAGES:
            if image.tag in TAGS:
                build_image(image, base, context)
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
    timings["build"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="brandclub-multinode-") as directory:
        archive = f"{directory}/images.tar"
        first.docker("save", "-o", archive, *TAGS, timeout=600)

        def load(node: Node) -> None:
            result = subprocess.run(
                ["docker", "-H", node.host, "load", "-q", "-i", archive],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0:
                raise RuntimeError(f"{node.hostname}: docker load: {result.stderr.strip()}")

        with ThreadPoolExecutor(len(others) or 1) as pool:
            list(pool.map(load, others))
    timings["load"] = round(time.monotonic() - started, 1)
    return timings
