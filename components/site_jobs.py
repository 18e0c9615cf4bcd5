"""The site jobs of one environment, run in order by ``pulumi up`` between data and app layer.

The jobs that need no database (preparing the backup directory, the configurator, which only
writes to the sites volume) start as soon as what they mount exists, beside the data services;
the first job that talks to the database waits for the data layer and for them, and every later
one for the job before it. A first deploy is therefore networks -> data services -> create-site
-> boot-check -> migrate -> app services.

Each job is a pulumi-command ``local.Command`` that runs ``run-swarm-job.sh`` with the docker
CLI against the same swarm the docker provider targets (``docker:host``), so the job runs as a
swarm one-shot task on the environment's networks and volumes, and a failed job fails the
``pulumi up`` with the job's log. Passwords reach the jobs only as Docker secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.config.model import StackConfig
from components.frappe.jobs import (
    HOST_ROOT,
    JOB_RUNNER,
    RESTORE_BACKUPS_PATH,
    SECRET_FILES,
    SITE_JOBS,
    JobSettings,
    SecretRole,
    SiteJob,
)
from components.frappe.processes import LOGS_PATH, SITES_PATH
from components.platform.catalogue import NETWORK_ROLES, EnvironmentNames, layer_labels
from components.swarm.secrets import rotating_secret
from components.swarm.services import Networks


@dataclass(frozen=True)
class JobSecrets:
    """Of the stack's secrets, only those the jobs mount."""

    admin_password: str
    # The jobs' own Docker secret of it, never the one MariaDB mounts: that one keeps the value
    # the data directory was initialised with (components/data_layer.py), so a rotation
    # changes the jobs' secret alone, and only the rotation job mounts the new value before it
    # has set it in the database (the later jobs wait for it).
    db_root_password: str
    # Keys the fingerprint in Docker secret names (components/swarm/secrets.py).
    secret_name_key: str
    # The password MariaDB still has, during a root password rotation.
    db_root_password_previous: str | None = None
    # The age identity that opens an off-site copy, during a restore from one.
    backup_offsite_identity: str | None = None

    @classmethod
    def from_config(cls, config: StackConfig) -> JobSecrets:
        previous = config.db_root_password_previous
        identity = config.backup_offsite_identity
        return cls(
            admin_password=config.admin_password.get_secret_value(),
            db_root_password=config.db_root_password.get_secret_value(),
            secret_name_key=config.secret_name_key.get_secret_value(),
            db_root_password_previous=previous.get_secret_value() if previous else None,
            backup_offsite_identity=identity.get_secret_value() if identity else None,
        )


@dataclass(frozen=True)
class SiteJobsArgs:
    """The site's settings and the jobs' secrets (``JobSettings.from_config``,
    ``JobSecrets.from_config``) and what the data layer hands over."""

    settings: JobSettings
    secrets: JobSecrets
    image: pulumi.Input[str]
    # By name: the docker CLI attaches by name.
    networks: Networks
    sites_volume: pulumi.Input[str]
    logs_volume: pulumi.Input[str]
    # The data layer: the jobs that talk to the database wait for it.
    data_layer: pulumi.Resource
    # The swarm to run jobs on: the docker provider's own `docker:host`; None is the local engine.
    docker_host: str | None = None
    # The sites volume's local-driver options where it lives on shared storage: a job may run
    # on any node, and the node creates the volume from the job's mount the first time.
    sites_driver_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> EnvironmentNames:
        return EnvironmentNames(self.settings.environment)


