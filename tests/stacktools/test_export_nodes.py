"""The export of a multi-node prod (docs/multi-node.md): the sites volume's driver options once,
on the volume, as `docker stack deploy` hands them to every mount; placement preferences and the
per-node maximum on the services that spread."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from export_checks import SECRETS, export_into
from harness import render
from stacktools.engine import deep_merge
from stacktools.export import EXPORT_DEFAULTS, ExportError, export

MULTI_NODE = {
    "brandclub:placement": {"dataNodeLabel": "brandclub.data", "maxReplicasPerNode": 1},
    "brandclub:storage": {"sites": {"kind": "path", "path": "/mnt/shared/prod-sites"}},
}
BIND = {"type": "none", "o": "bind", "device": "/mnt/shared/prod-sites"}


def _rendering():
    return render("prod", deep_merge(EXPORT_DEFAULTS, MULTI_NODE), secrets=SECRETS)


def test_the_sites_volume_carries_its_driver_options(tmp_path: Path) -> None:
    result = export_into(_rendering(), tmp_path)
    app = result.files["brandclub-prod"]
    data = result.files["brandclub-db-prod"]
    (key,) = [k for k, v in data["volumes"].items() if v["name"].startswith("brandclub-prod-sites")]
    assert data["volumes"][key]["driver"] == "local"
    assert data["volumes"][key]["driver_opts"] == BIND
    # The app stack names the same volume; a stack file with another definition of one name
    # would make `docker stack deploy` create it twice with different options.
    for stack in (app, data):
        for volume in (stack.get("volumes") or {}).values():
            if volume["name"] == data["volumes"][key]["name"]:
                assert volume.get("driver_opts") == BIND
    backend = app["services"]["backend"]["deploy"]["placement"]
    assert backend["preferences"] == [{"spread": "node.id"}]
    assert backend["max_replicas_per_node"] == 1
    assert "preferences" not in app["services"]["scheduler"]["deploy"].get("placement", {})


def test_a_mount_with_other_options_than_its_volume_fails_the_export() -> None:
    rendering = _rendering()
    resources = []
    for resource in rendering.resources:
        if resource.type == "docker:index/service:Service" and resource.name.endswith("backend"):
            inputs = json.loads(json.dumps(resource.inputs))
            for mount in inputs["taskSpec"]["containerSpec"]["mounts"]:
                if "volumeOptions" in mount:
                    mount["volumeOptions"]["driverOptions"]["device"] = "/elsewhere"
            resource = dataclasses.replace(resource, inputs=inputs)
        resources.append(resource)
    with pytest.raises(ExportError, match="a stack file holds one set per volume"):
        export(dataclasses.replace(rendering, resources=resources))
