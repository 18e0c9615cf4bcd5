"""Grammars of values that name something to another program: image references and registry
hosts (docker), the off-site targets (rsync over ssh, an S3 endpoint), the Docker host the
site jobs' docker CLI talks to, and an NFS server's address.

Each is checked against the grammar of what it names, not against a loose pattern: a value
that parses as something else (an option starting with '-', shell syntax, a path escaping
with '..') is refused before it reaches a command line. Each function is a pydantic
after-validator: it returns the value or raises ValueError saying what is expected.
"""

from __future__ import annotations

import ipaddress
import re

# --- Docker image references ------------------------------------------------------------
# The grammar of Docker's reference package (github.com/distribution/reference, regexp.go):
#   reference  := name [ ":" tag ] [ "@" digest ]
#   name       := [ domain "/" ] path-component ( "/" path-component )*
#   domain     := host [ ":" port ]
#   host       := domain-component ( "." domain-component )* | "[" IPv6 "]"
#   path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*,  separator := [_.] | "__" | "-"+
#   tag        := [\w][\w.-]{0,127}
# The first component is a registry host when it holds a '.' or a ':', or is "localhost".
# The program pins images by sha256 (components/images.py), so a digest here is sha256 only.
_DOMAIN_COMPONENT = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(
    rf"(?P<name>{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])"
    r"(?::(?P<port>[0-9]+))?"
)
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# Docker's limit on a repository name, registry host included.
NAME_MAX = 255
PORT_MAX = 65535

REGISTRY_EXPECTED = (
    "a registry host such as ghcr.io or registry.example.com:5000 (DNS labels of letters, "
    "digits and '-', or [IPv6]; a port from 1 to 65535)"
)
REPOSITORY_EXPECTED = (
    "an image repository without a tag, e.g. ghcr.io/org/app ([registry/]path, each path "
    "component lower-case letters and digits joined by . _ __ or -)"
)
REFERENCE_EXPECTED = (
    "an image reference such as redis:6.2-alpine ([registry/]path[:tag][@sha256:<64 hex>], each "
    "path component lower-case letters and digits joined by . _ __ or -)"
)


def _host_problem(value: str) -> str | None:
    match = _HOST.fullmatch(value)
    if match is None:
        return "not a host[:port]"
    if match["ipv6"]:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            return "not an IPv6 address"
    if match["port"] is not None and not 1 <= int(match["port"]) <= PORT_MAX:
        return f"port {match['port']} is outside 1-{PORT_MAX}"
    if match["name"] and len(match["name"]) > 253:
        return "the host is longer than 253 characters"
    return None


def registry_host(value: str) -> str:
    if (problem := _host_problem(value)) is not None:
        raise ValueError(f"{REGISTRY_EXPECTED}; {problem}")
    return value


def _name_problem(name: str) -> str | None:
    if len(name) > NAME_MAX:
        return f"the name is longer than {NAME_MAX} characters"
    first, slash, rest = name.partition("/")
    components = name.split("/")
    if slash and ("." in first or ":" in first or first == "localhost" or "[" in first):
        if (problem := _host_problem(first)) is not None:
            return f"registry {first!r}: {problem}"
        components = rest.split("/")
    for component in components:
        if not _PATH_COMPONENT.fullmatch(component):
            return (
                f"path component {component!r} is not lower-case letters and digits joined "
                "by . _ __ or -"
            )
    return None


def image_repository(value: str) -> str:
    if (problem := _name_problem(value)) is not None:
        raise ValueError(f"{REPOSITORY_EXPECTED}; {problem}")
    return value


