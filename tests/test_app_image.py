"""Issue 3.1: branch tags roll out because every app service runs the tag's registry digest."""

from __future__ import annotations

import json

from harness import SECRET_MARK, SECRET_SIG, TEST_SECRETS, Rendering, mock_digest, pinned, render

REGISTRY_LOOKUP = "docker:index/getRegistryImage:getRegistryImage"
PINNED = "sha256:" + "ab" * 32


def _lookups(rendering: Rendering) -> list[dict]:
    return [args for token, args in rendering.invokes if token == REGISTRY_LOOKUP]


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


def test_the_tag_is_resolved_to_its_digest_at_deploy_time(rendered: dict[str, Rendering]) -> None:
    rendering = rendered["prod"]
    tagged = "ghcr.io/brand-club/brandclub:main"
    assert _lookups(rendering) == [{"name": tagged}]
    images = _frappe_images(rendering)
    # backend, frontend, websocket, 3 queues, scheduler, backup + configurator, create-site,
    # migrate, preflight
    assert len(images) == 12
    assert set(images.values()) == {pinned(tagged)}
    assert rendering.exports["appImageDigest"] == mock_digest(tagged)


def test_a_new_push_under_the_same_tag_changes_every_app_service(monkeypatch) -> None:
    before = _frappe_images(render("staging"))
    # The registry now answers with another digest for the same tag.
    monkeypatch.setattr("brandclub.offline.mock_digest", lambda image: PINNED)
    after = _frappe_images(render("staging"))
    assert before.keys() == after.keys()
    for name in before:
        assert before[name] != after[name], name
        assert after[name] == f"ghcr.io/brand-club/brandclub:staging@{PINNED}"


def test_a_digest_in_config_pins_the_image_without_asking_the_registry() -> None:
    rendering = render("prod", {"brandclub:imageDigest": PINNED})
    assert _lookups(rendering) == []
    assert set(_frappe_images(rendering).values()) == {
        f"ghcr.io/brand-club/brandclub:main@{PINNED}"
    }
    assert rendering.exports["appImageDigest"] == PINNED


def test_local_images_can_skip_resolution() -> None:
    rendering = render("dev", {"brandclub:registry": {"resolveDigest": False}})
    assert _lookups(rendering) == []
    assert set(_frappe_images(rendering).values()) == {"ghcr.io/brand-club/brandclub:develop"}
    assert rendering.exports["appImageDigest"] is None


def test_data_and_third_party_images_are_never_digest_rewritten(
    rendered: dict[str, Rendering],
) -> None:
    rendering = rendered["prod"]
    assert rendering.service("brandclub-db-prod", "redis-cache").container["image"] == (
        "redis:6.2-alpine"
    )
    assert "@" not in rendering.service("traefik", "traefik").container["image"]


def test_private_registry_credentials_come_from_a_secret() -> None:
    secrets = {**TEST_SECRETS, "brandclub:registryPassword": "ghp-registry-Zq8"}
    rendering = render("prod", {"brandclub:registry": {"username": "deploy-bot"}}, secrets=secrets)
    [provider] = rendering.of_type("pulumi:providers:docker")
    # Provider inputs reach the engine as JSON text; the password makes the whole list secret.
    registry_auth = provider.raw_inputs["registryAuth"]
    assert registry_auth[SECRET_SIG] == SECRET_MARK
    [auth] = json.loads(registry_auth["value"])
    assert auth == {"address": "ghcr.io", "username": "deploy-bot", "password": "ghp-registry-Zq8"}
    assert provider.inputs["disableDockerDaemonCheck"] == "true"
    # The lookup goes through that provider, not the default one.
    [(token, _)] = [i for i in rendering.invokes if i[0] == REGISTRY_LOOKUP]
    provider_of_lookup = rendering.invoke_providers[rendering.invokes.index((token, _))]
    assert provider_of_lookup == f"{provider.urn}::{provider.name}-id"
    for name, service in rendering.services.items():
        if "/brandclub" not in service.container["image"]:
            assert "auth" not in service.inputs, name
            continue
        raw_auth = service.raw_inputs["auth"]
        assert raw_auth["username"] == "deploy-bot" and raw_auth["serverAddress"] == "ghcr.io"
        assert raw_auth["password"][SECRET_SIG] == SECRET_MARK, name
