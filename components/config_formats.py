"""Rules for single config values that reach the swarm as arguments, mounts, limits or headers.

Each function is a pydantic after-validator: it returns the value or raises ValueError with what
is expected (the loader turns that into the key's problem). Kept beside ``config.py`` so the
models read as a list of settings and their types.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import re

from components.units import format_size

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
_CONSTRAINT = re.compile(r"(?P<attribute>[A-Za-z0-9_.-]+) *(?P<operator>==|!=) *(?P<value>\S+)")
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
    match = _CONSTRAINT.fullmatch(value)
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
        match = _CONSTRAINT.fullmatch(constraint)
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


# --- Traefik: the ACME directory, a private CA's certificates, access-log headers ------------

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


# Docker refuses a config above 500 KiB; a whole public root bundle is about 220 KiB.
PEM_MAX_BYTES = 500 * 1024
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def pem_certificates(value: str) -> str:
    """One or more PEM ``CERTIFICATE`` blocks and nothing else; returned in canonical form (LF
    line ends, blocks separated by nothing, a final newline) so its fingerprint is stable.

    Without the ``cryptography`` package (not among the program's dependencies) the check is
    structural: strict base64 per line, and each block's bytes a DER X.509 Certificate (a
    SEQUENCE of tbsCertificate, signatureAlgorithm and a BIT STRING signature, the
    tbsCertificate starting with its serial number and five SEQUENCEs).
    """
    if len(value.encode()) > PEM_MAX_BYTES:
        raise ValueError(f"expected at most {PEM_MAX_BYTES // 1024} KiB (Docker's config limit)")
    blocks: list[list[str]] = []
    body: list[str] | None = None
    for number, raw in enumerate(value.splitlines(), start=1):
        line = raw.strip()
        if body is None:
            begin = _PEM_BEGIN.fullmatch(line)
            if begin and begin[1] == "CERTIFICATE":
                body = []
            elif begin:
                raise ValueError(_pem_wrong_block(begin[1]))
            elif line:
                raise ValueError(
                    f"expected nothing but PEM certificates (line {number} is outside any "
                    "-----BEGIN CERTIFICATE----- block)"
                )
        elif line == "-----END CERTIFICATE-----":
            _der_certificate(body, len(blocks) + 1)
            blocks.append(body)
            body = None
        elif _BASE64_LINE.fullmatch(line):
            body.append(line)
        else:
            raise ValueError(
                f"expected base64 lines inside each certificate block (line {number} is not)"
            )
    if body is not None:
        raise ValueError("expected every certificate block to end with -----END CERTIFICATE-----")
    if not blocks:
        raise ValueError(
            "expected one or more PEM certificates (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----)"
        )
    return "".join(
        "-----BEGIN CERTIFICATE-----\n" + "\n".join(body) + "\n-----END CERTIFICATE-----\n"
        for body in blocks
    )


def _pem_wrong_block(label: str) -> str:
    if "PRIVATE KEY" in label:
        return (
            f"expected certificates only, found a {label}: this value is public (a Docker "
            "config), and a CA's key never leaves the CA"
        )
    return f"expected nothing but PEM certificates, found a {label} block"


def _der_certificate(lines: list[str], index: int) -> None:
    problem = f"expected certificate {index} to be a DER X.509 certificate in base64"
    try:
        der = base64.b64decode("".join(lines), validate=True)
    except binascii.Error:
        raise ValueError(f"{problem} (its base64 does not decode)") from None
    try:
        tag, start, end = _der_element(der, 0)
        if tag != 0x30 or end != len(der):
            raise ValueError
        parts = _der_children(der, start, end)
        if [tag for tag, *_ in parts] != [0x30, 0x30, 0x03]:
            raise ValueError
        _, tbs_start, tbs_end = parts[0]
        tbs = _der_children(der, tbs_start, tbs_end)
        tags = [tag for tag, *_ in tbs]
        fields = tags[1:] if tags[:1] == [0xA0] else tags  # [0] version, absent in v1
        if fields[:6] != [0x02, 0x30, 0x30, 0x30, 0x30, 0x30]:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(problem) from None
    if not _is_ca(der, tbs):
        raise ValueError(
            f"expected certificate {index} to be a CA certificate (X.509 v3 with basic "
            "constraints cA TRUE): the resolver trusts only these roots, and a server or "
            "client certificate signs nothing"
        )


# basicConstraints (2.5.29.19) as a DER object identifier.
_BASIC_CONSTRAINTS = bytes.fromhex("0603551d13")


def _is_ca(der: bytes, tbs: list[tuple[int, int, int]]) -> bool:
    """Whether the tbsCertificate's [3] extensions hold basicConstraints with cA TRUE
    (RFC 5280 4.2.1.9); a v1 certificate has no extensions and so is no CA here."""
    try:
        extensions = [child for child in tbs if child[0] == 0xA3]
        if not extensions:
            return False
        _, start, _ = extensions[0]
        _, seq_start, seq_end = _der_element(der, start)
        for _, ext_start, ext_end in _der_children(der, seq_start, seq_end):
            fields = _der_children(der, ext_start, ext_end)
            _, oid_start, oid_end = fields[0]
            if der[oid_start - 2 : oid_end] != _BASIC_CONSTRAINTS:
                continue
            _, value_start, _ = fields[-1]  # the OCTET STRING
            _, bc_start, bc_end = _der_element(der, value_start)
            values = _der_children(der, bc_start, bc_end)
            # cA BOOLEAN DEFAULT FALSE: present and non-zero.
            return bool(values) and values[0][0] == 0x01 and der[values[0][1]] != 0
        return False
    except (ValueError, IndexError):
        return False


def _der_element(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at ``offset``."""
    tag, length = der[offset], der[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4:
            raise ValueError
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise ValueError
    return tag, start, end


def _der_children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    children = []
    while start < end:
        child = _der_element(der, start)
        if child[2] > end:
            raise ValueError
        children.append(child)
        start = child[2]
    return children


# Request headers an access log may write: a header name (it becomes part of a Traefik option
# name), never one that carries credentials or a session.
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
# Anywhere in the name: words that only credentials use.
_CREDENTIAL_HEADER = re.compile(
    r"cookie|auth|token|secret|passw|passcode|key|csrf|xsrf|session|signature|credential|bearer"
    r"|jwt|saml|nonce|ticket|otp|assertion",
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
