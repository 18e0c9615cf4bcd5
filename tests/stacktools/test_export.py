"""The stack export (``python -m stacktools render``) against what the program registers.

Every check here reads the registered inputs itself and compares them with the written files
parsed back, so a translation mistake in stacktools/export/ cannot agree with itself.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from components import pulumi_sdk
from components.units import parse_size
from harness import REPO, STACKS, Registered, Rendering, render, stack_file_config
from stacktools.__main__ import main
from stacktools.export import EXPORT_DEFAULTS, ExportError, UnknownInputError, export, write

SECRETS = {
    "brandclub:dbRootPassword": "Export-Root-9c1f!never-in-files",
    "brandclub:adminPassword": "Export-Admin-4e7d!never-in-files",
    "brandclub:secretNameKey": "export-secret-name-key-5a0b6c1d7e2f8a3b",
}
NAMESPACE = "com.docker.stack.namespace"
SERVICE = "docker:index/service:Service"


@dataclasses.dataclass
class Exported:
    rendering: Rendering
    directory: Path
    texts: dict[str, str]  # swarm stack -> file text
    files: dict[str, dict[str, Any]]  # swarm stack -> compose document
    manifest: dict[str, Any]


def _export_into(rendering: Rendering, out: Path) -> Exported:
    write(export(rendering), out)
    directory = out / rendering.stack
    manifest = json.loads((directory / "manifest.json").read_text())
    texts = {entry["name"]: (directory / entry["file"]).read_text() for entry in manifest["stacks"]}
    files = {stack: yaml.safe_load(text) for stack, text in texts.items()}
    return Exported(rendering, directory, texts, files, manifest)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    out = tmp_path_factory.mktemp("export")
    # As the command line renders: plain repo:tag, no made-up registry digest.
    return {
        stack: _export_into(render(stack, EXPORT_DEFAULTS, secrets=SECRETS), out)
        for stack in STACKS
    }


# --- how the docker CLI reads a compose value back ------------------------------------------


def unescape(value: Any) -> Any:
    """Compose reads ``$$`` as one literal ``$``."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [unescape(item) for item in value]
    if isinstance(value, dict):
        return {key: unescape(item) for key, item in value.items()}
    return value


_BINARY = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def memory_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMGT]?)B?", str(text))
    assert match, f"memory {text!r} is not a whole binary-unit figure"
    return int(match[1]) * _BINARY[match[2]]


def nano_cpus(text: str) -> int:
    nano = Decimal(str(text)) * 10**9
    assert nano == nano.to_integral_value(), f"cpus {text!r} is finer than a nano-CPU"
    return int(nano)


# --- field-by-field parity ------------------------------------------------------------------

# Registered input path -> compose path, and how both sides read as one comparable value.
SCALAR_FIELDS: dict[str, tuple[str, str]] = {
    "taskSpec.containerSpec.image": ("image", "text"),
    "taskSpec.containerSpec.args": ("command", "list"),
    "taskSpec.containerSpec.env": ("environment", "map"),
    "taskSpec.containerSpec.stopGracePeriod": ("stop_grace_period", "text"),
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
)
# Inputs no stack file can hold; each is named in the file header instead.
NOT_IN_FILES = ("auth", "convergeConfig.", "endpointSpec.ports[].name")

