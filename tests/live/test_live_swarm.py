"""The dev stack on a real single-node swarm: what the architecture promises, observed.

The tests run in this order and share one deployment; each one first establishes the state it
needs (e.g. "the app runs v2") instead of trusting the test before it, and the destructive ones
(killing containers) come last.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.live.deployment import PROBE, PROBE_NETWORK, DevDeployment
from tests.live.helpers import (
    INSTALLED_APPS_TABLE,
    assert_completed,
    assert_failed,
    backend_container,
    ensure_app_version,
    job_env,
    job_env_with,
    job_services,
    mariadb,
    migrations,
    served_version,
    set_site_config,
    site_config,
    sites_file,
    sql,
)
from tests.live.images.build import APP_REPOSITORY
from tests.live.images.standin import answers
from tests.live.rendering import SITE, SITES_PATH
from tests.live.swarm import (
    docker,
    exec_in,
    inspect,
    running_tasks,
    service_state,
    the_task,
)

pytestmark = pytest.mark.live


def test_dev_stack_deploys_and_converges(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    for stack in (dev.data_stack, dev.app_stack):
        deployed = set(docker("stack", "services", "--format", "{{.Name}}", stack).split())
        assert deployed == set(dev.services(stack))
        for name in dev.services(stack):
            state = service_state(name)
            assert state.converged, state.describe()
            assert len(state.tasks) == state.replicas >= 1
            assert all(task.health == "healthy" for task in state.tasks), state.describe()
    assert served_version(dev) == "v1"
    print(f"dev converged from nothing in {dev.converge_seconds}")


def test_site_jobs_ran_in_order_on_the_swarm(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    first = dev.rendering("v1")
    live_report["siteJobSeconds"] = {run.name: run.seconds for run in dev.job_runs}
    assert [run.name for run in dev.job_runs] == [job.name for job in first.jobs]
    assert [job.name for job in first.jobs] == [
        "jobs-configurator",
        "jobs-create-site",
        "jobs-boot-check",
        "jobs-migrate",
    ]
    for job, run in zip(first.jobs, dev.job_runs, strict=True):
        assert_completed(job, run)
    # Each job's exited container stays on the node, labelled so operators can prune them.
    labelled = docker(
        "ps",
        "-a",
        "--filter",
        "label=brandclub.site-job",
        "--format",
        '{{.Label "brandclub.site-job"}}',
    ).split()
    assert {f"{dev.app_stack}-job-{job.name.removeprefix('jobs-')}" for job in first.jobs} <= set(
        labelled
    )

    # configurator: the bench points at this stack's services, numbers as numbers (-gp).
    configured = job_env(first.job("configurator"))
    common = json.loads(sites_file(dev, "common_site_config.json"))
    assert common == {
        "db_host": configured["DB_HOST"],
        "db_port": int(configured["DB_PORT"]),
        "redis_cache": configured["REDIS_CACHE"],
        "redis_queue": configured["REDIS_QUEUE"],
        "redis_socketio": configured["REDIS_SOCKETIO"],
        "socketio_port": int(configured["SOCKETIO_PORT"]),
        "host_name": f"https://{SITE}",
        # dev sends mail to mailpit, unauthenticated and in the clear.
        "mail_server": "mailpit",
        "mail_port": 1025,
        "use_ssl": 0,
        "use_tls": 0,
        "disable_mail_smtp_authentication": 1,
        "default_site": SITE,  # create-site's --set-default
        "workers": {},  # Frappe's own queues only: no queue of the platform's own
    }
    assert sites_file(dev, "apps.txt").split() == ["erpnext", "frappe"]

    # create-site: the database user at the login scope, the Administrator's password from the
    # admin secret (the Administrator logs in with it), the apps from the stack's config.
    creation = job_env(first.job("create-site"))
    assert creation["SITE_NAME"] == SITE
    config = site_config(dev)
    database = config["db_name"]
    assert sql(dev, f"SELECT Host FROM mysql.user WHERE User = '{database}'") == [["%"]]
    login = dev.http(
        "POST", "/api/method/login", form={"usr": "Administrator", "pwd": dev.admin_password}
    )
    assert login["status"] == 200 and json.loads(login["body"])["message"] == "Logged In", login
    installed = sql(dev, f"SELECT app_name FROM `{database}`.`{INSTALLED_APPS_TABLE}` ORDER BY idx")
    # frappe.enableScheduler (default on): create-site switched the new site's scheduler on, and
    # recorded the site as created (design D2).
    status = exec_in(backend_container(dev), "bench", "--site", SITE, "scheduler", "status")
    assert status.stdout.strip() == f"Scheduler is enabled for site {SITE}", status
    marker = json.loads(sites_file(dev, f".brandclub/sites/{SITE}.json"))
    assert marker["state"] == "created", marker
    assert [app for (app,) in installed] == ["frappe", *creation["INSTALL_APPS"].split()]

    # migrate: one migration with v1, inside maintenance mode, and the modes given back.
    assert migrations(dev) == ["v1"]
    migrate_log = next(run for run in dev.job_runs if run.name == "jobs-migrate").stdout
    assert f"site {SITE}: maintenance_mode 1, pause_scheduler 1 (were: 0 0)" in migrate_log
    assert f"site {SITE}: maintenance_mode 0, pause_scheduler 0 (restored)" in migrate_log
    assert (config["maintenance_mode"], config["pause_scheduler"]) == (0, 0)
    assert job_services() == []


def test_create_site_again_is_a_no_op(dev: DevDeployment) -> None:
    before = site_config(dev)
    job = dev.rendering("v1").job("create-site")
    run = job.run()
    assert_completed(job, run)
    assert f"site {SITE} exists, nothing to do" in run.stdout
    assert site_config(dev) == before
    assert job_services() == []


def test_configurator_runs_cost_no_request(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    """Issue 19 item 2: the backends read common_site_config.json on every request; the
    configurator, run five times with a changed value under a request loop through the frontend,
    never lets one find it cut (the stand-in's bench set-config leaves it empty for
    0.2 s, as Frappe's in-place rewrite does for a moment)."""
    job = dev.rendering("v1").job("configurator")
    host_name = job_env(job)["HOST_NAME"]
    loop = dev.start_request_loop(3000, 0.02, 5)
    runs = []
    try:
        for n in range(5):
            runs.append(dev.run_job(job, JOB_ENV=job_env_with(job, HOST_NAME=f"https://c{n}.test")))
    finally:
        summary = loop.finish()
        restored = dev.run_job(job)
    live_report["configuratorUnderLoad"] = summary
    assert summary["sent"] > 50 and summary["failed"] == 0, summary
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "common_site_config.json changed" in run.stdout
    assert restored.returncode == 0, restored.stderr
    assert json.loads(sites_file(dev, "common_site_config.json"))["host_name"] == host_name


def test_failing_job_fails_the_runner(dev: DevDeployment) -> None:
    """151 lines of output, then exit 3: the runner exits 1 with the log's last 100 lines."""
    job = dev.rendering("v1").job("configurator")
    name = f"{dev.app_stack}-job-live-failure"
    # One stream only: Swarm's log interleaves stdout and stderr in no fixed order.
    script = 'for i in $(seq 1 150); do echo "line $i"; done; echo "giving up"; exit 3'
    run = job.run(JOB_NAME=name, JOB_SCRIPT=script)
    last = assert_failed(name, run)
    assert "(3)" in last, last  # the task's error names the exit code
    lines = run.stderr.splitlines()
    assert {"line 52", "line 150", "giving up"} <= set(lines)
    assert "line 51" not in lines, "more than JOB_LOG_TAIL (100) lines of log"


def test_failed_migration_gives_the_sites_their_modes_back(dev: DevDeployment) -> None:
    """migrate.sh on the swarm, its `bench migrate` failing: the job fails the runner and the
    site STAYS in maintenance with its scheduler paused (a partly migrated database must not be
    served), its previous modes recorded in sites/.brandclub/held/<site>.json (here a paused
    scheduler); the next successful migrate gives exactly those back (issue 9 item 16)."""
    job = dev.rendering("v1").job("migrate")
    before = migrations(dev)
    set_site_config(dev, "pause_scheduler", 1)
    record = f".brandclub/held/{SITE}.json"
    try:
        run = job.run(JOB_ENV="STANDIN_FAIL_MIGRATE=yes")
        assert_failed(job.job_name, run)
        assert "migrate: ERROR: migration failed with status 1" in run.stderr
        assert f"site(s) {SITE} stay in maintenance mode" in run.stderr
        config = site_config(dev)
        assert (config["maintenance_mode"], config["pause_scheduler"]) == (1, 1)
        held = json.loads(sites_file(dev, record))
        assert (held["maintenance_mode"], held["pause_scheduler"]) == (0, 1)
        assert migrations(dev) == before

        # Without INSTALL_APPS: this test is about the modes, not about installing apps.
        again = job.run(JOB_ENV="")
        assert_completed(job, again)
        assert f"site {SITE}: maintenance_mode 0, pause_scheduler 1 (restored)" in again.stdout
        config = site_config(dev)
        assert (config["maintenance_mode"], config["pause_scheduler"]) == (0, 1)
        gone = exec_in(backend_container(dev), "test", "!", "-e", f"{SITES_PATH}/{record}")
        assert gone.returncode == 0, f"{record} is still there"
    finally:
        # A record left by a failure here would hand later migrations these modes.
        exec_in(backend_container(dev), "rm", "-f", f"{SITES_PATH}/{record}")
        set_site_config(dev, "maintenance_mode", 0)
        set_site_config(dev, "pause_scheduler", 0)


def answers_from(container_id: str, protocol: str, host: str, port: int) -> bool:
    result = exec_in(container_id, "probe", "answers", protocol, host, str(port), "3")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def addresses(container_id: str) -> list[str]:
    (container,) = inspect(container_id)
    return [network["IPAddress"] for network in container["NetworkSettings"]["Networks"].values()]


def test_isolation(dev: DevDeployment) -> None:
    ensure_app_version(dev, "v1")
    database = the_task(mariadb(dev)).container_id
    mariadb_targets = [("mariadb", address, 3306) for address in addresses(database)]
    data_targets = list(mariadb_targets)
    for name in ("redis-cache", "redis-queue"):
        redis = the_task(dev.service(dev.data_stack, name)).container_id
        data_targets += [("redis", address, 6379) for address in addresses(redis)]

    # Inside the environment: only the processes that talk SQL reach MariaDB.
    backend = backend_container(dev)
    assert answers_from(backend, "mariadb", "mariadb", 3306), "backend cannot reach mariadb:3306"
    for name in ("frontend", "websocket"):
        for task in running_tasks(dev.service(dev.app_stack, name)):
            lost = not answers_from(task.container_id, "redis", "redis-queue", 6379)
            assert not lost, f"{name} lost Redis"
            for protocol, host, port in [("mariadb", "mariadb", 3306), *mariadb_targets]:
                reached = answers_from(task.container_id, protocol, host, port)
                assert not reached, f"{name} reaches {host}:{port}"

    # Outside the swarm: no published port, and neither the host, nor a container on the
    # default bridge, nor one on the public overlay gets an answer from a data service.
    for name in dev.services(dev.data_stack):
        ports = docker("service", "inspect", "--format", "{{json .Endpoint.Ports}}", name)
        assert ports in ("null", "[]"), f"{name} publishes {ports}"
    outside = [*data_targets, ("mariadb", "127.0.0.1", 3306), ("redis", "127.0.0.1", 6379)]
    from_host = [target for target in outside if answers(*target, timeout=3)]
    assert from_host == [], f"the host reaches {from_host}"
    checks = " ".join(f"{protocol}:{host}:{port}" for protocol, host, port in data_targets)
    from_bridge = docker(
        "run",
        "--rm",
        "--network",
        "bridge",
        f"{APP_REPOSITORY}:v1",
        "bash",
        "-c",
        'for t in $0; do IFS=: read -r p h n <<<"$t"; probe answers "$p" "$h" "$n" 3 && echo "$t"; '
        "done; true",
        checks,
    )
    assert from_bridge == "", f"a container on the default bridge reaches {from_bridge}"
    from_public = [t for t in data_targets if answers_from(PROBE, *t)]
    assert from_public == [], f"a container on {PROBE_NETWORK} reaches {from_public}"


def test_a_new_image_runs_migrate_again(dev: DevDeployment) -> None:
    """Rendering v2 changes migrate's inputs (pulumi-command replaces it: it runs), not
    create-site's (its image is ignored); the v2 migration is recorded with v2."""
    first, second = dev.rendering("v1"), dev.rendering("v2")
    changed = {
        job.name: {k for k in job.environment if job.environment[k] != other.environment[k]}
        for job, other in zip(first.jobs, second.jobs, strict=True)
    }
    assert changed == {name: {"JOB_IMAGE"} for name in changed}
    assert second.job("migrate").environment["JOB_IMAGE"].endswith(":v2")
    assert "environment.JOB_IMAGE" not in second.job("migrate").ignore_changes
    assert "environment.JOB_IMAGE" in second.job("create-site").ignore_changes
    before = migrations(dev)
    migrate = second.job("migrate")
    assert_completed(migrate, migrate.run())
    assert migrations(dev) == [*before, "v2"]
    config = site_config(dev)
    assert (config["maintenance_mode"], config["pause_scheduler"]) == (0, 0)
