"""The site jobs of one environment, run in order by ``pulumi up`` between data and app layer.

Each job is a pulumi-command ``local.Command`` that runs ``run-swarm-job.sh`` with the docker
CLI against the same swarm the docker provider targets (``docker:host``), so the job runs as a
swarm one-shot task on the environment's networks and volumes, and a failed job fails the
``pulumi up`` with the job's log. Passwords reach the jobs only as Docker secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.config import StackConfig
from components.frappe_jobs import (
    HOST_ROOT,
    JOB_RUNNER,
    RESTORE_BACKUPS_PATH,
    SECRET_FILES,
    SITE_JOBS,
    SecretRole,
    SiteJob,
)
from components.frappe_processes import LOGS_PATH, SITES_PATH
from components.naming import EnvironmentNames
from components.swarm_secrets import rotating_secret


@dataclass(frozen=True)
class JobNetworks:
    """Network names (the docker CLI attaches by name)."""

    internal: pulumi.Input[str]
    database: pulumi.Input[str]


@dataclass(frozen=True)
class SiteJobsArgs:
    config: StackConfig
    image: pulumi.Input[str]
    networks: JobNetworks
    sites_volume: pulumi.Input[str]
    logs_volume: pulumi.Input[str]
    # The data layer's root password secret: jobs mount the very secret MariaDB was given.
    db_root_password_secret: docker.Secret
    # The swarm to run jobs on: the docker provider's own `docker:host`; None is the local engine.
    docker_host: str | None = None

    @property
    def names(self) -> EnvironmentNames:
        return EnvironmentNames(self.config.environment)


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
        previous: list[pulumi.Resource] = []
        for job in SITE_JOBS:
            if not job.enabled(args.config):
                continue
            ordered = pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=previous,
                    # Keeps create-site and restore from running again for a new image only.
                    ignore_changes=[] if job.reruns_on_new_image else ["environment.JOB_IMAGE"],
                ),
            )
            self.jobs[job.name] = self._command(name, job, ordered)
            previous = [self.jobs[job.name]]
        self.register_outputs({"jobs": list(self.jobs)})

    def _job_secrets(
        self, name: str, opts: pulumi.ResourceOptions
    ) -> dict[SecretRole, docker.Secret]:
        config = self._args.config
        names = self._args.names
        labels = {"brandclub.environment": config.environment, "brandclub.layer": "jobs"}
        values: dict[SecretRole, str | None] = {
            "admin-password": config.admin_password.get_secret_value(),
            "db-root-password-previous": config.db_root_password_previous.get_secret_value()
            if config.db_root_password_previous
            else None,
        }
        name_key = config.secret_name_key.get_secret_value()
        secrets: dict[SecretRole, docker.Secret] = {
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
        secrets["db-root-password"] = self._args.db_root_password_secret
        return secrets

    def _command(
        self, name: str, job: SiteJob, opts: pulumi.ResourceOptions
    ) -> command.local.Command:
        args = self._args
        config = args.config
        mounts: list[pulumi.Input[str]] = []
        if job.mounts_sites:
            mounts += [
                pulumi.Output.concat(
                    "type=volume,source=", args.sites_volume, f",target={SITES_PATH}"
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
        constraints = list(config.placement.data if job.node == "data" else config.placement.app)
        networks = [
            network
            for role, network in (
                ("internal", args.networks.internal),
                ("database", args.networks.database),
            )
            if role in job.networks
        ]
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
                    for role in job.secrets
                )
            ).apply("\n".join),
            "JOB_ENV": "\n".join(
                f"{key}={value}" for key, value in sorted(job.env(config).items())
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
        config = self._args.config
        restore = config.restore
        assert restore is not None
        host_path = restore.host_path or config.backup.host_path
        return (
            f"type=bind,source={host_path}/{restore.source_site},"
            f"target={RESTORE_BACKUPS_PATH}/{restore.source_site},readonly"
        )
