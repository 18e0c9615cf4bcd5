"""What the live tests share: request loops, the site's files and database, job assertions."""

from __future__ import annotations

import json
from typing import Any

from tests.live.deployment import DevDeployment
from tests.live.images.build import APP_REPOSITORY
from tests.live.rendering import SITE, SITES_PATH, JobRun, SiteJobCommand
from tests.live.rollout import Rollout
from tests.live.swarm import docker, docker_ok, exec_in, service_image, the_task

# Bounded request loops: at most LOOP_COUNT requests, LOOP_INTERVAL apart, each with a timeout.
LOOP_COUNT = 4000
LOOP_INTERVAL = 0.05
LOOP_TIMEOUT = 5.0
# The Frappe processes whose health check exercises the image itself (a port it must open).
PORT_CHECKED = ("backend", "frontend", "websocket")
# Tables of the stand-in's site database (tests/live/images/bench/apps/frappe/frappe).
INSTALLED_APPS_TABLE = "tabInstalled Application"
MIGRATIONS_TABLE = "tabBrandclub Migration"


def app_images(dev: DevDeployment) -> dict[str, str]:
    """The image of every service that runs the app image (all but mailpit)."""
    images = {name: service_image(name) for name in dev.services(dev.app_stack)}
    return {name: image for name, image in images.items() if image.startswith(APP_REPOSITORY)}


def ensure_app_version(dev: DevDeployment, tag: str) -> None:
    """Precondition: every Frappe service runs ``tag`` and has converged."""
    wanted = f"{APP_REPOSITORY}:{tag}"
    if set(app_images(dev).values()) != {wanted}:
        rollout = dev.rollout(tag)
        assert rollout.ok, rollout.report()
    dev.converge_app()
    assert set(app_images(dev).values()) == {wanted}


def served_version(dev: DevDeployment) -> str:
    return dev.get("/api/method/version")["version"]


def notes(dev: DevDeployment) -> list[str]:
    return dev.get("/api/resource/Note")["data"]


def mariadb(dev: DevDeployment) -> str:
    return dev.service(dev.data_stack, "mariadb")


def timed_rollout(dev: DevDeployment, tag: str) -> Rollout:
    """A rollout that must succeed: jobs, then the services in the program's order."""
    rollout = dev.rollout(tag)
    assert rollout.ok, rollout.report()
    assert set(app_images(dev).values()) == {f"{APP_REPOSITORY}:{tag}"}
    return rollout


# --- the site and the program's site jobs ------------------------------------------------------


def backend_container(dev: DevDeployment) -> str:
    return the_task(dev.service(dev.app_stack, "backend")).container_id


def sites_file(dev: DevDeployment, path: str) -> str:
    """A file of the sites volume, read in the backend's container."""
    result = exec_in(backend_container(dev), "cat", f"{SITES_PATH}/{path}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def site_config(dev: DevDeployment) -> dict[str, Any]:
    return json.loads(sites_file(dev, f"{SITE}/site_config.json"))


def set_site_config(dev: DevDeployment, key: str, value: int) -> None:
    bench = ["bench", "--site", SITE, "set-config", "-p", key, str(value)]
    result = exec_in(backend_container(dev), *bench)
    assert result.returncode == 0, result.stderr


def sql(dev: DevDeployment, query: str) -> list[list[str]]:
    """Rows of a query as root, in MariaDB's container with the password from its secret file."""
    login = 'MYSQL_PWD=$(<"$MARIADB_ROOT_PASSWORD_FILE") exec mariadb -uroot -N -B -e "$0"'
    result = exec_in(the_task(mariadb(dev)).container_id, "bash", "-c", login, query)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def migrations(dev: DevDeployment) -> list[str]:
    """The image versions ``bench migrate`` ran with on the site, oldest first."""
    database = site_config(dev)["db_name"]
    rows = sql(dev, f"SELECT version FROM `{database}`.`{MIGRATIONS_TABLE}` ORDER BY name")
    return [version for (version,) in rows]


def job_services() -> list[str]:
    return [
        name for name in docker("service", "ls", "--format", "{{.Name}}").split() if "-job-" in name
    ]


def job_env(job: SiteJobCommand) -> dict[str, str]:
    return dict(line.split("=", 1) for line in job.environment["JOB_ENV"].splitlines())


def assert_completed(job: SiteJobCommand, run: JobRun) -> None:
    assert run.returncode == 0, f"{job.name}: {run.stderr}"
    assert run.stdout.splitlines()[-1] == f"job {job.job_name} completed", run.stdout


def assert_failed(job_name: str, run: JobRun) -> str:
    """The runner failed the job; returns its stderr's last line (`job <name> failed: ...`)."""
    assert run.returncode == 1, f"exit {run.returncode}: {run.stderr}"
    last = run.stderr.splitlines()[-1]
    assert last.startswith(f"job {job_name} failed: "), run.stderr
    assert not docker_ok("service", "inspect", job_name), f"{job_name} was left behind"
    return last
