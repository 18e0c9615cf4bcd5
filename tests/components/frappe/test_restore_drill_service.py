"""The restore-drill service as prod renders it, and its absence elsewhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.frappe.processes import RESTORE_DRILL_SCRIPT
from harness import Rendering, render

DRILL = "brandclub-prod_restore-drill"


@pytest.mark.parametrize("stack", ["dev", "staging", "local"])
def test_only_prod_runs_a_drill(rendered: dict[str, Rendering], stack: str) -> None:
    assert not any(name.endswith("_restore-drill") for name in rendered[stack].services)
    secrets = rendered[stack].of_type("docker:index/secret:Secret")
    assert not any("restore-drill" in secret.name for secret in secrets)


def test_prod_runs_one_drill_on_the_data_node_stop_first(rendered: dict[str, Rendering]) -> None:
    service = rendered["prod"].services[DRILL]
    assert service.replicas == 1
    spec = service.inputs["taskSpec"]
    assert spec["placement"]["constraints"] == [
        "node.role == manager",
        "node.labels.brandclub.data == true",
    ]
    assert service.inputs["updateConfig"]["order"] == "stop-first"
    labels = {label["label"]: label["value"] for label in service.inputs["labels"]}
    assert labels["brandclub.singleton"] == "true"
    container = service.container
    assert container["stopGracePeriod"] == "1h"
    assert spec["resources"]["reservation"]["memoryBytes"] == 256 * 1024**2


def test_its_health_check_asks_the_metrics_server_only(rendered: dict[str, Rendering]) -> None:
    check = rendered["prod"].services[DRILL].container["healthcheck"]["tests"]
    assert check[:2] == ["CMD", "curl"]
    assert check[-1] == "http://127.0.0.1:9150/metrics"
    other = render("prod", {"brandclub:backup": {"drill": {"metricsPort": 9200}}})
    assert other.services[DRILL].container["healthcheck"]["tests"][-1].endswith(":9200/metrics")
    assert other.services[DRILL].container["env"]["DRILL_METRICS_PORT"] == "9200"


def test_it_gets_its_settings_and_the_stacks_database(rendered: dict[str, Rendering]) -> None:
    env = rendered["prod"].services[DRILL].container["env"]
    assert env == {
        "DB_HOST": "mariadb",
        "DB_PORT": "3306",
        "REDIS_CACHE": "redis://redis-cache:6379",
        "REDIS_QUEUE": "redis://redis-queue:6379",
        "BENCH_DIR": "/home/frappe/frappe-bench",
        "BACKUP_ROOT": "/backups",
        "DRILL_STATE_DIR": "/restore-drill",
        "DRILL_SITES": "brandclub.com",
        "DRILL_TIME": "04:00",
        "DRILL_INTERVAL_DAYS": "7",
        "DRILL_DOCTYPES": "User,ToDo",
        "DRILL_METRICS_PORT": "9150",
        "DB_ROOT_PASSWORD_FILE": "/run/secrets/db-root-password",
    }


def test_its_command_is_the_script_with_everything_it_sources_inlined(
    rendered: dict[str, Rendering], tmp_path: Path
) -> None:
    args = rendered["prod"].services[DRILL].container["args"]
    assert args == ["bash", "-c", RESTORE_DRILL_SCRIPT]
    assert 'source "$SCRIPT_DIR' not in RESTORE_DRILL_SCRIPT
    assert '$(<"$SCRIPT_DIR/restore_drill.py")' not in RESTORE_DRILL_SCRIPT
    # Runs without a checkout: from a folder with nothing beside it.
    script = tmp_path / "alone" / "restore-drill.sh"
    script.parent.mkdir()
    script.write_text(RESTORE_DRILL_SCRIPT)
    bench = tmp_path / "bench"
    (bench / "apps" / "frappe").mkdir(parents=True)
    (tmp_path / "root").write_text("x")
    env = {
        "PATH": "/usr/bin:/bin",
        "BENCH_DIR": str(bench),
        "DRILL_STATE_DIR": str(tmp_path / "state"),
        "DB_ROOT_PASSWORD_FILE": str(tmp_path / "root"),
        "DRILL_PYTHON": "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3",
    }
    midnight = 1_800_000_000 - 1_800_000_000 % 86400
    done = subprocess.run(
        ["bash", str(script), "next-run-in", str(midnight)],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.stdout.strip() == str(4 * 3600), done.stderr
