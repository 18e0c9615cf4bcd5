"""Rules that need more than the running stack's own keys: the other stack files of the
repository (one hostname, one owner), the Docker host the stack targets, and what the stack
deployed last time (a MariaDB series only moves forward).

Each function returns problems as (key, found, expected) for the loader, which reports them
with every other problem of the configuration.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from pathlib import Path

import yaml

from components.config.grammar import (
    REMOTE_DOCKER_SCHEMES,
    docker_host_problem,
    split_reference,
)
from components.config.model import image_series
from components.config.secret_rules import NAMESPACE

# The repository's stack files sit beside Pulumi.yaml, one directory above this module.
PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCKER_HOST_KEY = "docker:host"
LOCAL = "local"
# The stack output that records the MariaDB series a deploy ran (__main__.py).
SERIES_OUTPUT = "mariadbSeries"
# Stacks deployed before SERIES_OUTPUT existed: the MariaDB image reference they exported.
IMAGES_OUTPUT = "images"

StackProblem = tuple[str, str, str]


def stack_file_domains(project_dir: Path = PROJECT_DIR) -> dict[str, list[str]]:
    """The ``brandclub:domains`` each ``Pulumi.<stack>.yaml`` of the project claims."""
    claimed: dict[str, list[str]] = {}
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        domains = _claimed_in(path.read_text())
        if domains is not None:
            claimed[stack] = list(domains)
    return claimed


@functools.lru_cache(maxsize=16)
def _claimed_in(text: str) -> tuple[str, ...] | None:
    # Parsed once per distinct file text: the offline engine runs the program many times.
    try:
        config = (yaml.safe_load(text) or {}).get("config") or {}
    except (yaml.YAMLError, AttributeError):
        return None  # not a stack file this program could read; Pulumi reports it
    domains = config.get(f"{NAMESPACE}:domains") if isinstance(config, dict) else None
    if not isinstance(domains, list):
        return None
    return tuple(str(domain).lower().rstrip(".") for domain in domains)


def domain_owner_problems(
    stack: str, domains: object, claimed: Mapping[str, Collection[str]]
) -> list[StackProblem]:
    """A domain this stack claims that another stack file claims too: two routers for one host
    on the shared Traefik, and which one answers is up to Traefik."""
    if not isinstance(domains, list):
        return []
    problems = []
    for index, domain in enumerate(domains):
        if not isinstance(domain, str):
            continue
        owners = [
            other
            for other, theirs in sorted(claimed.items())
            if other != stack and domain.lower().rstrip(".") in theirs
        ]
        if owners:
            problems.append(
                (
                    f"{NAMESPACE}:domains[{index}]",
                    repr(domain),
                    f"a domain no other stack claims: Pulumi.{owners[0]}.yaml claims it, and two "
                    "stacks' routers for one host on the shared Traefik leave one of them dark",
                )
            )
    return problems


def docker_host_problems(stack: str, values: Mapping[str, str]) -> list[StackProblem]:
    """``docker:host`` reaches the site jobs' docker CLI (DOCKER_HOST): a Docker host URL and
    nothing else; ``local`` deploys to this machine's engine only."""
    host = values.get(DOCKER_HOST_KEY)
    if host is None:
        return []
    if (problem := docker_host_problem(host)) is not None:
        return [(DOCKER_HOST_KEY, repr(host), problem)]
    if stack == LOCAL and host.startswith(REMOTE_DOCKER_SCHEMES):
        return [
            (
                DOCKER_HOST_KEY,
                repr(host),
                "this machine's Docker engine (unix:///var/run/docker.sock, or unset) for the "
                "local stack: local tears everything down on destroy and protects nothing, "
                "never point it at a shared swarm",
            )
        ]
    return []


def _series_key(series: str) -> tuple[int, ...]:
    return tuple(int(part) for part in series.split("."))


def series_step_down_problems(configured: object, deployed: str | None) -> list[StackProblem]:
    """A MariaDB series older than the one deployed: MariaDB cannot open a data directory a
    newer series has written, and the image change would be made in place."""
    if not isinstance(configured, str) or deployed is None:
        return []
    try:
        older = _series_key(configured) < _series_key(deployed)
    except ValueError:
        return []  # an unknown series is the model's problem
    if not older:
        return []
    return [
        (
            f"{NAMESPACE}:mariadb.version",
            repr(configured),
            f"{deployed} or a later series: this stack last deployed MariaDB {deployed}, and an "
            "older series cannot open the data directory a newer one has written. Going back "
            "means restoring a backup into a new database (docs/operations.md#upgrading-mariadb)",
        )
    ]


def image_version(image: object) -> str | None:
    """The major.minor an image tag starts with ("redis:7.2.4-alpine@sha256:..." -> "7.2")."""
    if not isinstance(image, str):
        return None
    _, tag, _ = split_reference(image)
    match = re.match(r"(\d+)\.(\d+)(?![\d])", tag or "")
    return f"{match[1]}.{match[2]}" if match else None


def deployed_redis(outputs: Mapping[str, object]) -> str | None:
    """The Redis major.minor the stack's last deploy ran, from its exported images."""
    images = outputs.get(IMAGES_OUTPUT)
    return image_version(images.get("redis")) if isinstance(images, Mapping) else None


def redis_step_down_problems(configured: object, deployed: str | None) -> list[StackProblem]:
    """An older Redis than the one deployed: Redis cannot load an RDB or AOF file a newer
    version wrote, and the queue's volume keeps them."""
    version = image_version(configured)
    if version is None or deployed is None or _series_key(version) >= _series_key(deployed):
        return []
    return [
        (
            f"{NAMESPACE}:images.redis",
            repr(configured),
            f"Redis {deployed} or later: this stack last deployed Redis {deployed}, and an "
            "older Redis cannot load the queue's data files a newer one has written",
        )
    ]


def deployed_series(outputs: Mapping[str, object]) -> str | None:
    """The MariaDB series the stack's last deploy ran, from its outputs: ``mariadbSeries``, or
    for a deploy from before that output the series its MariaDB image's tag names."""
    series = outputs.get(SERIES_OUTPUT)
    if isinstance(series, str):
        return series
    images = outputs.get(IMAGES_OUTPUT)
    if isinstance(images, Mapping) and isinstance(images.get("mariadb"), str):
        return image_series(images["mariadb"])
    return None
