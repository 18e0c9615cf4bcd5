"""The program and the shell scripts agree: what the rendered jobs and the backup service hand
over is what each script requires, and every secret file a script is told about is mounted.

The scripts' own tests prove what they do with their inputs; the program's tests prove what it
renders. This module joins the two, so renaming a variable on one side alone fails here.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from components.platform.catalogue import frappe_workers_map
from fake_commands import SCRIPTS, FakeBin, add_frappe, make_bench
from harness import OFFSITE_RECIPIENT, S3_OFFSITE, TEST_SECRETS, Registered, Rendering, render

RESTORE = {"site": "brandclub.com", "date": "2026-11-20"}


@pytest.fixture(scope="module")
def every_job() -> Rendering:
    """prod with the optional jobs (rotation, restore) and the off-site copy switched on."""
    secrets = {
        **TEST_SECRETS,
        "brandclub:dbRootPasswordPrevious": "previous-Zq8",
        "brandclub:backupOffsiteSecret": "s3-secret-Zq8",
        "brandclub:backupOffsiteRecipients": OFFSITE_RECIPIENT,
    }
    overrides = {"brandclub:restore": RESTORE, "brandclub:backup": {"offsite": S3_OFFSITE}}
    return render("prod", overrides, secrets=secrets)


def _required(script: str) -> set[str]:
    """Variables the `require_env` lines of a script (or part of one) name."""
    names: set[str] = set()
    pattern = r"^[ \t]*require_env ((?:[^\n]*\\\n)*[^\n]*)"
    for match in re.finditer(pattern, script, re.MULTILINE):
        names |= set(match.group(1).replace("\\\n", " ").split())
    return names


def _lines(job: Registered, key: str) -> list[str]:
    return job.inputs["environment"][key].splitlines()


def _env(job: Registered) -> dict[str, str]:
    return dict(line.split("=", 1) for line in _lines(job, "JOB_ENV"))


def _jobs(rendering: Rendering) -> list[Registered]:
    return rendering.of_type("command:local:Command")


def test_every_job_kind_is_covered(every_job: Rendering) -> None:
    assert sorted(j.name for j in _jobs(every_job)) == sorted(
        [
            "jobs-prepare-backup-dir",
            "jobs-rotate-db-root-password",
            "jobs-configurator",
            "jobs-create-site",
            "jobs-restore",
            "jobs-boot-check",
            "jobs-migrate",
        ]
    )


def test_job_scripts_run_self_contained_with_their_libraries_inlined(
    every_job: Rendering,
) -> None:
    prelude = (SCRIPTS / "lib" / "job-prelude.sh").read_text()
    site_modes = (SCRIPTS / "lib" / "site-modes.sh").read_text()
    for job in _jobs(every_job):
        text = job.inputs["environment"]["JOB_SCRIPT"]
        assert not re.search(r"^\s*(source|\.) ", text, re.MULTILINE), job.name
        assert prelude.rstrip("\n") in text, job.name
        # Only the jobs that hold sites in maintenance carry that library.
        assert (site_modes.rstrip("\n") in text) == (job.name in ("jobs-migrate", "jobs-restore"))


def test_each_job_gets_every_variable_its_script_requires(every_job: Rendering) -> None:
    for job in _jobs(every_job):
        required = _required(job.inputs["environment"]["JOB_SCRIPT"])
        missing = required - _env(job).keys()
        assert not missing, f"{job.name} lacks {sorted(missing)}"


def test_every_secret_file_a_job_is_told_about_is_mounted(every_job: Rendering) -> None:
    for job in _jobs(every_job):
        targets = {s.split("target=", 1)[1] for s in _lines(job, "JOB_SECRETS")}
        files = {value for key, value in _env(job).items() if key.endswith("_FILE")}
        assert files == targets, job.name


def test_the_backup_service_gets_what_its_offsite_copy_requires(every_job: Rendering) -> None:
    backup = every_job.service("brandclub-prod", "backup")
    env = backup.container["env"]
    script = backup.container["args"][2]
    s3_block = script[script.index("s3)") : script.index("rsync)")]
    assert _required(s3_block.replace("    require_env", "require_env")) <= env.keys()
    mounted = {m["fileName"] for m in backup.container["secrets"]}
    assert {v for k, v in env.items() if k.endswith("_FILE")} == mounted


def test_the_configurator_runs_with_the_rendered_environment(
    every_job: Rendering, tmp_path
) -> None:
    """Run the rendered job for real, with a stand-in bench, as the container would."""
    fakes = FakeBin(tmp_path)
    add_frappe(fakes)
    bench = make_bench(
        tmp_path, {"brandclub.com": {}}, configured=False
    )  # apps: frappe and erpnext
    job = every_job.named("jobs-configurator")
    result = subprocess.run(
        ["bash", "-c", job.inputs["environment"]["JOB_SCRIPT"]],
        env=fakes.env(**_env(job), BENCH_DIR=str(bench)),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert (bench / "sites" / "apps.txt").read_text().split() == ["erpnext", "frappe"]
    settings = json.loads((bench / "sites" / "common_site_config.json").read_text())
    assert settings == {
        "db_host": "mariadb",
        "db_port": 3306,
        "redis_cache": "redis://redis-cache:6379",
        "redis_queue": "redis://redis-queue:6379",
        "redis_socketio": "redis://redis-queue:6379",
        "socketio_port": 9000,
        "host_name": "https://brandclub.com",
        # prod has no mailpit: Frappe's site-config mail fallback is switched off
        "mail_server": "",
        "disable_mail_smtp_authentication": 0,
        "workers": frappe_workers_map(),
    }
