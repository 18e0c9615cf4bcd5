"""The local stack (Pulumi.local.yaml, docs/local.md): the whole platform on one machine, rendered
under mocks from its stack file like every stack (tests/conftest.py's ``rendered``).

What makes it local: one Traefik of its own with no ACME resolver (Traefik's default
certificate), nothing protected or retained so a destroy removes it all, ``*.localhost``
routing, one replica of everything, mailpit, no backup; the same validation and policy pack as
every other stack, with the rules for a shared swarm relaxed only for it.
"""

from __future__ import annotations

import pytest

from harness import (
    DELETE,
    Rendering,
    app_services,
    assert_reported_before_registering,
    bad_input,
)
from policy_checks import POLICY, violations

SERVICE = "docker:index/service:Service"
SITE = "brandclub.localhost"


@pytest.fixture
def local(rendered: dict[str, Rendering]) -> Rendering:
    return rendered["local"]


def _labels_and_args(rendering: Rendering) -> list[str]:
    """Every label (key=value) and argument of every service."""
    texts = []
    for service in rendering.of_type(SERVICE):
        texts += [f"{key}={value}" for key, value in service.labels.items()]
        texts += service.container.get("args") or []
    return texts


def test_it_renders_and_passes_every_policy(local: Rendering) -> None:
    assert local.exports["siteUrl"] == f"https://{SITE}"
    assert {name: violations(name, local) for name in POLICY} == {name: [] for name in POLICY}


def test_exactly_one_traefik_with_no_acme_resolver(local: Rendering) -> None:
    traefiks = [s for s in local.of_type(SERVICE) if s.inputs["name"] == "traefik_traefik"]
    assert len(traefiks) == 1
    texts = _labels_and_args(local)
    assert texts
    assert not [text for text in texts if "certresolver" in text.lower()]
    assert not [text for text in texts if "certificatesresolvers" in text.lower()]
    assert not [text for text in texts if "acme" in text.lower()]
    # Nothing keeps ACME certificates.
    assert not [m for m in traefiks[0].container["mounts"] if m["target"] == "/certificates"]
    volumes = {v.inputs["name"] for v in local.of_type("docker:index/volume:Volume")}
    assert "traefik-certificates" not in volumes
    # Its routers are TLS routers: Traefik serves its default certificate for them.
    router = "traefik.http.routers.brandclub-local"
    frontend = app_services(local)["frontend"].labels
    assert frontend[f"{router}.tls"] == "true"
    assert frontend[f"{router}.entrypoints"] == "websecure"


def test_nothing_is_protected_or_kept_past_a_destroy(local: Rendering) -> None:
    kept = [
        (r.name, r.options.get("protect"), r.options.get("retainOnDelete"))
        for r in local.resources
        if r.options.get("protect") or r.options.get("retainOnDelete")
    ]
    assert kept == []
    # The volumes it does make go with it: the data layer's four, none retired.
    volumes = sorted(v.inputs["name"] for v in local.of_type("docker:index/volume:Volume"))
    assert volumes == [f"brandclub-local-{p}" for p in ("logs", "mariadb", "redis-queue", "sites")]


def test_its_ingress_is_labelled_its_own(local: Rendering, rendered) -> None:
    """What lets the policy pack tell local's Traefik from the swarm-wide one of prod."""
    ingress = [r for r in local.resources if r.name.startswith("ingress-") and r.custom]
    assert {r.type for r in ingress} == {SERVICE, "docker:index/network:Network"}
    for resource in ingress:
        assert resource.labels["brandclub.environment"] == "local", resource.name
    prod = [r for r in rendered["prod"].resources if r.name.startswith("ingress-") and r.custom]
    assert prod and all("brandclub.environment" not in r.labels for r in prod)


def test_the_shared_ingress_rule_still_holds_for_any_other_environment(local: Rendering) -> None:
    """local's unprotected Traefik would violate the rule were it labelled as a shared one."""

    def as_dev(raw: dict) -> None:
        for item in raw["labels"]:
            if item["label"] == "brandclub.environment":
                item["value"] = "dev"

    found = violations("shared-ingress-protected", local, mutate={"ingress-traefik": as_dev})
    assert found == [
        (
            "ingress-traefik",
            "docker:index/service:Service traefik_traefik is shared by every environment on "
            "the swarm and is not protected",
        )
    ]


def test_the_site_is_routed_under_localhost(local: Rendering) -> None:
    frontend = app_services(local)["frontend"]
    rules = {k: v for k, v in frontend.labels.items() if k.endswith(".rule")}
    assert rules == {"traefik.http.routers.brandclub-local.rule": f"Host(`{SITE}`)"}
    assert SITE.endswith(".localhost")
    assert frontend.container["env"]["FRAPPE_SITE_NAME_HEADER"] == SITE


def test_one_replica_of_everything_mailpit_and_no_backup(local: Rendering) -> None:
    replicas = {s.inputs["name"]: s.replicas for s in local.of_type(SERVICE)}
    assert set(replicas.values()) == {1}
    assert "brandclub-local_mailpit" in replicas
    assert not [name for name in replicas if "backup" in name]
    assert "prepare-backup-dir" not in local.exports["siteJobs"]


def test_it_runs_a_published_frappe_image_by_digest(local: Rendering) -> None:
    image = app_services(local)["backend"].container["image"]
    assert image.startswith("frappe/erpnext:v15.") and "@sha256:" in image


LOCAL_BAD_INPUTS = [
    bad_input(
        "local",
        {"brandclub:ingress": {"manage": False, "certificates": DELETE}},
        "brandclub:ingress.manage",
        "true: local is alone on its swarm",
        "false",
        "standalone-without-its-traefik",
    ),
    bad_input(
        "local",
        {"brandclub:imageTag": DELETE},
        "brandclub:imageTag",
        "no branch deploys local",
        "null",
        "no-branch-no-tag",
    ),
    bad_input(
        "local",
        {"brandclub:ingress": {"acmeEmail": "ops@brandclub.com"}},
        "brandclub:ingress.acmeEmail",
        "unset where ingress.certificates is default",
        "'ops@brandclub.com'",
        "default-certificates-with-an-acme-email",
    ),
    bad_input(
        "prod",
        {"brandclub:ingress": {"certificates": "default"}},
        "brandclub:ingress.acmeEmail",
        "unset where ingress.certificates is default",
        "'ops@brandclub.com'",
        "prod-to-default-certificates-keeps-its-acme-email",
    ),
    bad_input(
        "dev",
        {"brandclub:ingress": {"certificates": "default"}},
        "brandclub:ingress.certificates",
        "unset where ingress.manage is false",
        "'default'",
        "certificates-where-traefik-is-not-run",
    ),
    bad_input(
        "local",
        {"brandclub:ingress": {"certificates": "self-signed"}},
        "brandclub:ingress.certificates",
        "'acme' or 'default'",
        "'self-signed'",
        "certificates-unknown",
    ),
    bad_input(
        "local",
        {"brandclub:environment": "dev"},
        "brandclub:environment",
        "stack 'local' must deploy the local environment",
        "'dev'",
        "local-stack-claiming-dev",
    ),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "expected", "found"), LOCAL_BAD_INPUTS)
def test_bad_local_settings_are_reported_before_registering(
    stack: str, overrides: dict, key: str, expected: str, found: str
) -> None:
    assert_reported_before_registering(stack, overrides, key, expected, found)