class SiteJobs(pulumi.ComponentResource):
    """``jobs`` maps each enabled job's name to its command, in the order they run."""

    def __init__(
        self, name: str, args: SiteJobsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("brandclub:swarm:SiteJobs", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self))
        self._secrets = self._job_secrets(name, child)
        self.jobs: dict[str, command.local.Command] = {}
        # What the next job that talks to the database waits for.
        before: list[pulumi.Resource] = [args.data_layer]
        for job in SITE_JOBS:
            if not job.enabled(args.settings):
                continue
            ordered = pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=before if job.needs_database else [],
                    # Keeps create-site and restore from running again for a new image only.
                    ignore_changes=[] if job.reruns_on_new_image else ["environment.JOB_IMAGE"],
                ),
            )
            self.jobs[job.name] = self._command(name, job, ordered)
            before = [self.jobs[job.name]] if job.needs_database else [*before, self.jobs[job.name]]
        self.register_outputs({"jobs": list(self.jobs)})

    def _job_secrets(
        self, name: str, opts: pulumi.ResourceOptions
    ) -> dict[SecretRole, docker.Secret]:
        args = self._args
        names = args.names
        labels = layer_labels("jobs", args.settings.environment)
        values: dict[SecretRole, str | None] = {
            "admin-password": args.secrets.admin_password,
            "db-root-password": args.secrets.db_root_password,
            "db-root-password-previous": args.secrets.db_root_password_previous,
            "backup-offsite-identity": args.secrets.backup_offsite_identity,
        }
        name_key = args.secrets.secret_name_key
        return {
            role: rotating_secret(
                f"{name}-{role}",
                f"{names.app_stack}-{role}",
                value,
                labels,
                opts,
                name_key=name_key,
            )
            for role, value in values.items()
            if value is not None
        }

    def _command(
        self, name: str, job: SiteJob, opts: pulumi.ResourceOptions
    ) -> command.local.Command:
        args = self._args
        settings = args.settings
        mounts: list[pulumi.Input[str]] = []
        if job.mounts_sites:
            mounts += [
                pulumi.Output.concat(
                    "type=volume,source=",
                    args.sites_volume,
                    f",target={SITES_PATH}",
                    volume_driver_fields(args.sites_driver_options),
                ),
                pulumi.Output.concat(
                    "type=volume,source=", args.logs_volume, f",target={LOGS_PATH}"
                ),
            ]
        if job.mounts_backups:
            mounts.append(self._restore_backups_mount())
        if job.mounts_host_root:
            mounts.append(f"type=bind,source=/,target={HOST_ROOT}")
        # The backups and the data volumes live on the data node's disk.
        placement = settings.placement
        constraints = list(placement.data_constraints if job.node == "data" else placement.app)
        networks = [args.networks[role] for role in NETWORK_ROLES if role in job.networks]
        environment: dict[str, pulumi.Input[str]] = {
            "JOB_NAME": f"{args.names.app_stack}-job-{job.name}",
            "JOB_IMAGE": args.image,
            "JOB_NETWORKS": pulumi.Output.all(*networks).apply(" ".join),
            "JOB_MOUNTS": pulumi.Output.all(*mounts).apply("\n".join),
            "JOB_SECRETS": pulumi.Output.all(
                *(
                    pulumi.Output.concat(
                        "source=", self._secrets[role].name, f",target={SECRET_FILES[role]}"
                    )
                    for role in job.secret_roles(settings)
                )
            ).apply("\n".join),
            "JOB_ENV": "\n".join(
                f"{key}={value}" for key, value in sorted(job.env(settings).items())
            ),
            "JOB_SCRIPT": job.script_text,
            "JOB_CONSTRAINTS": "\n".join(constraints),
        }
        if job.user is not None:
            environment["JOB_USER"] = job.user
        if args.docker_host:
            environment["DOCKER_HOST"] = args.docker_host
        return command.local.Command(
            f"{name}-{job.name}",
            create=JOB_RUNNER,
            environment=environment,
            opts=opts,
        )

    def _restore_backups_mount(self) -> str:
        """The dated backups of the restore's source site, where restore.sh looks for them
        (BACKUP_ROOT/SOURCE_SITE)."""
        settings = self._args.settings
        restore = settings.restore
        assert restore is not None
        host_path = restore.host_path or settings.backup_host_path
        return (
            f"type=bind,source={host_path}/{restore.source_site},"
            f"target={RESTORE_BACKUPS_PATH}/{restore.source_site},readonly"
        )


def _csv_field(text: str) -> str:
    """One field of ``--mount``'s value, which the docker CLI reads as CSV: an NFS volume's
    ``o`` option holds commas."""
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def volume_driver_fields(options: Mapping[str, str]) -> str:
    """``--mount`` fields that create the volume with the local driver and these options on a
    node that has none of that name yet ("" for a plain local volume)."""
    if not options:
        return ""
    fields = ["volume-driver=local"]
    fields += [_csv_field(f"volume-opt={key}={value}") for key, value in sorted(options.items())]
    return "," + ",".join(fields)