COMPARABLE = {
    "text": str,
    "number": float,
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


def _compose_service(exported: Exported, service: Registered) -> tuple[str, dict[str, Any]]:
    stack = service.labels[NAMESPACE]
    name = service.inputs["name"]
    assert name.startswith(f"{stack}_")
    services = exported.files[stack]["services"]
    return stack, services[name.removeprefix(f"{stack}_")]


def _services(exported: Exported) -> list[Registered]:
    return exported.rendering.of_type(SERVICE)


def test_every_registered_input_is_compared_or_named(exported: dict[str, Exported]) -> None:
    """The parity check below must grow with the program: no input may go unchecked."""
    for result in exported.values():
        for service in _services(result):
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
        for service in _services(result):
            _, written = _compose_service(result, service)
            for registered_path, (compose_path, kind) in SCALAR_FIELDS.items():
                expected = _registered_as(kind, _get(service.inputs, registered_path))
                found = _written_as(kind, _get(written, compose_path))
                assert found == expected, (
                    f"{service.inputs['name']}: {registered_path}={expected!r} "
                    f"but {compose_path}={found!r}"
                )
                compared += expected is not None
    # Every service has an image, resources, health check and both rollout policies.
    assert compared >= sum(len(_services(r)) for r in exported.values()) * 25


def test_service_labels_go_to_deploy_labels(exported: dict[str, Exported]) -> None:
    for result in exported.values():
        for service in _services(result):
            _, written = _compose_service(result, service)
            expected = {item["label"]: item["value"] for item in service.inputs["labels"]}
            assert unescape(written["deploy"]["labels"]) == expected
            # Traefik on Swarm reads service labels only: nothing may land on the containers.
            assert "labels" not in written


def test_networks_match_with_aliases(exported: dict[str, Exported]) -> None:
    for result in exported.values():
        for service in _services(result):
            stack, written = _compose_service(result, service)
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
        for service in _services(result):
            stack, written = _compose_service(result, service)
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


def test_secrets_match(exported: dict[str, Exported]) -> None:
    mounted = 0
    for result in exported.values():
        for service in _services(result):
            stack, written = _compose_service(result, service)
            secrets = result.files[stack].get("secrets", {})
            expected = [
                (s["secretName"], s["fileName"]) for s in service.container.get("secrets", [])
            ]
            found = [
                (secrets[s["source"]]["name"], s["target"]) for s in written.get("secrets", [])
            ]
            assert found == expected, service.inputs["name"]
            mounted += len(found)
    assert mounted == len(STACKS)  # each environment's MariaDB reads its root password file


def test_ports_match(exported: dict[str, Exported]) -> None:
    for result in exported.values():
        for service in _services(result):
            _, written = _compose_service(result, service)
            expected = [
                (p["targetPort"], p.get("publishedPort"), p["protocol"], p["publishMode"])
                for p in service.inputs["endpointSpec"].get("ports", [])
            ]
            found = [
                (p["target"], p.get("published"), p["protocol"], p["mode"])
                for p in written.get("ports", [])
            ]
            assert found == expected, service.inputs["name"]


# --- files, ownership, secrets --------------------------------------------------------------


def test_one_file_per_swarm_stack_holding_exactly_its_services(
    exported: dict[str, Exported],
) -> None:
    for result in exported.values():
        registered = {s.inputs["name"] for s in _services(result)}
        written = {
            f"{stack}_{key}"
            for stack, document in result.files.items()
            for key in document["services"]
        }
        assert written == registered
        assert set(result.files) == {s.labels[NAMESPACE] for s in _services(result)}


def test_deploy_order_is_data_then_ingress_then_app(exported: dict[str, Exported]) -> None:
    order = [entry["name"] for entry in exported["prod"].manifest["stacks"]]
    assert order == ["brandclub-db-prod", "traefik", "brandclub-prod"]
    assert [entry["name"] for entry in exported["dev"].manifest["stacks"]] == [
        "brandclub-db-dev",
        "brandclub-dev",
    ]


def _owner(rendering: Rendering, resource: Registered) -> str:
    stacks = {
        s.labels[NAMESPACE] for s in rendering.of_type(SERVICE) if s.parent == resource.parent
    }
    assert len(stacks) == 1, resource.name
    return stacks.pop()


@pytest.mark.parametrize(
    ("section", "type_"),
    [("networks", "docker:index/network:Network"), ("volumes", "docker:index/volume:Volume")],
)
def test_owner_defines_and_others_refer_as_external(
    exported: dict[str, Exported], section: str, type_: str
) -> None:
    for result in exported.values():
        registered = {r.inputs["name"]: r for r in result.rendering.of_type(type_)}
        for stack, document in result.files.items():
            for key, entry in document.get(section, {}).items():
                resource = registered.get(entry["name"])
                if resource is not None and _owner(result.rendering, resource) == stack:
                    labels = {i["label"]: i["value"] for i in resource.inputs.get("labels", [])}
                    assert entry.get("labels", {}) == labels
                    assert "external" not in entry
                    for flag in ("attachable", "internal"):
                        assert entry.get(flag, False) == resource.inputs.get(flag, False)
                    assert entry.get("driver") == resource.inputs.get("driver")
                else:
                    assert entry == {"external": True, "name": entry["name"]}, (stack, key)
        # Every registered one is defined by exactly one file.
        defined = [
            entry["name"]
            for document in result.files.values()
            for entry in document.get(section, {}).values()
            if not entry.get("external")
        ]
        assert sorted(defined) == sorted(registered)


def test_looked_up_networks_are_external_and_required(exported: dict[str, Exported]) -> None:
    dev = exported["dev"]
    assert "traefik" not in dev.files  # dev's ingress.manage is false
    assert dev.files["brandclub-dev"]["networks"]["traefik-public"] == {
        "external": True,
        "name": "traefik-public",
    }
    assert dev.manifest["requiredNetworks"] == ["traefik-public"]
    assert exported["prod"].manifest["requiredNetworks"] == []


def test_network_no_service_joins_is_created_by_hand(exported: dict[str, Exported]) -> None:
    """docker stack deploy creates only networks its own services join: shared-services has
    none yet, and the realtime network belongs to the data stack but only app services join."""
    prod = exported["prod"]
    assert prod.files["traefik"]["networks"]["shared-services"]["attachable"] is True
    realtime, shared = prod.manifest["networksToCreate"]  # in deploy order: data stack first
    assert shared["name"] == "shared-services"
    assert shared["command"].startswith("docker network create --driver overlay --attachable")
    assert shared["command"] in prod.texts["traefik"]
    assert realtime["name"] == "brandclub-prod-realtime"
    assert realtime["command"].startswith("docker network create --driver overlay --internal")
    assert realtime["command"] in prod.texts["brandclub-db-prod"]
    app_networks = prod.files["brandclub-prod"]["networks"]
    assert app_networks["brandclub-prod-realtime"] == {
        "external": True,
        "name": "brandclub-prod-realtime",
    }


def test_configs_are_defined_from_files_written_beside_the_stack_file(
    exported: dict[str, Exported],
) -> None:
    """A config is not secret: its content is written beside the stack file that defines it, so
    docker stack deploy creates it under the exact name the program gives it."""
    for result in exported.values():
        registered = {
            c.inputs["name"]: c
            for c in result.rendering.of_type("docker:index/serviceConfig:ServiceConfig")
        }
        assert registered
        mounted = 0
        for service in _services(result):
            stack, written = _compose_service(result, service)
            top_level = result.files[stack].get("configs", {})
            expected = [
                (c["configName"], c["fileName"]) for c in service.container.get("configs", [])
            ]
            found = [
                (top_level[c["source"]]["name"], c["target"]) for c in written.get("configs", [])
            ]
            assert found == expected, service.inputs["name"]
            mounted += len(found)
        # The frontend's nginx template, and the health-check library on the backend, the
        # frontend, the websocket and the three workers.
        assert mounted == 7
        for name, config in registered.items():
            [(stack, entry)] = [
                (stack, document["configs"][name])
                for stack, document in result.files.items()
                if name in document.get("configs", {})
            ]
            labels = {i["label"]: i["value"] for i in config.inputs["labels"]}
            assert entry == {"name": name, "file": f"./{name}", "labels": labels}
            content = base64.b64decode(config.inputs["data"]).decode()
            assert (result.directory / name).read_text() == content
            assert f"./{name}" in result.texts[stack]
        assert result.manifest["configs"] == [{"name": n, "file": n} for n in sorted(registered)]


def _never_written(directory: Path, values: list[str]) -> None:
    forms = [form for v in values for form in (v, base64.b64encode(v.encode()).decode())]
    for path in directory.iterdir():
        text = path.read_text()
        assert not [form for form in forms if form in text], path


def test_secrets_are_external_and_their_data_is_never_written(
    exported: dict[str, Exported],
) -> None:
    for stack, result in exported.items():
        mounted = {
            s["secretName"]
            for service in _services(result)
            for s in service.container.get("secrets", [])
        }
        for document in result.files.values():
            for entry in document.get("secrets", {}).values():
                assert entry == {"external": True, "name": entry["name"]}
        # The operator creates exactly the secrets services mount, by their exact names.
        assert {s["name"] for s in result.manifest["secrets"]} == mounted
        (name,) = mounted
        assert name.startswith(f"brandclub-db-{stack}-mariadb-root-password-")
        assert any("docker secret create" in t and f" {name} -" in t for t in result.texts.values())
        _never_written(result.directory, list(SECRETS.values()))


def test_resources_no_service_uses_are_listed_not_exported(
    exported: dict[str, Exported],
) -> None:
    """The site jobs (pulumi-command) and the secret only they mount are no swarm stack's."""
    for result in exported.values():
        jobs = result.rendering.of_type("command:local:Command")
        assert jobs
        listed = result.manifest["notExported"]
        assert {f"command:local:Command {job.name}" for job in jobs} <= set(listed)
        admin = next(
            r
            for r in result.rendering.of_type("docker:index/secret:Secret")
            if r.parent.endswith("SiteJobs::jobs")
        )
        assert any(item.startswith(f"docker:index/secret:Secret {admin.name} ") for item in listed)
        declared = {e["name"] for d in result.files.values() for e in d.get("secrets", {}).values()}
        assert admin.inputs["name"] not in declared


def test_values_survive_compose_interpolation(exported: dict[str, Exported]) -> None:
    """Compose substitutes ``$VAR``: every literal dollar must be written ``$$``."""
    for result in exported.values():
        for stack, document in result.files.items():
            for text in _strings(document):
                assert "$" not in text.replace("$$", ""), (stack, text[:80])
    backup = exported["prod"].files["brandclub-prod"]["services"]["backup"]["command"][2]
    assert "$${BACKUP_TIME:=02:00}" in backup  # the script's own expansions, escaped


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client")
def test_docker_reads_every_file_back_to_the_registered_values(
    exported: dict[str, Exported],
) -> None:
    """``docker stack config`` validates a file against the compose schema and interpolates it
    client-side (no daemon): what it prints is what ``docker stack deploy`` would send."""
    for result in exported.values():
        by_name = {s.inputs["name"]: s for s in _services(result)}
        for stack, entry in ((e["name"], e) for e in result.manifest["stacks"]):
            completed = subprocess.run(
                ["docker", "stack", "config", "-c", str(result.directory / entry["file"])],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert completed.returncode == 0, completed.stderr
            read_back = yaml.safe_load(completed.stdout)
            for key, service in read_back["services"].items():
                container = by_name[f"{stack}_{key}"].container
                assert service.get("command") == container.get("args")
                assert service.get("environment", {}) == container.get("env", {})
                assert service["deploy"]["labels"] == by_name[f"{stack}_{key}"].labels


def test_a_private_acme_ca_reaches_traefiks_stack_file(tmp_path: Path) -> None:
    """The CA certificates are a Docker config defined from a file beside traefik.yml, mounted
    where LEGO_CA_CERTIFICATES points; observability needs nothing but arguments."""
    pem = (REPO / "tests" / "fixtures" / "acme" / "private-ca.pem").read_text()
    ingress = {"acmeCaServer": "https://10.0.0.1:14000/dir", "acmeCaCertificate": pem}
    rendering = render("prod", {**EXPORT_DEFAULTS, "brandclub:ingress": ingress}, secrets=SECRETS)
    result = _export_into(rendering, tmp_path)
    traefik = rendering.service("traefik", "traefik")
    [mounted] = traefik.container["configs"]
    name = mounted["configName"]
    document = result.files["traefik"]
    written = document["services"]["traefik"]
    assert written["environment"] == {"LEGO_CA_CERTIFICATES": mounted["fileName"]}
    assert written["configs"] == [{"source": name, "target": mounted["fileName"]}]
    assert unescape(written["command"]) == traefik.container["args"]
    assert document["configs"][name] == {
        "name": name,
        "file": f"./{name}",
        "labels": {"brandclub.layer": "ingress"},
    }
    assert (result.directory / name).read_text() == pem
    assert {"name": name, "file": name} in result.manifest["configs"]
    assert [p["published"] for p in written["ports"]] == [80, 443]
    if shutil.which("docker") is not None:  # the compose schema and the config file, client-side
        completed = subprocess.run(
            ["docker", "stack", "config", "-c", str(result.directory / "traefik.yml")],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        read_back = yaml.safe_load(completed.stdout)
        assert read_back["services"]["traefik"]["environment"] == written["environment"]
        assert read_back["configs"][name]["name"] == name


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
        ("taskSpec.containerSpec.mounts.0.volumeOptions", {"driverName": "nfs"}),
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
    result = _export_into(rendering, tmp_path)
    _never_written(result.directory, [password, *SECRETS.values()])
    private = {entry["name"] for entry in result.manifest["stacks"] if entry["withRegistryAuth"]}
    with_auth = {s.labels[NAMESPACE] for s in _services(result) if s.inputs.get("auth")}
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


# --- the command line ----------------------------------------------------------------------


SECRET_VARIABLES = (
    "BRANDCLUB_DB_ROOT_PASSWORD",
    "BRANDCLUB_ADMIN_PASSWORD",
    "BRANDCLUB_SECRET_NAME_KEY",
)


def _environment(secrets: dict[str, str] | None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    return {**environment, **(secrets or {})}


def _cli(
    *arguments: str, secrets: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m stacktools render ARGUMENTS``, run in this process (a new one costs a
    second of imports; test_cli_runs_as_a_module runs the module itself)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, _environment(secrets), clear=True),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        status = main(["render", *arguments])
    return subprocess.CompletedProcess(arguments, status, stdout.getvalue(), stderr.getvalue())


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "stacktools", "render", "--stack", "dev", "--out", str(tmp_path)],
        cwd=REPO,
        env=_environment(None),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "dev" / "manifest.json").exists()


def test_cli_writes_files_with_config_overlays(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "brandclub:images": {"app": "local/brandclub-standin"},
                    "brandclub:endpointMode": "dnsrr",
                    "brandclub:services": {"backend": {"replicas": 3}},
                }
            }
        )
    )
    completed = _cli(
        "--stack", "staging", "--out", str(tmp_path / "out"), "--config", str(overlay),
        "--set", "brandclub:services.frontend.replicas=2",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    directory = tmp_path / "out" / "staging"
    app = yaml.safe_load((directory / "brandclub-staging.yml").read_text())["services"]
    data = yaml.safe_load((directory / "brandclub-db-staging.yml").read_text())["services"]
    assert app["backend"]["deploy"]["replicas"] == 3
    assert app["frontend"]["deploy"]["replicas"] == 2
    # Deep merge: a key next to an overridden one keeps the stack file's value.
    backend_limits = stack_file_config("staging")["brandclub:services"]["backend"]["limits"]
    written_limits = app["backend"]["deploy"]["resources"]["limits"]
    assert memory_bytes(written_limits["memory"]) == parse_size(backend_limits["memory"])
    assert app["backend"]["image"] == "local/brandclub-standin:staging"
    assert {s["deploy"]["endpoint_mode"] for s in [*app.values(), *data.values()]} == {"dnsrr"}
    # The commands, in deploy order, with the paths just written.
    lines = completed.stdout.splitlines()
    deploys = [line.strip() for line in lines if "docker stack deploy" in line]
    assert deploys == [
        f"docker stack deploy -c {directory}/brandclub-db-staging.yml brandclub-db-staging",
        f"docker stack deploy -c {directory}/brandclub-staging.yml brandclub-staging",
    ]


def test_cli_reports_bad_input_without_writing(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("services: {backend: {replicas: 3}}\n")
    out = tmp_path / "out"
    completed = _cli("--stack", "dev", "--out", str(out), "--config", str(bare))
    assert completed.returncode == 2
    assert "namespace" in completed.stderr
    invalid = _cli(
        "--stack", "dev", "--out", str(out), "--set", "brandclub:services.backend.replicas=x"
    )
    assert invalid.returncode == 1
    assert "brandclub:services.backend.replicas" in invalid.stderr
    assert not out.exists()


def test_default_export_runs_the_plain_tag_and_digest_pins_it(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    unpinned = _cli("--stack", "dev", "--out", str(tmp_path / "plain"))
    pinned = _cli("--stack", "dev", "--out", str(tmp_path / "pinned"), "--digest", digest)
    assert unpinned.returncode == 0 and pinned.returncode == 0, unpinned.stderr + pinned.stderr
    tag = stack_file_config("dev")["brandclub:imageTag"]

    def app_images(out: str) -> set[str]:
        services = yaml.safe_load((tmp_path / out / "dev" / "brandclub-dev.yml").read_text())
        return {s["image"] for key, s in services["services"].items() if key != "mailpit"}

    assert app_images("plain") == {f"ghcr.io/brand-club/brandclub:{tag}"}
    assert app_images("pinned") == {f"ghcr.io/brand-club/brandclub:{tag}@{digest}"}


def test_cli_takes_secrets_from_the_environment_for_pulumis_secret_names(tmp_path: Path) -> None:
    values = dict(zip(SECRET_VARIABLES, SECRETS.values(), strict=True))
    with_values = _cli("--stack", "dev", "--out", str(tmp_path / "real"), secrets=values)
    without = _cli("--stack", "dev", "--out", str(tmp_path / "placeholder"))
    assert with_values.returncode == 0 and without.returncode == 0
    assert "BRANDCLUB_DB_ROOT_PASSWORD" in without.stderr
    assert "note:" not in with_values.stderr

    def secret_names(out: str) -> list[str]:
        manifest = json.loads((tmp_path / out / "dev" / "manifest.json").read_text())
        return [entry["name"] for entry in manifest["secrets"]]

    # The very names `pulumi up` gives for these values, which the placeholder's are not.
    deployed = render("dev", EXPORT_DEFAULTS, secrets=SECRETS).of_type("docker:index/secret:Secret")
    root = next(r.inputs["name"] for r in deployed if "root-password" in r.inputs["name"])
    assert secret_names("real") == [root]
    assert secret_names("placeholder") != [root]
    _never_written(tmp_path / "real" / "dev", list(SECRETS.values()))
