"""The database outlives every application change (architecture section 1.1).

For any change to application settings - image tag or digest, replicas, resources, environment
values, domains, apps, health checks, rollout policy, ingress options, labels, backup settings,
a restore request - every DataLayer resource keeps
its name, parent chain, inputs and options exactly: Pulumi then has nothing to update, replace
or restart in the database stack.
"""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from components.config.ingress import HSTS_MAX_AGE_MAX
from components.platform.catalogue import STANDALONE_ENVIRONMENTS
from harness import DELETE, PRIVATE_CA, STACKS, deep_merge, render

DATA_LAYER = "brandclub:swarm:DataLayer"
STATELESS = ("backend", "frontend", "queue-default", "queue-short", "queue-long")


@cache
def data_layer_fingerprints(stack: str) -> dict[str, str]:
    return _data_layer(render(stack))


def _data_layer(rendering) -> dict[str, str]:
    return {r.urn: r.fingerprint for r in rendering.resources if DATA_LAYER in r.urn}


hostnames = st.from_regex(r"[a-z][a-z0-9]{0,8}\.brandclub\.(com|net)", fullmatch=True)
durations = st.sampled_from(["5s", "10s", "15s", "30s", "1m", "1m30s"])
memory = st.sampled_from(["1G", "1536M", "2G", "3G"])


@st.composite
def app_changes(draw: st.DrawFn) -> dict:
    services = {
        name: {
            "replicas": draw(st.integers(1, 4)),
            "limits": {"cpus": draw(st.sampled_from([1.0, 1.5, 2.0])), "memory": draw(memory)},
        }
        for name in draw(st.lists(st.sampled_from(STATELESS), unique=True, max_size=3))
    }
    websocket_replicas = draw(st.integers(1, 3))
    services["websocket"] = {"replicas": websocket_replicas}
    manage = draw(st.booleans())
    ingress = {
        "manage": manage,
        "websocketDirect": draw(st.booleans()),
        "noindex": draw(st.booleans()),
        "hsts": {"enabled": draw(st.booleans()), "maxAge": draw(st.integers(0, HSTS_MAX_AGE_MAX))},
        "logLevel": draw(st.sampled_from(["DEBUG", "INFO", "WARN", "ERROR"])),
        "constraintLabel": draw(st.sampled_from(["traefik-public", "edge"])),
    }
    ingress["accessLog"] = {"enabled": draw(st.booleans())}
    ingress["metrics"] = {"enabled": draw(st.booleans())}
    if manage:
        ingress["metrics"]["port"] = draw(st.sampled_from([8082, 9100]))
        ingress["certificates"] = draw(st.sampled_from(["acme", "default"]))
        if ingress["certificates"] == "default":
            ingress["acmeEmail"] = DELETE  # prod's stack file states one
    if manage and ingress["certificates"] == "acme":
        ingress["acmeEmail"] = "ops@brandclub.com"
        if draw(st.booleans()):
            ingress["acmeCaServer"] = "https://ca.internal:9000/acme/acme/directory"
            ingress["acmeCaCertificate"] = PRIVATE_CA
    if draw(st.booleans()):
        ingress["contentSecurityPolicy"] = draw(st.sampled_from(["default-src 'self'", "x"]))
    domains = draw(st.lists(hostnames, min_size=1, max_size=3, unique=True))
    optional = {}
    if draw(st.booleans()):
        optional["brandclub:imageDigest"] = (
            "sha256:" + draw(st.sampled_from("0123456789abcdef")) * 64
        )
    if draw(st.booleans()):
        optional["brandclub:restore"] = {"site": domains[0], "date": "2026-11-20"}
    return {
        **optional,
        "brandclub:imageTag": draw(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,15}", fullmatch=True)),
        "brandclub:domains": domains,
        "brandclub:services": services,
        "brandclub:frappe": {
            "gunicornWorkers": draw(st.integers(1, 16)),
            "gunicornTimeout": draw(st.integers(30, 600)),
            "clientMaxBodySize": draw(st.sampled_from(["10m", "50m", "1g"])),
            "realIpFrom": draw(st.sampled_from(["10.0.0.0/8", "172.16.0.0/12"])),
            "apps": draw(st.sampled_from([["erpnext"], ["erpnext", "brandclub"]])),
        },
        "brandclub:healthcheck": {
            "interval": draw(durations),
            "retries": draw(st.integers(1, 10)),
        },
        "brandclub:rollout": {
            "parallelism": draw(st.integers(1, 3)),
            "monitor": draw(durations),
            "maxFailureRatio": draw(st.sampled_from([0.0, 0.1, 0.5])),
        },
        "brandclub:ingress": ingress,
        "brandclub:images": {
            "app": draw(st.sampled_from(["ghcr.io/brand-club/brandclub", "local/brandclub"])),
            "traefik": draw(st.sampled_from(["traefik:v3.5", "traefik:v3.6"])),
        },
        "brandclub:placement": {
            "app": draw(st.sampled_from([[], ["node.role == worker"], ["node.labels.app == 1"]]))
        },
        "brandclub:backup": {
            "time": draw(st.sampled_from(["00:00", "02:00", "23:59"])),
            "retentionDays": draw(st.integers(1, 30)),
        },
    }


# 20 examples, derandomized (the same ones every run): each draws every setting at once, and
# together they take every stack and every listed value but two (a 50m upload limit, the CSP
# "x"), which the explicit example adds; 40 (8 s, the unit tier's longest test) bought little
# more.
@example(
    stack="prod",
    change={
        "brandclub:frappe": {"clientMaxBodySize": "50m"},
        "brandclub:ingress": {"contentSecurityPolicy": "x"},
    },
)
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(stack=st.sampled_from(STACKS), change=app_changes())
def test_app_only_changes_leave_the_data_layer_byte_identical(stack: str, change: dict) -> None:
    if stack in STANDALONE_ENVIRONMENTS:  # alone on its swarm: it always runs its Traefik
        change = deep_merge(change, {"brandclub:ingress": {"manage": True}})
    if stack == "prod":  # one replica is refused in prod unless it is being taken down
        change = deep_merge(change, {"brandclub:dataProtection": {"decommission": True}})
    before = data_layer_fingerprints(stack)
    after = _data_layer(render(stack, change))
    assert set(after) == set(before)
    for urn, fingerprint in before.items():
        assert after[urn] == fingerprint, urn


def test_the_comparison_sees_a_data_layer_change() -> None:
    """Guard against a comparison that cannot fail: a database setting must show up."""
    before = data_layer_fingerprints("prod")
    after = _data_layer(render("prod", {"brandclub:mariadb": {"bufferPoolSize": "1536M"}}))
    changed = {urn for urn in before if after[urn] != before[urn]}
    assert changed == {next(u for u in before if u.endswith("::data-mariadb"))}


def test_the_data_layer_is_most_of_what_a_stack_registers() -> None:
    # 1 component + 3 networks + 5 volumes + 1 secret + 3 services, in every environment
    # (local never had the retired cache volume: 4 volumes).
    for stack in STACKS:
        assert len(data_layer_fingerprints(stack)) == (12 if stack == "local" else 13)
