"""The one-shot site jobs of a rollout, in the order they run, as a table the site jobs walk.

Swarm ignores ``depends_on``; Pulumi's dependency graph does not. The jobs that need no database
(prepare-backup-dir, the configurator) start as soon as what they mount exists; the first job
that talks to the database waits for the data services and for them, each later one for the job
before it, and the app services wait for the last. So a rollout always runs: (prepare-backup-dir)
and configurator beside the data services -> (root password rotation) -> create-site ->
(restore) -> boot-check -> migrate -> app services. boot-check refuses a release that cannot
start before migrate touches the schema; whether the new backend serves the migrated site is
its own start-first update's health check, backend first (docs/site-jobs.md). Every job runs
the app image as a swarm ``replicated-job`` (the sites volume mounted, unless it has no use for
it), started and awaited by ``run-swarm-job.sh``.

A job runs again exactly when its inputs change (pulumi-command replaces it): the configurator
whenever a value it writes or the image changes, migrate on every new image digest and when
the configured apps change, prepare-backup-dir on every new image (a cheap check), and
create-site and restore only when their site or request changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.config.model import StackConfig
from components.config.nodes import Placement
from components.config.sections import RestoreRequest
from components.platform.catalogue import (
    BACKUP,
    MAILPIT,
    MARIADB,
    REDIS_CACHE,
    REDIS_QUEUE,
    SQL,
    WEBSOCKET,
    NetworkRole,
    frappe_workers_map,
    worker_stop_grace_seconds,
)

SCRIPTS = Path(__file__).parents[1] / "scripts"
# How a job script sources one of its libraries in components/scripts/lib.
_SOURCED_LIBRARY = re.compile(r'^source "\$SCRIPT_DIR/(lib/[\w.-]+\.sh)"$', re.MULTILINE)
# Run from the project directory, where Pulumi runs the program and its commands; a relative
# path keeps the command identical on every machine that deploys.
JOB_RUNNER = "bash components/scripts/run-swarm-job.sh"

# The Docker secrets a job can mount, by role, at these paths.
SecretRole = Literal[
    "db-root-password", "db-root-password-previous", "admin-password", "backup-offsite-identity"
]
SECRET_FILES: dict[SecretRole, str] = {
    "db-root-password": "/run/secrets/db-root-password",
    "db-root-password-previous": "/run/secrets/db-root-password-previous",
    "admin-password": "/run/secrets/admin-password",
    "backup-offsite-identity": "/run/secrets/backup-offsite-identity",
}
DB = {"DB_HOST": MARIADB.name, "DB_PORT": str(MARIADB.port)}
REDIS_CACHE_URL = REDIS_CACHE.url("redis")
REDIS_QUEUE_URL = REDIS_QUEUE.url("redis")
RESTORE_BACKUPS_PATH = "/backups"
# prepare-backup-dir sees the data node's file system here.
HOST_ROOT = "/host"
# The image's frappe user, which the backup service runs as.
FRAPPE_USER = "1000:1000"


@dataclass(frozen=True)
class JobSettings:
    """What the site jobs are built from: which site, its apps, and which services and
    requests this deploy has; no secret."""

    environment: str
    site_name: str
    apps: tuple[str, ...]
    enable_scheduler: bool
    # The backup service runs (its host directory is prepared).
    backup_service: bool
    backup_host_path: str
    # The restore drill's state folder on the data node, where the drill runs.
    drill_state_path: str | None
    # mailpit runs (dev): Frappe's mail goes to it.
    mail_catcher: bool
    # A root password rotation is under way (dbRootPasswordPrevious is set).
    rotates_root_password: bool
    restore: RestoreRequest | None
    placement: Placement

    @classmethod
    def from_config(cls, config: StackConfig) -> JobSettings:
        return cls(
            environment=config.environment,
            site_name=config.site_name,
            apps=tuple(config.frappe.apps),
            enable_scheduler=config.frappe.enable_scheduler,
            backup_service=config.services.get(BACKUP.name) is not None,
            backup_host_path=config.backup.host_path,
            drill_state_path=(
                config.backup.drill_state_path if config.backup.drill.enabled else None
            ),
            mail_catcher=config.services.get(MAILPIT.name) is not None,
            rotates_root_password=config.db_root_password_previous is not None,
            restore=config.restore,
            placement=config.placement,
        )


def _rotation_env(settings: JobSettings) -> dict[str, str]:
    return {
        **DB,
        "DB_ROOT_PASSWORD_FILE": SECRET_FILES["db-root-password"],
        "DB_ROOT_PASSWORD_PREVIOUS_FILE": SECRET_FILES["db-root-password-previous"],
    }


def _backup_dir_env(settings: JobSettings) -> dict[str, str]:
    env = {
        "HOST_ROOT": HOST_ROOT,
        "BACKUP_DIR": settings.backup_host_path,
        "BACKUP_DIR_OWNER": FRAPPE_USER,
    }
    if settings.drill_state_path is not None:
        env["DRILL_STATE_DIR"] = settings.drill_state_path
    return env


def _configurator_env(settings: JobSettings) -> dict[str, str]:
    env = {
        **DB,
        "REDIS_CACHE": REDIS_CACHE_URL,
        "REDIS_QUEUE": REDIS_QUEUE_URL,
        # Frappe's realtime events travel through the queue Redis.
        "REDIS_SOCKETIO": REDIS_QUEUE_URL,
        "SOCKETIO_PORT": str(WEBSOCKET.port),
        # URLs Frappe builds outside a request (links in e-mails) use host_name.
        "HOST_NAME": f"https://{settings.site_name}",
        # The queues of the catalogue's workers that Frappe must learn from its `workers` map.
        "FRAPPE_WORKERS": json.dumps(frappe_workers_map(), sort_keys=True),
    }
    if settings.mail_catcher:
        env["MAIL_SERVER"] = MAILPIT.name
        env["MAIL_PORT"] = str(MAILPIT.port)
    return env


def _create_site_env(settings: JobSettings) -> dict[str, str]:
    env = {
        **DB,
        "SITE_NAME": settings.site_name,
        # Only the stack's own site becomes the bench's default_site (--set-default): a site
        # made by hand with this job must not take that over.
        "PRIMARY_SITE": settings.site_name,
        "INSTALL_APPS": " ".join(settings.apps),
        "REDIS_CACHE": REDIS_CACHE_URL,
        "REDIS_QUEUE": REDIS_QUEUE_URL,
        "ADMIN_PASSWORD_FILE": SECRET_FILES["admin-password"],
        "DB_ROOT_PASSWORD_FILE": SECRET_FILES["db-root-password"],
        "ENABLE_SCHEDULER": "1" if settings.enable_scheduler else "0",
    }
    if settings.restore is not None:
        # Recorded in the site's marker: restore.sh knows the site was made for this request.
        env["RESTORE_REQUEST"] = settings.restore.request_id
    return env


def _restore_env(settings: JobSettings) -> dict[str, str]:
    restore = settings.restore
    assert restore is not None
    use_key = restore.use_backup_encryption_key
    env = {
        "SITE_NAME": restore.site,
        "SOURCE_SITE": restore.source_site,
        "BACKUP_DATE": restore.date,
        "BACKUP_ROOT": RESTORE_BACKUPS_PATH,
        "DB_ROOT_PASSWORD_FILE": SECRET_FILES["db-root-password"],
        "USE_BACKUP_ENCRYPTION_KEY": "auto" if use_key is None else str(use_key).lower(),
        "RESTORE_REQUEST": restore.request_id,
    }
    if restore.from_offsite:
        env["OFFSITE_IDENTITY_FILE"] = SECRET_FILES["backup-offsite-identity"]
    return env


def _restore_secrets(settings: JobSettings) -> tuple[SecretRole, ...]:
    # The identity only for an off-site copy: the stack holds it only then.
    offsite = settings.restore is not None and settings.restore.from_offsite
    return ("db-root-password", *(("backup-offsite-identity",) if offsite else ()))


def _migrate_env(settings: JobSettings) -> dict[str, str]:
    # The apps are in the environment so that a change of frappe.apps runs migrate, which
    # installs what the site lacks.
    return {"SITE_NAME": settings.site_name, "INSTALL_APPS": " ".join(settings.apps)}


def _no_env(settings: JobSettings) -> dict[str, str]:
    return {}


# The preflight worker's queue: the shortest job timeout, so stopping it never waits long.
PREFLIGHT_WORKER_QUEUES = ("short",)


def _boot_check_env(settings: JobSettings) -> dict[str, str]:
    return {
        "SITE_NAME": settings.site_name,
        "PREFLIGHT_WORKER_QUEUES": ",".join(PREFLIGHT_WORKER_QUEUES),
        "PREFLIGHT_WORKER_GRACE": str(worker_stop_grace_seconds(PREFLIGHT_WORKER_QUEUES)),
    }


def job_script(name: str) -> str:
    """A job script as a swarm job runs it (`bash -c`): its libraries inlined, as the
    container has no checkout to source them from."""
    text = (SCRIPTS / name).read_text()
    return _SOURCED_LIBRARY.sub(lambda match: (SCRIPTS / match[1]).read_text().rstrip("\n"), text)


def _always(settings: JobSettings) -> bool:
    return True


@dataclass(frozen=True)
class SiteJob:
    name: str
    script: str
    networks: frozenset[NetworkRole]
    env: Callable[[JobSettings], Mapping[str, str]] = _no_env
    # The Docker secrets it mounts, fixed or by the deploy's settings.
    secrets: tuple[SecretRole, ...] | Callable[[JobSettings], tuple[SecretRole, ...]] = ()
    # False: a new image alone does not run the job again (it runs with the image it first had).
    reruns_on_new_image: bool = True
    # The dated backups, read-only (restore); the job then runs on the data node.
    mounts_backups: bool = False
    enabled: Callable[[JobSettings], bool] = _always
    # "data": placed with placement.data (the node whose disk holds backups and volumes).
    node: Literal["app", "data"] = "app"
    mounts_sites: bool = True
    # The node's whole file system at HOST_ROOT, read-write (prepare-backup-dir only).
    mounts_host_root: bool = False
    # docker service create --user; None runs as the image's user (frappe).
    user: str | None = None
    # False: it neither reads nor writes the database, so it need not wait for the data layer.
    needs_database: bool = True

    @property
    def script_text(self) -> str:
        return job_script(self.script)

    def secret_roles(self, settings: JobSettings) -> tuple[SecretRole, ...]:
        return self.secrets(settings) if callable(self.secrets) else self.secrets


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
        enabled=lambda settings: settings.backup_service,
        needs_database=False,
    ),
    SiteJob(
        "rotate-db-root-password",
        "rotate-db-root-password.sh",
        frozenset({"database"}),
        _rotation_env,
        ("db-root-password", "db-root-password-previous"),
        reruns_on_new_image=False,
        enabled=lambda settings: settings.rotates_root_password,
    ),
    # Writes common_site_config.json on the sites volume: the database is not asked.
    SiteJob(
        "configurator",
        "configurator.sh",
        frozenset({"internal"}),
        _configurator_env,
        needs_database=False,
    ),
    SiteJob(
        "create-site",
        "create-site.sh",
        SQL,
        _create_site_env,
        ("admin-password", "db-root-password"),
        reruns_on_new_image=False,
    ),
    SiteJob(
        "restore",
        "restore.sh",
        SQL,
        _restore_env,
        _restore_secrets,
        reruns_on_new_image=False,
        mounts_backups=True,
        enabled=lambda settings: settings.restore is not None,
        node="data",
    ),
    # The new image's apps, its reach to the database and Redis, a worker and the realtime
    # server, checked before migrate: a release that cannot start never touches the schema
    # (components/scripts/preflight.sh).
    SiteJob("boot-check", "preflight.sh", SQL, _boot_check_env),
    # No job after it starts the new backend to ask it for /api/method/ping: the backend's own
    # start-first update is that check, at the same point (after migrate, before any other
    # service moves) and with the same health check, and it costs a backend boot less per
    # release. A new backend that never turns healthy never joins the service's DNS, Swarm rolls
    # it back and `pulumi up` stops before the other services (docs/site-jobs.md).
    SiteJob("migrate", "migrate.sh", SQL, _migrate_env),
)
