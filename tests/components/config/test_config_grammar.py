"""The grammars of values that name something to another program (components/config/grammar.py):
image references and registry hosts, the off-site targets, docker:host and NFS addresses.

The property tests draw from the grammar itself (Docker's reference grammar, a DNS name), so a
value the grammar allows is never refused and one it does not allow never passes.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from components.config.grammar import (
    docker_host_problem,
    image_reference,
    image_repository,
    nfs_address,
    registry_host,
    rsync_target,
    s3_endpoint,
)
from components.config.types import Hostname

# Few examples, always the same ones: the unit tier stays fast and never flaky.
GRAMMAR = settings(
    max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
path_components = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    _alnum,
    st.lists(st.tuples(_separator, _alnum), max_size=2),
)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hosts = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
ports = st.integers(min_value=1, max_value=65535)
registries = st.builds(
    lambda host, port: host if port is None else f"{host}:{port}", hosts, st.none() | ports
)
repositories = st.builds(
    lambda registry, path: "/".join([registry, *path]) if registry else "/".join(path),
    st.none() | registries,
    st.lists(path_components, min_size=1, max_size=3),
)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
digests = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)
references = st.builds(
    lambda name, tag, digest: name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else ""),
    repositories,
    st.none() | tags,
    st.none() | digests,
)


@GRAMMAR
@given(references)
def test_every_reference_of_the_grammar_is_accepted(reference: str) -> None:
    assert image_reference(reference) == reference


@GRAMMAR
@given(repositories)
def test_every_repository_of_the_grammar_is_accepted(repository: str) -> None:
    assert image_repository(repository) == repository


@GRAMMAR
@given(references, st.sampled_from(["-", ".", "_", "/", ":", "..", " ", "$(x)", ";", "A"]))
def test_a_reference_that_starts_outside_the_grammar_is_refused(
    reference: str, prefix: str
) -> None:
    # A component may not start with a separator, an upper-case letter, a shell character.
    with pytest.raises(ValueError, match="an image reference such as"):
        image_reference(prefix + reference)


@GRAMMAR
@given(repositories, st.sampled_from(["/..", "/.", "//", "/-x", "/x-", "/a..b", "/x y", "/X"]))
def test_a_repository_with_a_bad_path_component_is_refused(repository: str, bad: str) -> None:
    with pytest.raises(ValueError, match="an image repository without a tag"):
        image_repository(repository + bad)


@GRAMMAR
@given(registries)
def test_every_registry_host_of_the_grammar_is_accepted(registry: str) -> None:
    assert registry_host(registry) == registry


@GRAMMAR
@given(hosts, st.integers(min_value=65536, max_value=10**6) | st.just(0))
def test_a_registry_port_outside_1_to_65535_is_refused(host: str, port: int) -> None:
    with pytest.raises(ValueError, match="outside 1-65535"):
        registry_host(f"{host}:{port}")


@pytest.mark.parametrize(
    "value",
    ["..", ".", "-registry.io", "registry.io.", "reg_istry.io", "registry.io:", "[::g]", "a b"],
)
def test_a_registry_host_outside_the_grammar_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"a registry host such as ghcr\.io"):
        registry_host(value)


@pytest.mark.parametrize(
    "value",
    [
        "-q/app",
        "../x",
        "ghcr.io/../x",
        "ghcr.io:99999/org/app",
        "localhost:0/app",
        "ghcr.io/Org/app",
        "ghcr.io/org/app:tag",
        "org/app@sha256:abc",
        "x" * 256,
    ],
)
def test_an_app_repository_outside_the_grammar_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="an image repository"):
        image_repository(value)


@pytest.mark.parametrize(
    "value",
    [
        "redis:-x",
        "redis:.x",
        "redis:" + "a" * 129,
        "redis@sha256:" + "A" * 64,
        "redis@md5:" + "a" * 32,
        "redis:6@",
    ],
)
def test_a_reference_with_a_bad_tag_or_digest_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="an image reference such as"):
        image_reference(value)


@pytest.mark.parametrize(
    "value", ["[::1]:5000/redis:6", "localhost/app:1", "registry.io:5000/a/b__c/d--e:v1.2"]
)
def test_registry_hosts_with_ports_and_ipv6_are_references(value: str) -> None:
    assert image_reference(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "backup@vault.example.net:/srv/brandclub",
        "backup@10.0.0.9:/",
        "b_k.p@[fd00::9]:/srv/back-ups/brand+club",
    ],
)
def test_a_plain_rsync_target_is_accepted(value: str) -> None:
    assert rsync_target(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "u@-oProxyCommand=touch${IFS}x:/p",
        "-oProxyCommand=x@h:/p",
        "u@h:/p;reboot",
        "u@h:/p$(reboot)",
        "u@h:/p`id`",
        "u@h:/p|x",
        "u@h:/p&x",
        "u@h:/p'x",
        "u@h:/srv/../etc",
        "u@h:relative",
        "u@h:/a b",
        "u@h:/a\nb",
        "U@h:/p",
        "u@h_x:/p",
        "u@300.1.1.1:/p",
        "u@[fd00::g]:/p",
        "u@h",
    ],
)
def test_an_rsync_target_that_could_run_something_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="user@host:/absolute/path"):
        rsync_target(value)


@pytest.mark.parametrize(
    "value",
    [
        "https://s3.eu-central-1.amazonaws.com",
        "https://minio.internal:9000",
        "https://10.0.0.9:9000/",
        "https://[fd00::9]/s3",
    ],
)
def test_an_https_s3_endpoint_is_accepted(value: str) -> None:
    assert s3_endpoint(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "http://s3.amazonaws.com",
        "HTTP://s3.amazonaws.com",
        "ftp://s3.amazonaws.com",
        "https://user:pw@s3.amazonaws.com",
        "https://s3.amazonaws.com?x=1",
        "https://s3.amazonaws.com#f",
        "https://-s3.amazonaws.com",
        "https://s3.amazonaws.com:0",
        "https://s3.amazonaws.com:70000",
        "https://s3.amazonaws.com/a b",
        "https://s3.amazonaws.com/../x",
        "https://",
    ],
)
def test_an_s3_endpoint_that_is_not_a_plain_https_url_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="an https:// URL"):
        s3_endpoint(value)


def test_an_http_s3_endpoint_says_why() -> None:
    with pytest.raises(ValueError, match="clear text"):
        s3_endpoint("http://minio.internal:9000")


@pytest.mark.parametrize(
    "value",
    [
        "unix:///var/run/docker.sock",
        "ssh://deploy@swarm.brandclub.com",
        "ssh://swarm.brandclub.com:2222",
        "tcp://10.0.0.5:2376",
    ],
)
def test_a_docker_host_url_is_accepted(value: str) -> None:
    assert docker_host_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "ssh://-oProxyCommand=x",
        "ssh://-l@host",
        "ssh://deploy@swarm.brandclub.com;reboot",
        "tcp://10.0.0.5",
        "tcp://10.0.0.5:0",
        "unix://relative.sock",
        "unix:///var/run/../docker.sock",
        "http://swarm:2375",
        "--tlsverify",
    ],
)
def test_a_docker_host_that_is_not_a_url_is_refused(value: str) -> None:
    assert docker_host_problem(value) is not None


@pytest.mark.parametrize(
    "value", ["10.0.0.5", "fd00::5", "[fd00::5]", "nfs.internal", "nfs1", "filer-a.example.org"]
)
def test_an_nfs_address_is_accepted(value: str) -> None:
    assert nfs_address(value) == value


@pytest.mark.parametrize(
    "value",
    ["10.0.0.256", "1.2.3", "999", "[10.0.0.5]", "fd00::g", "-nfs", "nfs..internal", "nfs_a", ""],
)
def test_an_nfs_address_that_is_not_an_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"an IP address such as 10\.0\.0\.5"):
        nfs_address(value)


# --- domains (components/config/types.py Hostname) --------------------------------------------

_HOSTNAME = TypeAdapter(Hostname)
domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=4),
    st.from_regex(r"[a-z]{2,12}|xn--[a-z0-9]{2,10}", fullmatch=True),
)


@GRAMMAR
@given(domains)
def test_every_dns_name_of_the_grammar_is_a_domain(domain: str) -> None:
    assert _HOSTNAME.validate_python(domain) == domain


@GRAMMAR
@given(
    domains,
    st.sampled_from(
        [("-", ""), ("", "."), ("", "-"), ("*.", ""), ("", ":443"), ("a_", ""), ("", "/x"),
         ("A", ""), ("", " "), ("..", ""), ("", "\n")]
    ),
)  # fmt: skip
def test_a_domain_outside_the_grammar_is_refused(domain: str, around: tuple[str, str]) -> None:
    with pytest.raises(ValidationError, match="a lower-case DNS name"):
        _HOSTNAME.validate_python(around[0] + domain + around[1])


@pytest.mark.parametrize("domain", ["localhost", "brandclub", "x." * 127 + "com", "a.b.123"])
def test_names_that_are_no_public_domain_are_refused(domain: str) -> None:
    with pytest.raises(ValidationError):
        _HOSTNAME.validate_python(domain)
