"""Issue 10 item 1: right after a deploy, the next ``pulumi up`` with the same config is a no-op.

The Docker provider (terraform-provider-docker v4.5.0, wrapped by pulumi-docker) creates services
with ``QueryRegistry = true``. Before the spec is stored, the Docker client then

- adds the registry digest to an image given by tag only (``imageWithDigestString``; a reference
  that already has a digest is left as it is), and
- fills ``TaskTemplate.Placement.Platforms`` with the image's platforms, creating the placement
  when the service had none.

The provider reads both back verbatim into state (``flattenContainerSpec``,
``flattenTaskPlacement``) and suppresses neither. On the next ``pulumi up`` the engine diffs that
state against the program's new inputs; pulumi-terraform-bridge drops every Terraform attribute
diff at or below a path listed in the resource's ``ignoreChanges`` (``computeIgnoreChanges``,
``processIgnoreChanges``), and in the provider's schema ``task_spec.placement`` is Optional +
Computed (a block absent from the config keeps the stored one) while ``placement.platforms`` is
Optional only.

These tests apply that read-back to every registered service and diff the next run's inputs the
way the bridge would.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness import Registered, Rendering, mock_digest, render

SERVICE = "docker:index/service:Service"
# What `docker service inspect` shows for a linux/amd64 image.
PLATFORMS = [{"architecture": "amd64", "os": "linux"}]
# Optional + Computed blocks in the provider's schema: absent from the config, the state stays.
COMPUTED_BLOCKS = (("taskSpec", "placement"),)
# Optional ints the provider always reads back, 0 when the engine has none (flattenTaskPlacement
# sets max_replicas from Placement.MaxReplicas): to Terraform 0 and unset are the same.
ZERO_IS_UNSET = (("taskSpec", "placement", "maxReplicas"),)
VOLUME = "docker:index/volume:Volume"


def stored_by_docker(inputs: dict[str, Any]) -> dict[str, Any]:
    """The service as the provider reads it back after creating it with QueryRegistry."""
    state = copy.deepcopy(inputs)
    container = state["taskSpec"]["containerSpec"]
    if "@" not in container["image"]:
        container["image"] = f"{container['image']}@{mock_digest(container['image'])}"
    placement = state["taskSpec"].setdefault("placement", {})
    placement["platforms"] = copy.deepcopy(PLATFORMS)
    placement["maxReplicas"] = placement.get("maxReplicas") or 0
    return state


def _zero_is_unset(value: dict[str, Any]) -> None:
    for *parents, leaf in ZERO_IS_UNSET:
        level = value
        for key in parents:
            level = level.get(key) if isinstance(level, dict) else None
        if isinstance(level, dict) and level.get(leaf) == 0:
            level.pop(leaf)


def _drop(value: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        value = value.get(key)
        if not isinstance(value, dict):
            return
    value.pop(leaf, None)


def _normal(value: Any) -> Any:
    """Terraform's zero values: an empty list or map is the same as no value."""
    if isinstance(value, dict):
        kept = {k: _normal(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            found
            for key in sorted(old.keys() | new.keys())
            for found in _differences(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
        ]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def bridge_diff(state: dict[str, Any], inputs: dict[str, Any], ignored: list[str]) -> list[str]:
    state, inputs = copy.deepcopy(state), copy.deepcopy(inputs)
    for path in ignored:
        _drop(state, path)
        _drop(inputs, path)
    _zero_is_unset(state)
    _zero_is_unset(inputs)
    for block in COMPUTED_BLOCKS:
        parent_state, parent_inputs = state, inputs
        for key in block[:-1]:
            parent_state, parent_inputs = parent_state.get(key, {}), parent_inputs.get(key, {})
        if block[-1] not in parent_inputs:
            parent_state.pop(block[-1], None)
    return _differences(_normal(state), _normal(inputs))


def _services(rendering: Rendering) -> dict[str, Registered]:
    return {r.urn: r for r in rendering.of_type(SERVICE)}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_next_up_after_a_deploy_changes_no_service(
    rendered: dict[str, Rendering], stack: str
) -> None:
    deployed = _services(rendered[stack])
    next_run = _services(render(stack))
    assert deployed.keys() == next_run.keys()
    assert deployed
    for urn, service in deployed.items():
        state = stored_by_docker(service.inputs)
        upcoming = next_run[urn]
        found = bridge_diff(state, upcoming.inputs, upcoming.options["ignoreChanges"])
        assert found == [], f"{service.inputs['name']} would be updated: {found}"


# Where prod spreads its replicas and keeps sites on a shared path (docs/multi-node.md).
MULTI_NODE = {
    "brandclub:placement": {"dataNodeLabel": "brandclub.data", "maxReplicasPerNode": 1},
    "brandclub:storage": {"sites": {"kind": "path", "path": "/mnt/shared/prod-sites"}},
}


def test_the_next_up_of_a_multi_node_prod_changes_nothing() -> None:
    """Placement preferences and the per-node maximum, and the sites mounts' driver options, as
    the provider reads them back; the volumes' driver (Optional + Computed) and options."""
    deployed, next_run = render("prod", MULTI_NODE), render("prod", MULTI_NODE, cached=False)
    services = _services(next_run)
    for urn, service in _services(deployed).items():
        state = stored_by_docker(service.inputs)
        upcoming = services[urn]
        found = bridge_diff(state, upcoming.inputs, upcoming.options["ignoreChanges"])
        assert found == [], f"{service.inputs['name']} would be updated: {found}"
    volumes = {v.urn: v for v in next_run.of_type(VOLUME)}
    for volume in deployed.of_type(VOLUME):
        # VolumeInspect: the driver always, the options as created.
        state = {**volume.inputs, "driver": "local"}
        inputs = volumes[volume.urn].inputs
        if "driver" not in inputs:
            state.pop("driver")  # Computed: absent from the config, the state stays
        assert bridge_diff(state, inputs, []) == [], volume.inputs["name"]


def test_an_unset_maximum_reads_back_as_zero_and_a_set_one_as_itself() -> None:
    backend = render("prod", MULTI_NODE).service("brandclub-prod", "backend").inputs
    assert stored_by_docker(backend)["taskSpec"]["placement"]["maxReplicas"] == 1
    scheduler = render("prod", MULTI_NODE).service("brandclub-prod", "scheduler").inputs
    assert stored_by_docker(scheduler)["taskSpec"]["placement"]["maxReplicas"] == 0
    changed = copy.deepcopy(backend)
    changed["taskSpec"]["placement"]["maxReplicas"] = 2
    found = bridge_diff(stored_by_docker(backend), changed, ["taskSpec.placement.platforms"])
    assert [line.split(":")[0] for line in found] == ["taskSpec.placement.maxReplicas"]


def test_the_read_back_model_sees_what_it_should(rendered: dict[str, Rendering]) -> None:
    """Without ignoreChanges the stored platforms show as a change; a tag-only image too."""
    mariadb = rendered["prod"].service("brandclub-db-prod", "mariadb")
    state = stored_by_docker(mariadb.inputs)
    assert bridge_diff(state, mariadb.inputs, []) == [
        f"taskSpec.placement.platforms: {PLATFORMS!r} -> None"
    ]
    tag_only = copy.deepcopy(mariadb.inputs)
    tag_only["taskSpec"]["containerSpec"]["image"] = "mariadb:10.6"
    assert bridge_diff(stored_by_docker(tag_only), tag_only, ["taskSpec.placement.platforms"]) == [
        f"taskSpec.containerSpec.image: 'mariadb:10.6@{mock_digest('mariadb:10.6')}' -> "
        "'mariadb:10.6'"
    ]


def _engine_reset_ok(old: Any, new: Any, path: list[str]) -> bool:
    """pulumi's PropertyPath.Reset (sdk/go/common/resource/properties_path.go) for object keys:
    False is the engine's "cannot ignore changes ... elements of the path are missing"."""
    key, rest = path[0], path[1:]
    if not rest:
        return True
    if not isinstance(old, dict) or not isinstance(new, dict):
        return not isinstance(old, dict) and not isinstance(new, dict)
    if key in old and key not in new:
        return False
    if key not in old and key not in new:
        return True
    return _engine_reset_ok(old.get(key), new[key], rest)


def test_ignore_changes_never_fails_the_engine_when_constraints_go_away() -> None:
    """Old inputs with placement constraints, new ones without: every ignored path must still
    resolve, so each service registers its placement even when it has no constraints."""
    constrained = {"brandclub:placement": {"app": ["node.labels.tier == app"]}}
    before = _services(render("prod", constrained))
    after = _services(render("prod"))
    for urn, service in after.items():
        for path in service.options["ignoreChanges"]:
            old = before[urn].inputs
            assert _engine_reset_ok(old, service.inputs, path.split(".")), (
                service.inputs["name"],
                path,
            )


def test_every_service_ignores_exactly_the_stored_platforms(rendered: dict[str, Rendering]) -> None:
    for rendering in rendered.values():
        for service in rendering.of_type(SERVICE):
            assert service.options["ignoreChanges"] == ["taskSpec.placement.platforms"]
            assert isinstance(service.inputs["taskSpec"]["placement"], dict)
