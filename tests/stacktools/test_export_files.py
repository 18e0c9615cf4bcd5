"""The stack export's files: one per swarm stack, who defines what, secrets never written,
configs beside the files, and what docker reads back."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.platform import catalogue
from export_checks import (
    NAMESPACE,
    SECRETS,
    SERVICE,
    Exported,
    export_into,
    never_written,
    unescape,
)
from harness import REPO, Registered, Rendering, render
from stacktools.export import EXPORT_DEFAULTS

# --- files, ownership, secrets --------------------------------------------------------------


def test_one_file_per_swarm_stack_holding_exactly_its_services(
    exported: dict[str, Exported],
) -> None:
    for result in exported.values():
        registered = {s.inputs["name"] for s in result.services()}
        written = {
            f"{stack}_{key}"
            for stack, document in result.files.items()
            for key in document["services"]
        }
        assert written == registered
        assert set(result.files) == {s.labels[NAMESPACE] for s in result.services()}


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
        for service in result.services():
            stack, written = result.compose_service(service)
            top_level = result.files[stack].get("configs", {})
            expected = [
                (c["configName"], c["fileName"]) for c in service.container.get("configs", [])
            ]
            found = [
                (top_level[c["source"]]["name"], c["target"]) for c in written.get("configs", [])
            ]
            assert found == expected, service.inputs["name"]
            mounted += len(found)
        # The frontend's nginx template, the health-check library on the backend, the
        # frontend, the websocket and every worker, and the drain script on the backend, the
        # frontend and the websocket.
        workers = [row for row in catalogue.APP_SERVICES if row.queues]
        assert mounted == 1 + 3 + len(workers) + 3
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


def test_secrets_are_external_and_their_data_is_never_written(
    exported: dict[str, Exported],
) -> None:
    for stack, result in exported.items():
        mounted = {
            s["secretName"]
            for service in result.services()
            for s in service.container.get("secrets", [])
        }
        for document in result.files.values():
            for entry in document.get("secrets", {}).values():
                assert entry == {"external": True, "name": entry["name"]}
        # The operator creates exactly the secrets services mount, by their exact names.
        assert {s["name"] for s in result.manifest["secrets"]} == mounted
        # MariaDB's root password; in prod also the restore drill's copy of it.
        initial = f"brandclub-db-{stack}-mariadb-initial-root-password"
        drill = {name for name in mounted if name.startswith("brandclub-prod-restore-drill-")}
        assert mounted == {initial} | drill
        assert len(drill) == (stack == "prod")
        for name in mounted:
            assert any(
                "docker secret create" in t and f" {name} -" in t for t in result.texts.values()
            )
        never_written(result.directory, list(SECRETS.values()))


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


def _docker_stack_config(stack_file: Path) -> dict[str, Any]:
    """The stack file as ``docker stack config`` reads it back; it must accept it."""
    completed = subprocess.run(
        ["docker", "stack", "config", "-c", str(stack_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return yaml.safe_load(completed.stdout)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client")
def test_docker_reads_every_file_back_to_the_registered_values(
    exported: dict[str, Exported],
) -> None:
    """``docker stack config`` validates a file against the compose schema and interpolates it
    client-side (no daemon): what it prints is what ``docker stack deploy`` would send."""
    for result in exported.values():
        by_name = {s.inputs["name"]: s for s in result.services()}
        for stack, entry in ((e["name"], e) for e in result.manifest["stacks"]):
            read_back = _docker_stack_config(result.directory / entry["file"])
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
    result = export_into(rendering, tmp_path)
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
        read_back = _docker_stack_config(result.directory / "traefik.yml")
        assert read_back["services"]["traefik"]["environment"] == written["environment"]
        assert read_back["configs"][name]["name"] == name
