"""The one-shot site jobs of a rollout, in the order they run, as a table the site jobs walk.

Swarm ignores ``depends_on``; Pulumi's dependency graph does not. Each job waits for the one
before it, the first for the data services, and the app services wait for the last, so a
rollout always runs: data services up -> (prepare-backup-dir) -> (root password rotation) ->
configurator -> create-site -> (restore) -> migrate -> preflight -> app services. Every job runs
the app image as a swarm ``replicated-job`` (the sites volume mounted, unless it has no use for
it), started and awaited by ``run-swarm-job.sh``.

A job runs again exactly when its inputs change (pulumi-command replaces it): the configurator
whenever a value it writes or the image changes, migrate on every new image digest and when
the configured apps change, prepare-backup-dir on every new image (a cheap check), and
create-site and restore only when their site or request changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.config import StackConfig
from components.frappe_processes import NetworkRole, worker_stop_grace_seconds

SCRIPTS = Path(__file__).parent / "scripts"
# How a job script sources one of its libraries in components/scripts/lib.
_SOURCED_LIBRARY = re.compile(r'^source "\$SCRIPT_DIR/(lib/[\w.-]+\.sh)"$', re.MULTILINE)
# Run from the project directory, where Pulumi runs the program and its commands; a relative
# path keeps the command identical on every machine that deploys.
JOB_RUNNER = "bash components/scripts/run-swarm-job.sh"

# The Docker secrets a job can mount, by role, at these paths.
SecretRole = Literal["db-root-password", "db-root-password-previous", "admin-password"]
SECRET_FILES: dict[SecretRole, str] = {
    "db-root-password": "/run/secrets/db-root-password",
    "db-root-password-previous": "/run/secrets/db-root-password-previous",
    "admin-password": "/run/secrets/admin-password",
}
DB = {"DB_HOST": "mariadb", "DB_PORT": "3306"}
REDIS_CACHE_URL = "redis://redis-cache:6379"
REDIS_QUEUE_URL = "redis://redis-queue:6379"
SOCKETIO_PORT = 9000
# mailpit's service alias on the environment network and its SMTP port.
MAILPIT_SMTP = ("mailpit", 1025)
RESTORE_BACKUPS_PATH = "/backups"
# prepare-backup-dir sees the data node's file system here.
HOST_ROOT = "/host"
# The image's frappe user, which the backup service runs as.
FRAPPE_USER = "1000:1000"


def _rotation_env(config: StackConfig) -> dict[str, str]:
    return {
        **DB,
        "DB_ROOT_PASSWORD_FILE": SECRET_FILES["db-root-password"],
        "DB_ROOT_PASSWORD_PREVIOUS_FILE": SECRET_FILES["db-root-password-previous"],
    }


def _backup_dir_env(config: StackConfig) -> dict[str, str]:
    return {
        "HOST_ROOT": HOST_ROOT,
        "BACKUP_DIR": config.backup.host_path,
        "BACKUP_DIR_OWNER": FRAPPE_USER,
    }


def _configurator_env(config: StackConfig) -> dict[str, str]:
    env = {
        **DB,
        "REDIS_CACHE": REDIS_CACHE_URL,
        "REDIS_QUEUE": REDIS_QUEUE_URL,
        # Frappe's realtime events travel through the queue Redis.
        "REDIS_SOCKETIO": REDIS_QUEUE_URL,
        "SOCKETIO_PORT": str(SOCKETIO_PORT),
        # URLs Frappe builds outside a request (links in e-mails) use host_name.
        "HOST_NAME": f"https://{config.site_name}",
    }
    if config.services.mailpit is not None:
        env["MAIL_SERVER"], port = MAILPIT_SMTP
        env["MAIL_PORT"] = str(port)
    return env


def _create_site_env(config: StackConfig) -> dict[str, str]:
    env = {
        **DB,
        "SITE_NAME": config.site_name,
        "INSTALL_APPS": " ".join(config.frappe.apps),
        "REDIS_CACHE": REDIS_CACHE_URL,
        "REDIS_QUEUE": REDIS_QUEUE_URL,
        "ADMIN_PASSWORD_FILE": SECRET_FILES["admin-password"],
        "DB_ROOT_PASSWORD_FILE": SECRET_FILES["db-root-password"],
        "ENABLE_SCHEDULER": "1" if config.frappe.enable_scheduler else "0",
    }
    if config.restore is not None:
        # Recorded in the site's marker: restore.sh knows the site was made for this request.
        env["RESTORE_REQUEST"] = config.restore.request_id
    return env


def _restore_env(config: StackConfig) -> dict[str, str]:
    restore = config.restore
    assert restore is not None
    use_key = restore.use_backup_encryption_key
    return {
        "SITE_NAME": restore.site,
        "SOURCE_SITE": restore.source_site,
        "BACKUP_DATE": restore.date,
        "BACKUP_ROOT": RESTORE_BACKUPS_PATH,
        "DB_ROOT_PASSWORD_FILE": SECRET_FILES["db-root-password"],
        "USE_BACKUP_ENCRYPTION_KEY": "auto" if use_key is None else str(use_key).lower(),
        "RESTORE_REQUEST": restore.request_id,
    }


def _migrate_env(config: StackConfig) -> dict[str, str]:
    # The apps are in the environment so that a change of frappe.apps runs migrate, which
    # installs what the site lacks.
    return {"SITE_NAME": config.site_name, "INSTALL_APPS": " ".join(config.frappe.apps)}


def _no_env(config: StackConfig) -> dict[str, str]:
    return {}


# The preflight worker's queue: the shortest job timeout, so stopping it never waits long.
PREFLIGHT_WORKER_QUEUES = ("short",)


def _preflight_env(config: StackConfig) -> dict[str, str]:
    return {
        "SITE_NAME": config.site_name,
        "PREFLIGHT_WORKER_QUEUES": ",".join(PREFLIGHT_WORKER_QUEUES),
        "PREFLIGHT_WORKER_GRACE": str(worker_stop_grace_seconds(PREFLIGHT_WORKER_QUEUES)),
    }


def job_script(name: str) -> str:
    """A job script as a swarm job runs it (`bash -c`): its libraries inlined, as the
    container has no checkout to source them from."""
    text = (SCRIPTS / name).read_text()
    return _SOURCED_LIBRARY.sub(lambda match: (SCRIPTS / match[1]).read_text().rstrip("\n"), text)


def _always(config: StackConfig) -> bool:
    return True


@dataclass(frozen=True)
class SiteJob:
    name: str
    script: str
    networks: frozenset[NetworkRole]
    env: Callable[[StackConfig], Mapping[str, str]] = _no_env
    secrets: tuple[SecretRole, ...] = ()
    # False: a new image alone does not run the job again (it runs with the image it first had).
    reruns_on_new_image: bool = True
    # The dated backups, read-only (restore); the job then runs on the data node.
    mounts_backups: bool = False
    enabled: Callable[[StackConfig], bool] = _always
    # "data": placed with placement.data (the node whose disk holds backups and volumes).
    node: Literal["app", "data"] = "app"
    mounts_sites: bool = True
    # The node's whole file system at HOST_ROOT, read-write (prepare-backup-dir only).
    mounts_host_root: bool = False
    # docker service create --user; None runs as the image's user (frappe).
    user: str | None = None

    @property
    def script_text(self) -> str:
        return job_script(self.script)


_SQL: frozenset[NetworkRole] = frozenset({"internal", "database"})

SITE_JOBS: tuple[SiteJob, ...] = (
    SiteJob(
        # Swarm refuses a bind mount whose source is missing, and the backup service (uid 1000)
        # cannot write to a root-owned directory: make it right before the service needs it.
        "prepare-backup-dir",
        "prepare-backup-dir.sh",
        frozenset(),
        _backup_dir_env,
        node="data",
        mounts_sites=False,
        mounts_host_root=True,
        user="0:0",
        enabled=lambda config: config.services.backup is not None,
    ),
    SiteJob(
        "rotate-db-root-password",
        "rotate-db-root-password.sh",
        frozenset({"database"}),
        _rotation_env,
        ("db-root-password", "db-root-password-previous"),
        reruns_on_new_image=False,
        enabled=lambda config: config.db_root_password_previous is not None,
    ),
    SiteJob("configurator", "configurator.sh", frozenset({"internal"}), _configurator_env),
    SiteJob(
        "create-site",
        "create-site.sh",
        _SQL,
        _create_site_env,
        ("admin-password", "db-root-password"),
        reruns_on_new_image=False,
    ),
    SiteJob(
        "restore",
        "restore.sh",
        _SQL,
        _restore_env,
        ("db-root-password",),
        reruns_on_new_image=False,
        mounts_backups=True,
        enabled=lambda config: config.restore is not None,
        node="data",
    ),
    SiteJob("migrate", "migrate.sh", _SQL, _migrate_env),
    # The new image's backend, a worker and the realtime server, checked with the services' own
    # health checks before any service changes (components/scripts/preflight.sh).
    SiteJob("preflight", "preflight.sh", _SQL, _preflight_env),
)
