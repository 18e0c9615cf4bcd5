"""Rules for single config values that reach the swarm as arguments, mounts, limits or headers.

Each function is a pydantic after-validator: it returns the value or raises ValueError with what
is expected (the loader turns that into the key's problem). Kept beside ``config.py`` so the
models read as a list of settings and their types.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re

from components.units import format_size

# --- host paths (backup.hostPath, restore.hostPath) ---------------------------------------

# Directories a host path must neither be, nor be inside, nor contain: a container mounts it
# read-write, and the Docker ones hold every environment's volumes.
SYSTEM_DIRECTORIES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/log",
    "/var/run",
)
# Host paths end up inside `--mount type=bind,source=...` and Compose mounts, where ',' and '='
# start another option and a newline another mount: only plain path characters.
_HOST_PATH = re.compile(r"(/[A-Za-z0-9._@+-]+)+")


def host_path(value: str) -> str:
    outside = "expected a directory outside system and Docker directories"
    if value == "/":
        raise ValueError(f"{outside} (/ contains them all): it is bind-mounted into a container")
    if not _HOST_PATH.fullmatch(value) or posixpath.normpath(value) != value:
        raise ValueError(
            "expected an absolute, normalised path such as /opt/brand-club/backups (letters, "
            "digits and . _ - + @ only; no '..' or '.' segments, no '//', no trailing '/')"
        )
    for system in SYSTEM_DIRECTORIES:
        if value == system or value.startswith(f"{system}/"):
            reason = f"{system} is one"
        elif system.startswith(f"{value}/"):
            reason = f"{value} contains {system}"
        else:
            continue
        raise ValueError(f"{outside} ({reason}): it is bind-mounted into a container")
    return value


# --- resources ------------------------------------------------------------------------------

# Docker refuses a memory limit under 6 MiB; no node has a terabyte to give one service.
MEMORY_MIN = 6 * 1024**2
MEMORY_MAX = 1024**4
# Docker's smallest CPU limit is 0.01 (10^7 nano-CPUs): below it 1e-10 would round to no limit.
CPUS_MIN = 0.01
CPUS_MAX = 64


def memory_bounds(size: int) -> int:
    if not MEMORY_MIN <= size <= MEMORY_MAX:
        raise ValueError(
            f"expected between {format_size(MEMORY_MIN)} (Docker's smallest memory limit) and "
            f"{format_size(MEMORY_MAX)}"
        )
    return size


def cpus_bounds(cpus: float) -> float:
    if not CPUS_MIN <= cpus <= CPUS_MAX:
        raise ValueError(
            f"expected between {CPUS_MIN} (Docker's smallest CPU limit) and {CPUS_MAX} CPUs"
        )
    return cpus


# --- the frontend ---------------------------------------------------------------------------


def private_network(value: str) -> str:
    # nginx believes X-Forwarded-For from this range: anything wider than a private range
    # (0.0.0.0/0, a public block) lets a client forge the address Frappe logs and rate-limits.
    if not ipaddress.ip_network(value).is_private:
        raise ValueError(
            "expected a private range such as 10.0.0.0/8 (the overlay network Traefik connects "
            "from): nginx trusts X-Forwarded-For from it, so a wider range lets any client "
            "forge its address"
        )
    return value


def nonzero_nginx_size(value: str) -> str:
    if int(re.sub(r"[^0-9]", "", value)) == 0:
        raise ValueError("expected a size above zero: 0 switches nginx's upload limit off")
    return value
