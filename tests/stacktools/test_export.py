"""The stack export (``python -m stacktools render``) against what the program registers:
every input compared field by field, and every input it cannot write a loud failure.

Every check here reads the registered inputs itself and compares them with the written files
parsed back, so a translation mistake in stacktools/export/ cannot agree with itself. The files'
layout is test_export_files.py, the command line test_export_cli.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from components import pulumi_sdk
from export_checks import (
    NAMESPACE,
    SECRETS,
    SERVICE,
    Exported,
    export_into,
    memory_bytes,
    nano_cpus,
    never_written,
    unescape,
)
from harness import STACKS, Rendering, render
from stacktools.export import EXPORT_DEFAULTS, ExportError, UnknownInputError, export

# --- field-by-field parity ------------------------------------------------------------------

# Registered input path -> compose path, and how both sides read as one comparable value.
SCALAR_FIELDS: dict[str, tuple[str, str]] = {
    "taskSpec.containerSpec.image": ("image", "text"),
    "taskSpec.containerSpec.args": ("command", "list"),
    "taskSpec.containerSpec.env": ("environment", "map"),
    "taskSpec.containerSpec.stopGracePeriod": ("stop_grace_period", "text"),
    "taskSpec.containerSpec.init": ("init", "flag"),
    "taskSpec.containerSpec.healthcheck.tests": ("healthcheck.test", "list"),
    "taskSpec.containerSpec.healthcheck.interval": ("healthcheck.interval", "text"),
    "taskSpec.containerSpec.healthcheck.timeout": ("healthcheck.timeout", "text"),
    "taskSpec.containerSpec.healthcheck.retries": ("healthcheck.retries", "number"),
    "taskSpec.containerSpec.healthcheck.startPeriod": ("healthcheck.start_period", "text"),
    "mode.replicated.replicas": ("deploy.replicas", "number"),
    "endpointSpec.mode": ("deploy.endpoint_mode", "text"),
    "taskSpec.resources.limits.nanoCpus": ("deploy.resources.limits.cpus", "cpus"),
    "taskSpec.resources.limits.memoryBytes": ("deploy.resources.limits.memory", "memory"),
    "taskSpec.resources.reservation.nanoCpus": ("deploy.resources.reservations.cpus", "cpus"),
    "taskSpec.resources.reservation.memoryBytes": (
        "deploy.resources.reservations.memory",
        "memory",
    ),
    "taskSpec.restartPolicy.condition": ("deploy.restart_policy.condition", "text"),
    "taskSpec.restartPolicy.delay": ("deploy.restart_policy.delay", "text"),
    "taskSpec.restartPolicy.window": ("deploy.restart_policy.window", "text"),
    "taskSpec.placement.constraints": ("deploy.placement.constraints", "list"),
    "taskSpec.placement.maxReplicas": ("deploy.placement.max_replicas_per_node", "number"),
    **{
        f"{policy}Config.{key}": (f"deploy.{policy}_config.{compose_key}", kind)
        for policy in ("update", "rollback")
        for key, compose_key, kind in (
            ("parallelism", "parallelism", "number"),
            ("delay", "delay", "text"),
            ("failureAction", "failure_action", "text"),
            ("monitor", "monitor", "text"),
            ("maxFailureRatio", "max_failure_ratio", "number"),
            ("order", "order", "text"),
        )
    },
}
# Inputs compared by the structured checks below.
STRUCTURED_FIELDS = (
    "name",
    "labels[]",
    "taskSpec.networksAdvanceds[]",
    "taskSpec.containerSpec.mounts[]",
    "taskSpec.containerSpec.secrets[]",
    "taskSpec.containerSpec.configs[]",
    "endpointSpec.ports[]",
    "taskSpec.placement.prefs",
)
# Inputs no stack file can hold; each is named in the file header instead.
NOT_IN_FILES = ("auth", "convergeConfig.", "endpointSpec.ports[].name")

COMPARABLE = {
    "text": str,
    "number": float,
    "flag": bool,
    "list": list,
    "map": dict,
}


def _get(document: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def _registered_as(kind: str, value: Any) -> Any:
    # An empty list (a service without placement constraints) is no setting: compose omits it.
    if value is None or value == []:
        return None
    return int(value) if kind in ("cpus", "memory") else COMPARABLE[kind](value)


def _written_as(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "cpus":
        return nano_cpus(value)
    if kind == "memory":
        return memory_bytes(value)
    return COMPARABLE[kind](unescape(value))


# Inputs that are maps of the operator's own keys: compared whole, not key by key.
MAP_INPUTS = {path for path, (_, kind) in SCALAR_FIELDS.items() if kind == "map"}


def _leaf_paths(value: Any, path: str = "") -> set[str]:
    if isinstance(value, dict) and value and path not in MAP_INPUTS:
        return {p for k, v in value.items() for p in _leaf_paths(v, f"{path}.{k}".lstrip("."))}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return {p for item in value for p in _leaf_paths(item, f"{path}[]")}
    return {path}


def test_every_registered_input_is_compared_or_named(exported: dict[str, Exported]) -> None:
    """The parity check below must grow with the program: no input may go unchecked."""
    for result in exported.values():
        for service in result.services():
            unchecked = {
                path
                for path in _leaf_paths(service.inputs)
                if path not in SCALAR_FIELDS
                and not path.startswith(STRUCTURED_FIELDS)
                and not path.startswith(NOT_IN_FILES)
            }
            assert not unchecked, f"{service.inputs['name']}: no parity check for {unchecked}"


def test_scalar_fields_match_for_every_service(exported: dict[str, Exported]) -> None:
    compared = 0
    for result in exported.values():
        for service in result.services():
            _, written = result.compose_service(service)
            for registered_path, (compose_path, kind) in SCALAR_FIELDS.items():
                expected = _registered_as(kind, _get(service.inputs, registered_path))
                found = _written_as(kind, _get(written, compose_path))
                assert found == expected, (
                    f"{service.inputs['name']}: {registered_path}={expected!r} "
                    f"but {compose_path}={found!r}"
                )
                compared += expected is not None
    # Every service has an image, resources, health check and both rollout policies.
    assert compared >= sum(len(r.services()) for r in exported.values()) * 25


def test_service_labels_go_to_deploy_labels(exported: dict[str, Exported]) -> None:
    for result in exported.values():
        for service in result.services():
            _, written = result.compose_service(service)
            expected = {item["label"]: item["value"] for item in service.inputs["labels"]}
            assert unescape(written["deploy"]["labels"]) == expected
            # Traefik on Swarm reads service labels only: nothing may land on the containers.
            assert "labels" not in written


def test_networks_match_with_aliases(exported: dict[str, Exported]) -> None:
    for result in exported.values():
        for service in result.services():
            stack, written = result.compose_service(service)
            top_level = result.files[stack]["networks"]
            expected = {
                result.rendering.network_name(attachment["id"]): attachment.get("aliases")
                for attachment in service.inputs["taskSpec"]["networksAdvanceds"]
            }
            found = {
                top_level[key]["name"]: (settings or {}).get("aliases")
                for key, settings in written["networks"].items()
            }
            assert found == expected, service.inputs["name"]


def test_mounts_match(exported: dict[str, Exported]) -> None:
    for result in exported.values():
        for service in result.services():
            stack, written = result.compose_service(service)
            volumes = result.files[stack].get("volumes", {})
            expected = [
                (m["type"], m["source"], m["target"], m.get("readOnly", False))
                for m in service.container.get("mounts", [])
            ]
            found = [
                (
                    m["type"],
                    volumes[m["source"]]["name"] if m["type"] == "volume" else m["source"],
                    m["target"],
                    m.get("read_only", False),
                )
                for m in written.get("volumes", [])
            ]
            assert found == expected, service.inputs["name"]


def test_placement_preferences_match(exported: dict[str, Exported]) -> None:
    spread = 0
    for result in exported.values():
        for service in result.services():
            _, written = result.compose_service(service)
            expected = [
                {"spread": s} for s in service.inputs["taskSpec"]["placement"].get("prefs") or []
            ]
            found = written.get("deploy", {}).get("placement", {}).get("preferences", [])
            assert found == expected, service.inputs["name"]
            spread += bool(found)
    assert spread, "no service spreads its replicas: the comparison compared nothing"


def test_secrets_match(exported: dict[str, Exported]) -> None:
    mounted = 0
    for result in exported.values():
        for service in result.services():
            stack, written = result.compose_service(service)
            secrets = result.files[stack].get("secrets", {})
            expected = [
                (s["secretName"], s["fileName"]) for s in service.container.get("secrets", [])
            ]
            found = [
                (secrets[s["source"]]["name"], s["target"]) for s in written.get("secrets", [])
            ]
            assert found == expected, service.inputs["name"]
            mounted += len(found)
    # Each environment's MariaDB reads its root password file, and prod's restore drill too.
    assert mounted == len(STACKS) + 1


def test_ports_match(exported: dict[str, Exported]) -> None:
    for result in exported.values():
        for service in result.services():
            _, written = result.compose_service(service)
            expected = [
                (p["targetPort"], p.get("publishedPort"), p["protocol"], p["publishMode"])
                for p in service.inputs["endpointSpec"].get("ports", [])
            ]
            found = [
                (p["target"], p.get("published"), p["protocol"], p["mode"])
                for p in written.get("ports", [])
            ]
            assert found == expected, service.inputs["name"]


# --- the loud failure ----------------------------------------------------------------------


def _with_inputs(rendering: Rendering, name: str, change: dict[str, Any]) -> Rendering:
    resources = []
    for resource in rendering.resources:
        if resource.type == SERVICE and resource.inputs["name"] == name:
            inputs = json.loads(json.dumps(resource.inputs))
            for path, value in change.items():
                *parents, leaf = path.split(".")
                level = inputs
                for key in parents:
                    level = level[int(key)] if isinstance(level, list) else level[key]
                level[leaf] = value
            resource = dataclasses.replace(resource, inputs=inputs)
        resources.append(resource)
    return dataclasses.replace(rendering, resources=resources)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("taskSpec.containerSpec.privileges", {"noNewPrivileges": True}),
        ("taskSpec.forceUpdate", 1),
        ("taskSpec.containerSpec.groups", ["wheel"]),
        ("taskSpec.containerSpec.mounts.0.volumeOptions", {"noCopy": True}),
        ("taskSpec.restartPolicy.somethingNew", "x"),
    ],
)
def test_an_untranslated_input_fails_the_export(
    exported: dict[str, Exported], path: str, value: Any
) -> None:
    rendering = _with_inputs(exported["prod"].rendering, "brandclub-prod_backup", {path: value})
    with pytest.raises(UnknownInputError) as raised:
        export(rendering)
    reported = re.sub(r"\.\d+\.", "[].", path)
    assert any(p.startswith(f"brandclub-prod_backup: {reported}") for p in raised.value.paths), (
        raised.value.paths
    )


def test_a_secret_in_a_written_input_fails_the_export(exported: dict[str, Exported]) -> None:
    wrapped = {pulumi_sdk.SECRET_SIG_KEY: pulumi_sdk.SECRET_SIG, "value": "hunter2"}
    rendering = _with_inputs(
        exported["prod"].rendering,
        "brandclub-prod_backup",
        {"taskSpec.containerSpec.env.BACKUP_TOKEN": wrapped},
    )
    with pytest.raises(ExportError, match=r"taskSpec\.containerSpec\.env holds a Pulumi secret"):
        export(rendering)


def test_registry_credentials_stay_out_and_deploys_forward_the_login(tmp_path: Path) -> None:
    password = "Registry-Pw-77!never-in-files"
    rendering = render(
        "prod",
        {
            **EXPORT_DEFAULTS,
            "brandclub:registry": {"username": "deploy-bot", "resolveDigest": False},
        },
        secrets={**SECRETS, "brandclub:registryPassword": password},
    )
    assert rendering.services["brandclub-prod_backend"].inputs["auth"]
    result = export_into(rendering, tmp_path)
    never_written(result.directory, [password, *SECRETS.values()])
    private = {entry["name"] for entry in result.manifest["stacks"] if entry["withRegistryAuth"]}
    with_auth = {s.labels[NAMESPACE] for s in result.services() if s.inputs.get("auth")}
    assert private == with_auth == {"brandclub-prod"}
    assert (
        "docker stack deploy --with-registry-auth -c ./brandclub-prod.yml brandclub-prod"
        in (result.texts["brandclub-prod"])
    )


def test_unchanged_rendering_exports(exported: dict[str, Exported]) -> None:
    """The failure above is caused by the injected field, not by the copy."""
    rendering = _with_inputs(exported["prod"].rendering, "brandclub-prod_backup", {})
    assert len(export(rendering).files) == 3


def _with_extra(rendering: Rendering, type_: str) -> Rendering:
    template = rendering.of_type("docker:index/volume:Volume")[0]
    extra = dataclasses.replace(template, type=type_, name="site-job", urn=f"{template.urn}-job")
    return dataclasses.replace(rendering, resources=[*rendering.resources, extra])


def test_an_untranslated_docker_resource_type_fails(exported: dict[str, Exported]) -> None:
    with pytest.raises(ExportError, match="docker:index/config:Config"):
        export(_with_extra(exported["prod"].rendering, "docker:index/config:Config"))
