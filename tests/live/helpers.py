"""What the live tests share: request loops, the site's files and database, job assertions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.live.deployment import DevDeployment
from tests.live.images.build import APP_REPOSITORY
from tests.live.rendering import SITE, SITES_PATH, JobRun, SiteJobCommand
from tests.live.rollout import Rollout
from tests.live.swarm import (
    container_ip,
    docker,
    docker_ok,
    exec_in,
    inspect,
    running_tasks,
    service_image,
    the_task,
    wait_for,
)

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
    """A running backend task's container (any of the replicas: they share the sites volume)."""
    tasks = running_tasks(dev.service(dev.app_stack, "backend"))
    running = sorted(t.container_id for t in tasks if t.state == "running" and t.container_id)
    assert running, "no backend task is running"
    return running[0]


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


def job_env_with(job: SiteJobCommand, **values: str) -> str:
    """The job's JOB_ENV with ``values`` replacing (or adding) variables: what a test hands
    ``DevDeployment.run_job(job, JOB_ENV=...)`` to run the job with other inputs."""
    return "\n".join(f"{key}={value}" for key, value in {**job_env(job), **values}.items())


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


# --- Traefik's side ----------------------------------------------------------------------------


def task_addresses(service: str, network: str, port: int) -> set[str]:
    """``address:port`` of every running task of ``service`` on ``network``: what Traefik's
    access log names as the server that answered (ServiceAddr)."""
    return {
        f"{container_ip(task.container_id, network)}:{port}"
        for task in running_tasks(service)
        if task.state == "running" and task.container_id
    }


def access_log(service: str, since: str) -> list[dict[str, Any]]:
    """Traefik's JSON access-log lines since ``since`` (a Docker time), from every task of the
    service (its own log lines are text and are skipped)."""
    raw = docker("service", "logs", "--raw", "--since", since, service, timeout=60)
    entries = []
    for line in raw.splitlines():
        line = line.strip()
        if line.startswith("{"):
            entry = json.loads(line)
            if "RequestPath" in entry:
                entries.append(entry)
    return entries


def logged(
    service: str, since: str, paths: set[str], timeout: float = 30
) -> dict[str, dict[str, Any]]:
    """The access-log line of each request path in ``paths`` (each sent once), waiting until
    Traefik's log has them all."""
    found: dict[str, dict[str, Any]] = {}

    def complete() -> bool:
        found.clear()
        for entry in access_log(service, since):
            if entry["RequestPath"] in paths:
                assert entry["RequestPath"] not in found, f"logged twice: {entry}"
                found[entry["RequestPath"]] = entry
        return set(found) == paths

    wait_for(
        "Traefik's access log to record the requests",
        complete,
        timeout,
        diagnose=lambda: f"missing: {sorted(paths - set(found))[:5]}",
    )
    return found


def wait_old_containers_gone(dev: DevDeployment, old_tag: str, timeout: float = 120) -> float:
    """Until no container of an app service runs ``old_tag`` any more (a replaced task may keep
    running a while after its service converged: Docker's own delay before it signals the task,
    and the program's drain); returns the seconds waited."""
    old = f"{APP_REPOSITORY}:{old_tag}"
    started = time.monotonic()

    def gone() -> bool:
        listing = docker(
            "ps",
            "--filter",
            f"label=com.docker.stack.namespace={dev.app_stack}",
            "--format",
            "{{.Image}}",
        )
        return old not in listing.split()

    wait_for(f"the {old_tag} containers to stop", gone, timeout, interval=0.5)
    return round(time.monotonic() - started, 1)


def stopped_exit_codes(service: str, tag: str) -> list[int]:
    """The exit codes of the service's tasks that ran ``tag`` and were shut down: 137 is a task
    Docker had to kill when its stop grace period ran out."""
    ids = docker("service", "ps", "-q", "--filter", "desired-state=shutdown", service).split()
    return [
        task["Status"]["ContainerStatus"]["ExitCode"]
        for task in inspect(*ids)
        if task["Spec"]["ContainerSpec"]["Image"].split("@")[0].endswith(f":{tag}")
        and "ContainerStatus" in task["Status"]
    ]


def tier_report(path: Path, title: str) -> Iterator[dict[str, Any]]:
    """A tier's report for its session fixture: the tests fill in figures, and at the end it
    gets the tier's time and is written to ``path`` as JSON and printed."""
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    started = time.monotonic()
    yield report
    report["tierSeconds"] = round(time.monotonic() - started, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{title} report ({path}):\n{json.dumps(report, indent=2)}")
