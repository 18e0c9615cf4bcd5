"""Every image runs by its registry digest (issue 3.1 for the app, issue 10 item 1 for the rest).

Branch tags roll out because the app services run the tag's digest; MariaDB, Redis, Traefik and
mailpit run by digest so that what the provider sends is what Docker stores (see
tests/test_second_up.py for the read-back itself).
"""

from __future__ import annotations

import json

from harness import (
    TEST_SECRETS,
    Rendering,
    app_services,
    is_secret,
    jobs,
    mock_digest,
    pinned,
    render,
)
from stacktools.export import EXPORT_DEFAULTS, export

REGISTRY_LOOKUP = "docker:index/getRegistryImage:getRegistryImage"
PINNED = "sha256:" + "ab" * 32
APP = "ghcr.io/brand-club/brandclub"
# The MariaDB series each stack file states (local, made later, on a newer one).
SERIES = {"dev": "10.6", "staging": "10.6", "prod": "10.6", "local": "10.11"}


def _lookups(rendering: Rendering) -> list[str]:
    return [args["name"] for token, args in rendering.invokes if token == REGISTRY_LOOKUP]


def _frappe_images(rendering: Rendering) -> dict[str, str]:
    """Every service and job that runs the app image, by name, with the image it runs."""
    images = {
        name: service.container["image"]
        for name, service in rendering.services.items()
        if "/brandclub" in service.container["image"]
    }
    for job in rendering.of_type("command:local:Command"):
        images[job.name] = job.inputs["environment"]["JOB_IMAGE"]
    return images


def _service_images(rendering: Rendering) -> dict[str, str]:
    return {name: s.container["image"] for name, s in rendering.services.items()}


def test_the_tag_is_resolved_to_its_digest_at_deploy_time(rendered: dict[str, Rendering]) -> None:
    rendering = rendered["prod"]
    tagged = f"{APP}:main"
    assert tagged in _lookups(rendering)
    images = _frappe_images(rendering)
    # Every app service of prod (no mailpit there) and every site job runs the app image.
    services = {f"brandclub-prod_{name}" for name in app_services(rendering)}
    assert set(images) == services | {job.name for job in jobs(rendering).values()}
    assert set(images.values()) == {pinned(tagged)}
    assert rendering.exports["appImageDigest"] == mock_digest(tagged)


def test_every_image_the_stack_runs_is_resolved_once(rendered: dict[str, Rendering]) -> None:
    # prod runs Traefik (ingress.manage) and no mailpit; dev runs mailpit and no Traefik.
    assert sorted(_lookups(rendered["prod"])) == sorted(
        [f"{APP}:main", "mariadb:10.6", "redis:6.2-alpine", "traefik:v3.5"]
    )
    assert sorted(_lookups(rendered["dev"])) == sorted(
        [f"{APP}:develop", "mariadb:10.6", "redis:6.2-alpine", "axllent/mailpit:v1.27"]
    )
    assert sorted(_lookups(rendered["staging"])) == sorted(
        [f"{APP}:staging", "mariadb:10.6", "redis:6.2-alpine"]
    )


def test_data_and_third_party_images_run_by_digest(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    for name, image in _service_images(rendering).items():
        tagged, at, digest = image.partition("@")
        assert at and digest == mock_digest(tagged), name
    exported = rendering.exports["images"]
    assert exported["mariadb"] == pinned(f"mariadb:{SERIES[stack]}")
    assert exported["redis"] == pinned("redis:6.2-alpine")


def test_a_new_push_under_the_same_tag_changes_every_app_service(monkeypatch) -> None:
    before = _frappe_images(render("staging"))
    # The registry now answers with another digest for the same tag.
    monkeypatch.setattr("stacktools.engine.mock_digest", lambda image: PINNED)
    after = _frappe_images(render("staging", cached=False))
    assert before.keys() == after.keys()
    for name in before:
        assert before[name] != after[name], name
        assert after[name] == f"{APP}:staging@{PINNED}"


def test_a_digest_in_config_pins_the_image_without_asking_the_registry() -> None:
    rendering = render("prod", {"brandclub:imageDigest": PINNED})
    assert f"{APP}:main" not in _lookups(rendering)
    assert set(_frappe_images(rendering).values()) == {f"{APP}:main@{PINNED}"}
    assert rendering.exports["appImageDigest"] == PINNED


def test_a_digest_in_an_image_reference_pins_that_image() -> None:
    redis = f"redis:7.2-alpine@{PINNED}"
    rendering = render("prod", {"brandclub:images": {"redis": redis}})
    assert not [name for name in _lookups(rendering) if name.startswith("redis")]
    assert rendering.service("brandclub-db-prod", "redis-cache").container["image"] == redis
    assert rendering.service("brandclub-db-prod", "mariadb").container["image"] == pinned(
        "mariadb:10.6"
    )


def test_local_images_can_skip_resolution() -> None:
    rendering = render("dev", {"brandclub:registry": {"resolveDigest": False}})
    assert _lookups(rendering) == []
    assert set(_frappe_images(rendering).values()) == {f"{APP}:develop"}
    assert rendering.exports["appImageDigest"] is None
    assert not [image for image in _service_images(rendering).values() if "@" in image]


def test_exported_stack_files_keep_plain_tags(stack: str) -> None:
    """The export runs without a registry: every image as configured, by tag, no lookup."""
    rendering = render(stack, EXPORT_DEFAULTS)
    assert _lookups(rendering) == []
    images = {
        service["image"]
        for stack_file in export(rendering).files
        for service in stack_file.document["services"].values()
    }
    assert images and not [image for image in images if "@" in image]
    assert f"mariadb:{SERIES[stack]}" in images and "redis:6.2-alpine" in images


def test_private_registry_credentials_come_from_a_secret() -> None:
    secrets = {**TEST_SECRETS, "brandclub:registryPassword": "ghp-registry-Zq8"}
    rendering = render("prod", {"brandclub:registry": {"username": "deploy-bot"}}, secrets=secrets)
    [provider] = rendering.of_type("pulumi:providers:docker")
    # Provider inputs reach the engine as JSON text; the password makes the whole list secret.
    registry_auth = provider.raw_inputs["registryAuth"]
    assert is_secret(registry_auth)
    [auth] = json.loads(registry_auth["value"])
    assert auth == {"address": "ghcr.io", "username": "deploy-bot", "password": "ghp-registry-Zq8"}
    assert provider.inputs["disableDockerDaemonCheck"] == "true"
    # The app lookup goes through that provider; Docker Hub images through the default one.
    providers = {
        args["name"]: rendering.invoke_providers[index]
        for index, (token, args) in enumerate(rendering.invokes)
        if token == REGISTRY_LOOKUP
    }
    assert providers.pop(f"{APP}:main") == f"{provider.urn}::{provider.name}-id"
    assert providers and set(providers.values()) == {""}
    for name, service in rendering.services.items():
        if "/brandclub" not in service.container["image"]:
            assert "auth" not in service.inputs, name
            continue
        raw_auth = service.raw_inputs["auth"]
        assert raw_auth["username"] == "deploy-bot" and raw_auth["serverAddress"] == "ghcr.io"
        assert is_secret(raw_auth["password"]), name
