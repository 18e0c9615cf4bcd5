"""Rules for single config values that reach the swarm as arguments, mounts, limits or headers.

Each function is a pydantic after-validator: it returns the value or raises ValueError with what
is expected (the loader turns that into the key's problem). Kept beside ``model.py`` so the
models read as a list of settings and their types.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re

from components.config.units import format_size

# Free text that becomes a label value, a header or part of a command line (a Content-Security-
# Policy, a constraint): Docker stores labels in every task of the service, Traefik and nginx
# cap header sizes; longer than this is a paste gone wrong.
LABEL_TEXT_MAX = 1024

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


def nfs_export(value: str) -> str:
    """A path on the NFS server: "/" (NFSv4's pseudo-root, where a server exporting with
    fsid=0 puts its exports) or an absolute, normalised path of plain characters. It is the
    server's path, not the node's, so the node's system directories do not apply."""
    if value != "/" and (not _HOST_PATH.fullmatch(value) or posixpath.normpath(value) != value):
        raise ValueError(
            "expected / or an absolute, normalised path such as /exports/brandclub (letters, "
            "digits and . _ - + @ only; no '..' or '.' segments, no '//', no trailing '/')"
        )
    return value


# --- placement constraints -------------------------------------------------------------------

# The attributes Swarm places by (docs.docker.com/engine/swarm/services, "Placement
# constraints"); any other is never true, and the task never starts.
# A placement constraint: <attribute> == or != <value> (also read by components/swarm/capacity.py).
CONSTRAINT = re.compile(r"(?P<attribute>[A-Za-z0-9_.-]+) *(?P<operator>==|!=) *(?P<value>\S+)")
CONSTRAINT_ATTRIBUTES = (
    "node.id",
    "node.hostname",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
)
CONSTRAINT_LABEL_PREFIXES = ("node.labels.", "engine.labels.")
NODE_ROLES = ("manager", "worker")


def known_constraint(value: str) -> str:
    match = CONSTRAINT.fullmatch(value)
    if match is None:
        return value  # the pattern's own message says what is expected
    attribute = match["attribute"]
    labelled = attribute.startswith(CONSTRAINT_LABEL_PREFIXES) and not attribute.endswith(".")
    if attribute not in CONSTRAINT_ATTRIBUTES and not (
        labelled and attribute not in CONSTRAINT_LABEL_PREFIXES
    ):
        raise ValueError(
            f"expected a constraint on one of {', '.join(CONSTRAINT_ATTRIBUTES)}, "
            "node.labels.<key> or engine.labels.<key>: Swarm knows no "
            f"{attribute!r}, and a task constrained by it never starts"
        )
    if attribute == "node.role" and match["value"] not in NODE_ROLES:
        raise ValueError(f"expected node.role to be compared with {' or '.join(NODE_ROLES)}")
    return value


def contradiction(constraints: list[str]) -> str | None:
    """Why constraints that must all hold can never hold together, if they cannot."""
    equal: dict[str, set[str]] = {}
    unequal: dict[str, set[str]] = {}
    for constraint in constraints:
        match = CONSTRAINT.fullmatch(constraint)
        if match is None:
            continue
        into = equal if match["operator"] == "==" else unequal
        into.setdefault(match["attribute"], set()).add(match["value"])
    for attribute, values in equal.items():
        if len(values) > 1:
            return f"{attribute} cannot equal both {' and '.join(sorted(values))}"
        if values & unequal.get(attribute, set()):
            return f"{attribute} cannot be both == and != {next(iter(values))}"
    if set(NODE_ROLES) <= unequal.get("node.role", set()):
        return "a node is a manager or a worker: node.role != both leaves none"
    return None


def consistent_constraints(constraints: list[str]) -> list[str]:
    if (problem := contradiction(constraints)) is not None:
        raise ValueError(
            f"expected constraints some node can meet (all of them apply at once): {problem}"
        )
    return constraints


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


# --- Traefik: the ACME directory and access-log headers -------------------------------------
# (a private CA's certificates: components/config/certificates.py)

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
# The directory URL becomes part of one Traefik argument: a host (DNS name, IPv4 address or
# [IPv6]), an optional port and a path of unreserved characters. No query, no comma, no space,
# nothing a shell, a compose file or Traefik's flag parser would read as something else.
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ACME_URL = re.compile(
    rf"https://(?P<host>{_DNS_LABEL}(?:\.{_DNS_LABEL})*|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>(?:/(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*)*)"
)


def acme_directory_url(value: str) -> str:
    match = _ACME_URL.fullmatch(value)
    valid = match is not None and len(value) <= 2048
    if match and match["ipv6"]:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            valid = False
    if match and match["port"] and not 1 <= int(match["port"]) <= 65535:
        valid = False
    if not valid:
        raise ValueError(
            "expected the https:// URL of an ACME directory, such as "
            f"{LETS_ENCRYPT_STAGING} (a host name or address, an optional port and a path of "
            "letters, digits and . _ ~ - /; no query, space or comma)"
        )
    return value


def is_lets_encrypt(url: str) -> bool:
    host = url.removeprefix("https://").split("/", 1)[0].split(":", 1)[0].lower()
    return host.endswith(".api.letsencrypt.org")


# Request headers an access log may write: a header name (it becomes part of a Traefik option
# name), never one that carries credentials or a session.
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
# Anywhere in the name: words that only credentials use.
_CREDENTIAL_HEADER = re.compile(
    r"cookie|auth|token|secret|passw|passcode|key|csrf|xsrf|session|signature|credential|bearer"
    r"|jwt|saml|nonce|ticket|otp|assertion|cert|verif|dpop|sessid",
    re.IGNORECASE,
)
# Whole parts of the name (between '-'): short words too common inside other words to match
# anywhere (sid in Inside, sig in Design, pin in Ping).
_CREDENTIAL_PARTS = frozenset(
    {"sid", "sig", "sign", "signed", "pwd", "pass", "pin", "mfa", "2fa", "hmac"}
)


def logged_header(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError("expected a header name such as User-Agent (letters, digits and -)")
    parts = {part.lower() for part in value.split("-")}
    if _CREDENTIAL_HEADER.search(value) or parts & _CREDENTIAL_PARTS:
        raise ValueError(
            "expected a header without credentials: Cookie, Authorization and any header "
            "naming a token, key, secret, password, PIN, one-time code, CSRF token, session "
            "(id), signature, nonce or ticket never reach a log"
        )
    return value