def split_reference(value: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of a reference; the tag is what follows the last ':' after the last
    '/', so a registry port is never taken for a tag."""
    name, at, digest = value.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest if at else None


def image_reference(value: str) -> str:
    name, tag, digest = split_reference(value)
    problem = _name_problem(name)
    if problem is None and tag is not None and not _TAG.fullmatch(tag):
        problem = f"tag {tag!r} is not letters, digits, _ . - (at most 128, not starting . or -)"
    if problem is None and digest is not None and not _DIGEST.fullmatch(digest):
        problem = "the digest is not sha256:<64 lower-case hex digits>"
    if problem is not None:
        raise ValueError(f"{REFERENCE_EXPECTED}; {problem}")
    return value


# --- the off-site targets -----------------------------------------------------------------

# rsync's target reaches ssh (user, host) and, on rsync before 3.2.4, the remote shell (path).
# user: a POSIX user name; host: a DNS name, IPv4 address or [IPv6]; path: absolute, plain
# path characters only, no '..' segment. Nothing can start with '-' (an ssh option).
_RSYNC_TARGET = re.compile(
    r"(?P<user>[a-z_][a-z0-9_.-]{0,31})@(?P<host>[^@:/\s]+|\[[0-9A-Fa-f:.]+\]):(?P<path>/\S*)"
)
_REMOTE_PATH = re.compile(r"(/[A-Za-z0-9._+@-]+)*/?")
RSYNC_EXPECTED = (
    "user@host:/absolute/path (a user name of lower-case letters, digits, _ . -, not starting "
    "with '-'; a DNS name or IP address; a path of letters, digits and . _ + @ - with no '..' "
    "segment and nothing a shell would read)"
)


def _dns_or_ip(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    with_letters = re.fullmatch(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*", host)
    if with_letters is None or len(host) > 253:
        return False
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
    return True


def rsync_target(value: str) -> str:
    match = _RSYNC_TARGET.fullmatch(value)
    valid = (
        match is not None
        and _dns_or_ip(match["host"])
        and _REMOTE_PATH.fullmatch(match["path"]) is not None
        and ".." not in match["path"].split("/")
    )
    if not valid:
        raise ValueError(f"expected {RSYNC_EXPECTED}")
    return value


# The S3 client's endpoint: https only (the backups would cross the network in clear text
# otherwise), a host, an optional port, an optional plain path; no credentials, query or
# fragment in the URL.
_S3_ENDPOINT = re.compile(
    r"https://(?P<host>[^/:@?#\s\[\]]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]+))?"
    r"(?P<path>(?:/[A-Za-z0-9._~-]*)*)"
)


def s3_endpoint(value: str) -> str:
    match = _S3_ENDPOINT.fullmatch(value)
    valid = (
        match is not None
        and _dns_or_ip(match["host"])
        and (match["port"] is None or 1 <= int(match["port"]) <= PORT_MAX)
        and not {".", ".."} & set(match["path"].split("/"))
    )
    if not valid:
        cleartext = (
            " (http:// would send the backups in clear text)" if value.startswith("http://") else ""
        )
        raise ValueError(
            "expected an https:// URL such as https://s3.eu-central-1.amazonaws.com (a host "
            f"name or address, an optional port and path; no user, query or fragment){cleartext}"
        )
    return value


# --- the Docker host of the site jobs' docker CLI (docker:host) ------------------------------

_DOCKER_HOST = re.compile(
    r"unix://(?P<socket>/[A-Za-z0-9._/+-]+)"
    r"|ssh://(?:(?P<user>[a-z_][a-z0-9_.-]{0,31})@)?(?P<ssh_host>[^@:/\s]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<ssh_port>[0-9]+))?"
    r"|tcp://(?P<tcp_host>[^@:/\s]+|\[[0-9A-Fa-f:.]+\]):(?P<tcp_port>[0-9]+)"
)
DOCKER_HOST_EXPECTED = (
    "unix:///path/to/docker.sock, ssh://[user@]host[:port] or tcp://host:port (a DNS name or IP "
    "address, a port from 1 to 65535)"
)
REMOTE_DOCKER_SCHEMES = ("ssh://", "tcp://")


def docker_host_problem(value: str) -> str | None:
    """What is wrong with a ``docker:host`` value, None when it is a Docker host URL."""
    match = _DOCKER_HOST.fullmatch(value)
    if match is None:
        return DOCKER_HOST_EXPECTED
    host = match["ssh_host"] or match["tcp_host"]
    port = match["ssh_port"] or match["tcp_port"]
    if host is not None and not _dns_or_ip(host):
        return DOCKER_HOST_EXPECTED
    if port is not None and not 1 <= int(port) <= PORT_MAX:
        return DOCKER_HOST_EXPECTED
    if match["socket"] is not None and ".." in match["socket"].split("/"):
        return DOCKER_HOST_EXPECTED
    return None


# --- NFS ----------------------------------------------------------------------------------


def nfs_address(value: str) -> str:
    """An NFS server: an IPv4 or IPv6 address (bare, as the kernel's addr= option takes it) or
    a DNS name; the local driver resolves nothing, so a name must resolve on every node."""
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        address = ipaddress.ip_address(bare)
        if bare != value and address.version != 6:
            raise ValueError
    except ValueError:
        if not _dns_or_ip(value) or not re.search(r"[A-Za-z]", value.rsplit(".", 1)[-1]):
            raise ValueError(
                "expected an IP address such as 10.0.0.5 or fd00::5, or a DNS name such as "
                "nfs.internal (its last label not all digits)"
            ) from None
    return value
