"""Issue 3.2 and 3.5: the site jobs, their order in the dependency graph, and restore as code;
issue 9 items 2-4, 8-11 and 19: what each job is handed."""

from __future__ import annotations

import json

import pytest

from components.frappe.jobs import SITE_JOBS, job_script
from components.platform.catalogue import frappe_workers_map
from harness import (
    DELETE,
    TEST_SECRETS,
    Registered,
    Rendering,
    depends_on,
    env_of,
    jobs,
    pinned,
    render,
    render_error,
)

# Each job's script (the boot-check job runs preflight.sh).
SCRIPT_OF = {job.name: job.script for job in SITE_JOBS}

COMMAND = "command:local:Command"
SITES = "/home/frappe/frappe-bench/sites"
LOGS = "/home/frappe/frappe-bench/logs"
PINNED = "sha256:" + "cd" * 32


def test_every_stack_runs_configurator_create_site_and_migrate(
    rendered: dict[str, Rendering], stack: str
) -> None:
    # prod runs the backup service, whose host directory is prepared first.
    prepare = ["prepare-backup-dir"] if stack == "prod" else []
    assert list(jobs(rendered[stack])) == [
        *prepare,
        "configurator",
        "create-site",
        "boot-check",
        "migrate",
    ]


def test_jobs_run_after_the_data_services_and_in_order(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    found = jobs(rendering)
    data_services = {f"data-{s}" for s in ("mariadb", "redis-cache", "redis-queue")}
    # The configurator only writes to the sites volume: it starts beside the data services.
    assert {"data-sites-volume", "data-logs-volume"} <= depends_on(rendering, found["configurator"])
    assert not data_services & depends_on(rendering, found["configurator"])
    assert data_services <= depends_on(rendering, found["create-site"])
    assert "jobs-configurator" in depends_on(rendering, found["create-site"])
    assert "jobs-create-site" in depends_on(rendering, found["migrate"])
    # ...and never the other way round.
    assert not {"jobs-create-site", "jobs-migrate"} & depends_on(rendering, found["configurator"])
    assert "jobs-migrate" not in depends_on(rendering, found["create-site"])


def test_app_services_roll_out_only_after_migrate(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    app_services = rendering.children_of("brandclub:swarm:AppLayer")
    assert app_services
    for service in app_services:
        assert "jobs-migrate" in depends_on(rendering, service), service.name
    for data in rendering.children_of("brandclub:swarm:DataLayer"):
        assert not any(n.startswith("jobs-") for n in depends_on(rendering, data)), data.name


def test_jobs_run_the_runner_against_the_providers_swarm(
    rendered: dict[str, Rendering], stack: str
) -> None:
    for name, job in jobs(rendered[stack]).items():
        assert job.inputs["create"] == "bash components/scripts/run-swarm-job.sh", name
        environment = job.inputs["environment"]
        swarm = {"local": "unix:///var/run/docker.sock"}.get(
            stack, "ssh://deploy@swarm.brandclub.com"
        )
        assert environment["DOCKER_HOST"] == swarm, name
        assert environment["JOB_NAME"] == f"brandclub-{stack}-job-{name}"
        assert environment["JOB_SCRIPT"] == job_script(SCRIPT_OF[name]), name
        if name == "prepare-backup-dir":
            continue  # below
        assert environment["JOB_MOUNTS"].splitlines() == [
            f"type=volume,source=brandclub-{stack}-sites,target={SITES}",
            f"type=volume,source=brandclub-{stack}-logs,target={LOGS}",
        ]
        assert "JOB_USER" not in environment, name


def test_networks_follow_what_each_job_talks_to(rendered: dict[str, Rendering]) -> None:
    found = jobs(rendered["prod"])
    networks = {
        name: set(job.inputs["environment"]["JOB_NETWORKS"].split()) for name, job in found.items()
    }
    assert networks == {
        "prepare-backup-dir": set(),
        "configurator": {"brandclub-prod-network"},
        "create-site": {"brandclub-prod-network", "brandclub-prod-mariadb"},
        "boot-check": {"brandclub-prod-network", "brandclub-prod-mariadb"},
        "migrate": {"brandclub-prod-network", "brandclub-prod-mariadb"},
    }


def test_configurator_writes_frappe_dockers_common_site_config(
    rendered: dict[str, Rendering],
) -> None:
    expected = {
        "DB_HOST": "mariadb",
        "DB_PORT": "3306",
        "REDIS_CACHE": "redis://redis-cache:6379",
        "REDIS_QUEUE": "redis://redis-queue:6379",
        "REDIS_SOCKETIO": "redis://redis-queue:6379",
        "SOCKETIO_PORT": "9000",
        # The catalogue's queues Frappe does not know (tests/components/test_catalogue.py).
        "FRAPPE_WORKERS": json.dumps(frappe_workers_map(), sort_keys=True),
    }
    # dev runs mailpit: Frappe's site-config mail fallback points at it (issue 9 item 9).
    assert env_of(jobs(rendered["dev"])["configurator"]) == {
        **expected,
        "HOST_NAME": "https://dev.brandclub.com",
        "MAIL_SERVER": "mailpit",
        "MAIL_PORT": "1025",
    }
    # No keep_backups_for_hours any more, backup service or not (issue 9 item 19).
    assert env_of(jobs(rendered["prod"])["configurator"]) == {
        **expected,
        "HOST_NAME": "https://brandclub.com",
    }


def test_host_name_is_the_sites_public_url() -> None:
    """Issue 9 item 10: frappe.siteName, not the first domain, names the site."""
    rendering = render("prod", {"brandclub:frappe": {"siteName": "www.brandclub.com"}})
    assert env_of(jobs(rendering)["configurator"])["HOST_NAME"] == "https://www.brandclub.com"


def test_prepare_backup_dir_runs_first_as_root_on_the_data_node(
    rendered: dict[str, Rendering],
) -> None:
    """Issue 9 item 4: the backup service's bind-mount source exists, writable by uid 1000,
    before the service is created."""
    rendering = rendered["prod"]
    found = jobs(rendering)
    job = found["prepare-backup-dir"]
    environment = job.inputs["environment"]
    assert environment["JOB_USER"] == "0:0"
    assert environment["JOB_MOUNTS"].splitlines() == ["type=bind,source=/,target=/host"]
    assert environment["JOB_CONSTRAINTS"].splitlines() == [
        "node.role == manager",
        "node.labels.brandclub.data == true",
    ]
    assert environment["JOB_NETWORKS"] == ""
    assert environment["JOB_SECRETS"] == ""
    assert env_of(job) == {
        "HOST_ROOT": "/host",
        "BACKUP_DIR": "/opt/brand-club/backups",
        "BACKUP_DIR_OWNER": "1000:1000",
        # prod's restore drill keeps its results there (backup.drill.enabled).
        "DRILL_STATE_DIR": "/opt/brand-club/backups/.restore-drill",
    }
    # It needs nothing of the data layer; the first job that talks SQL waits for it.
    assert depends_on(rendering, job) == set()
    assert "jobs-prepare-backup-dir" in depends_on(rendering, found["create-site"])
    backup = rendering.service("brandclub-prod", "backup")
    assert "jobs-prepare-backup-dir" in depends_on(rendering, backup)
    drill = rendering.service("brandclub-prod", "restore-drill")
    assert "jobs-prepare-backup-dir" in depends_on(rendering, drill)
    elsewhere = render("prod", {"brandclub:backup": {"hostPath": "/srv/backups"}})
    prepared = env_of(jobs(elsewhere)["prepare-backup-dir"])
    assert prepared["BACKUP_DIR"] == "/srv/backups"
    assert prepared["DRILL_STATE_DIR"] == "/srv/backups/.restore-drill"
    without_drill = render(
        "prod",
        {
            "brandclub:backup": {"drill": {"enabled": False}},
            "brandclub:services": {"restore-drill": DELETE},
        },
    )
    assert "DRILL_STATE_DIR" not in env_of(jobs(without_drill)["prepare-backup-dir"])


def test_only_a_stack_with_a_backup_service_prepares_its_directory(
    rendered: dict[str, Rendering],
) -> None:
    for stack in ("dev", "staging"):
        assert "prepare-backup-dir" not in jobs(rendered[stack])


def test_create_site_gets_site_apps_and_passwords_as_secret_files(
    rendered: dict[str, Rendering],
) -> None:
    job = jobs(rendered["staging"])["create-site"]
    env = env_of(job)
    assert env["SITE_NAME"] == "staging.brandclub.com"
    assert env["INSTALL_APPS"] == "erpnext"
    assert env["ADMIN_PASSWORD_FILE"] == "/run/secrets/admin-password"
    assert env["DB_ROOT_PASSWORD_FILE"] == "/run/secrets/db-root-password"
    secrets = job.inputs["environment"]["JOB_SECRETS"].splitlines()
    assert [s.split(",")[1] for s in secrets] == [
        "target=/run/secrets/admin-password",
        "target=/run/secrets/db-root-password",
    ]
    # The jobs' own secrets, never the one MariaDB mounts (issue 24 item 1).
    names = {
        r.inputs["name"]
        for r in rendered["staging"].of_type("docker:index/secret:Secret")
        if r.name.startswith("jobs-")
    }
    assert {s.split(",")[0].removeprefix("source=") for s in secrets} == names
    apps = render("staging", {"brandclub:frappe": {"apps": ["erpnext", "brandclub"]}})
    assert env_of(jobs(apps)["create-site"])["INSTALL_APPS"] == "erpnext brandclub"


def test_create_site_enables_the_scheduler_unless_told_not_to(
    rendered: dict[str, Rendering],
) -> None:
    """Issue 9 item 11."""
    assert env_of(jobs(rendered["dev"])["create-site"])["ENABLE_SCHEDULER"] == "1"
    off = render("dev", {"brandclub:frappe": {"enableScheduler": False}})
    assert env_of(jobs(off)["create-site"])["ENABLE_SCHEDULER"] == "0"
    assert "RESTORE_REQUEST" not in env_of(jobs(rendered["dev"])["create-site"])


def test_migrate_installs_the_configured_apps_and_runs_again_when_they_change(
    rendered: dict[str, Rendering],
) -> None:
    """Issue 9 item 8: an app added to frappe.apps is installed by the next migrate."""
    migrate = jobs(rendered["staging"])["migrate"]
    assert env_of(migrate) == {"SITE_NAME": "staging.brandclub.com", "INSTALL_APPS": "erpnext"}
    more = render("staging", {"brandclub:frappe": {"apps": ["erpnext", "hrms"]}})
    assert jobs(more)["migrate"].raw_inputs != migrate.raw_inputs
    assert env_of(jobs(more)["migrate"])["INSTALL_APPS"] == "erpnext hrms"


def _job_inputs(overrides: dict, secrets: dict | None = None) -> dict[str, dict]:
    rendering = render("prod", overrides, secrets=secrets)
    return {name: job.raw_inputs for name, job in jobs(rendering).items()}


def test_a_new_image_digest_reruns_migrate_and_configurator_but_not_create_site() -> None:
    before = _job_inputs({})
    after = _job_inputs({"brandclub:imageDigest": PINNED})
    assert after["migrate"] != before["migrate"]
    assert after["configurator"] != before["configurator"]
    assert after["migrate"]["environment"]["JOB_IMAGE"].endswith(PINNED)
    # create-site's only changed input is the one it ignores.
    rendering = render("prod", {"brandclub:imageDigest": PINNED})
    create_site = jobs(rendering)["create-site"]
    assert create_site.options["ignoreChanges"] == ["environment.JOB_IMAGE"]
    without_image = [
        {k: v for k, v in inputs["create-site"]["environment"].items() if k != "JOB_IMAGE"}
        for inputs in (before, after)
    ]
    assert without_image[0] == without_image[1]
    assert jobs(rendering)["migrate"].options["ignoreChanges"] == []


def test_jobs_run_the_same_image_the_services_roll_to(rendered: dict[str, Rendering]) -> None:
    rendering = rendered["prod"]
    backend_image = rendering.service("brandclub-prod", "backend").container["image"]
    assert backend_image == pinned("ghcr.io/brand-club/brandclub:main")
    for name, job in jobs(rendering).items():
        assert job.inputs["environment"]["JOB_IMAGE"] == backend_image, name


# --- Restore as code -------------------------------------------------------------------------

RESTORE = {"site": "staging.brandclub.com", "date": "2026-11-20", "fromSite": "brandclub.com"}


def test_a_restore_request_runs_between_create_site_and_migrate() -> None:
    rendering = render("staging", {"brandclub:restore": RESTORE})
    found = jobs(rendering)
    assert list(found) == [
        "configurator",
        "create-site",
        "restore",
        "boot-check",
        "migrate",
    ]
    assert "jobs-create-site" in depends_on(rendering, found["restore"])
    assert "jobs-restore" in depends_on(rendering, found["migrate"])
    restore = found["restore"]
    # The source site names the backup files (issue 9 item 2).
    assert env_of(restore) == {
        "SITE_NAME": "staging.brandclub.com",
        "SOURCE_SITE": "brandclub.com",
        "BACKUP_DATE": "2026-11-20",
        "BACKUP_ROOT": "/backups",
        "DB_ROOT_PASSWORD_FILE": "/run/secrets/db-root-password",
        "USE_BACKUP_ENCRYPTION_KEY": "auto",
        "RESTORE_REQUEST": "brandclub.com@2026-11-20",
    }
    # create-site records the same request in the site's marker (issue 9 item 3).
    assert env_of(found["create-site"])["RESTORE_REQUEST"] == "brandclub.com@2026-11-20"
    environment = restore.inputs["environment"]
    # prod's dated backups, read-only, at BACKUP_ROOT/SOURCE_SITE where restore.sh looks.
    assert environment["JOB_MOUNTS"].splitlines()[-1] == (
        "type=bind,source=/opt/brand-club/backups/brandclub.com,"
        "target=/backups/brandclub.com,readonly"
    )
    assert environment["JOB_CONSTRAINTS"] == "node.role == manager"
    assert restore.options["ignoreChanges"] == ["environment.JOB_IMAGE"]


@pytest.mark.parametrize(("setting", "value"), [(True, "true"), (False, "false")])
def test_the_backups_encryption_key_can_be_carried_or_not(setting: bool, value: str) -> None:
    request = {**RESTORE, "useBackupEncryptionKey": setting}
    restore = jobs(render("staging", {"brandclub:restore": request}))["restore"]
    assert env_of(restore)["USE_BACKUP_ENCRYPTION_KEY"] == value


def test_a_restore_of_the_sites_own_backups_names_it_the_source() -> None:
    own = {"site": "staging.brandclub.com", "date": "2026-11-20"}
    restore = jobs(render("staging", {"brandclub:restore": own}))["restore"]
    assert env_of(restore)["SOURCE_SITE"] == "staging.brandclub.com"
    assert env_of(restore)["RESTORE_REQUEST"] == "staging.brandclub.com@2026-11-20"


def test_restore_leaves_the_data_layer_untouched() -> None:
    def data_layer(rendering: Rendering) -> list[str]:
        return sorted(r.fingerprint for r in rendering.children_of("brandclub:swarm:DataLayer"))

    assert data_layer(render("staging", {"brandclub:restore": RESTORE})) == data_layer(
        render("staging")
    )


def test_another_date_is_another_restore() -> None:
    first = jobs(render("staging", {"brandclub:restore": RESTORE}))["restore"]
    again = jobs(render("staging", {"brandclub:restore": {**RESTORE, "date": "2026-11-21"}}))
    assert first.raw_inputs != again["restore"].raw_inputs
    assert first.urn == again["restore"].urn


@pytest.mark.parametrize(
    ("restore", "key"),
    [
        ({"site": "brandclub.com", "date": "2026-11-20"}, "brandclub:restore.site"),
        ({"site": "staging.brandclub.com", "date": "20.11.2026"}, "brandclub:restore.date"),
        ({"site": "staging.brandclub.com", "date": "2026-02-30"}, "brandclub:restore.date"),
        ({"date": "2026-11-20"}, "brandclub:restore.site"),
    ],
    ids=["other-site", "bad-date", "no-such-day", "no-site"],
)
def test_a_restore_must_name_this_stacks_site(restore: dict, key: str) -> None:
    error, registered = render_error("staging", {"brandclub:restore": restore})
    assert registered == []
    assert key in {p.key for p in error.problems}


# --- Root password rotation ------------------------------------------------------------------


def test_root_password_rotation_runs_first_with_both_passwords() -> None:
    secrets = {
        **TEST_SECRETS,
        "brandclub:dbRootPassword": "new-root-Zq8",
        "brandclub:dbRootPasswordPrevious": "old-root-Zq8",
    }
    rendering = render("prod", secrets=secrets)
    found = jobs(rendering)
    assert set(found) == {
        "prepare-backup-dir",
        "rotate-db-root-password",
        "configurator",
        "create-site",
        "boot-check",
        "migrate",
    }
    rotation = found["rotate-db-root-password"]
    assert "jobs-rotate-db-root-password" in depends_on(rendering, found["create-site"])
    assert {"data-mariadb", "jobs-prepare-backup-dir"} <= depends_on(rendering, rotation)
    targets = [s.split(",")[1] for s in rotation.inputs["environment"]["JOB_SECRETS"].splitlines()]
    assert targets == [
        "target=/run/secrets/db-root-password",
        "target=/run/secrets/db-root-password-previous",
    ]
    assert rotation.inputs["environment"]["JOB_NETWORKS"] == "brandclub-prod-mariadb"


def _longest_chain(rendering: Rendering, resource: Registered) -> list[str]:
    """The longest run of registered dependencies that ends at ``resource``, first to last."""
    chains: dict[str, list[str]] = {}

    def chain(urn: str) -> list[str]:
        if urn not in chains:
            found = rendering.by_urn(urn)
            before = [chain(d) for d in found.options["dependencies"]]
            chains[urn] = [*max(before, key=len, default=[]), found.name]
        return chains[urn]

    return chain(resource.urn)


def _squash_app(chain: list[str]) -> list[str]:
    """The app layer's resources (its configs, then the backend) as one level, ``app``."""
    return [name for name in chain if not name.startswith("app-")] + ["app"]


def test_a_first_deploy_waits_through_six_levels(
    rendered: dict[str, Rendering], stack: str
) -> None:
    """networks -> data services -> create-site -> boot-check -> migrate -> app; the configurator
    runs beside the data services, as it needs the sites volume only."""
    rendering = rendered[stack]
    backend = rendering.service(f"brandclub-{stack}", "backend")
    first, data_service, *site_jobs, app = _squash_app(_longest_chain(rendering, backend))
    assert rendering.named(first).type == "docker:index/network:Network"
    assert data_service in {"data-mariadb", "data-redis-cache", "data-redis-queue"}
    assert [*site_jobs, app] == [
        "jobs-create-site",
        "jobs-boot-check",
        "jobs-migrate",
        "app",
    ]
    configurator = jobs(rendering)["configurator"]
    assert len(_longest_chain(rendering, configurator)) == 2  # a volume or network, then it
