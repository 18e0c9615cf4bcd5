"""Brand Club on Docker Swarm: one environment's data layer, ingress, site jobs and app layer.

Read top to bottom it is the architecture diagram and the rollout sequence: the swarm is first
checked for room (the capacity preflight), every image is pinned to its digest, the database
stack owns the environment's networks and volumes, Traefik owns the public network, the site
jobs prepare and migrate the site, and only then does the application roll out.
"""

import pulumi

from components.app_layer import AppLayer, AppLayerArgs, AppSecrets, AppVolumes
from components.capacity_preflight import check_capacity
from components.config.loader import load_docker_host, load_stack_config
from components.config.stacks import SERIES_OUTPUT
from components.data_layer import DataLayer, DataLayerArgs
from components.frappe.jobs import JobSettings
from components.frappe.processes import AppSettings
from components.images import Images, ImagesArgs
from components.platform.catalogue import (
    SHARED_SERVICES_NETWORK,
    TRAEFIK_PUBLIC_NETWORK,
    TRAEFIK_STACK,
)
from components.site_jobs import JobSecrets, SiteJobs, SiteJobsArgs
from components.traefik_ingress import TraefikIngress, TraefikIngressArgs

config = load_stack_config()
# Before anything is registered: a deploy the swarm's nodes cannot hold stops here.
check_capacity(config, load_docker_host())

images = Images("images", ImagesArgs.from_config(config))
image = images.references["app"]
data = DataLayer(
    "data",
    DataLayerArgs.from_config(
        config,
        mariadb_image=images.references["mariadb"],
        redis_image=images.references["redis"],
    ),
)
ingress = TraefikIngress(
    "ingress", TraefikIngressArgs.from_config(config, images.references.get("traefik"))
)
# Swarm ignores depends_on; these edges are what order a rollout. The jobs that talk to the
# database wait for the data layer (SiteJobsArgs.data_layer), the app services for every job.
jobs = SiteJobs(
    "jobs",
    SiteJobsArgs(
        settings=JobSettings.from_config(config),
        secrets=JobSecrets.from_config(config),
        image=image,
        networks={role: network.name for role, network in data.networks.items()},
        sites_volume=data.volumes["sites"].name,
        sites_driver_options=data.sites_driver_options,
        logs_volume=data.volumes["logs"].name,
        data_layer=data,
        docker_host=load_docker_host(),
    ),
)
app = AppLayer(
    "app",
    AppLayerArgs(
        settings=AppSettings.from_config(config),
        secrets=AppSecrets.from_config(config),
        image=image,
        mailpit_image=images.references.get("mailpit"),
        networks={
            **{role: network.id for role, network in data.networks.items()},
            "public": ingress.public_network_id,
        },
        volumes=AppVolumes(
            sites=data.volumes["sites"].name,
            logs=data.volumes["logs"].name,
            sites_driver_options=data.sites_driver_options,
        ),
        routing=ingress.routing,
    ),
    opts=pulumi.ResourceOptions(depends_on=[jobs]),
)

pulumi.export("siteUrl", config.site_url)
pulumi.export("appImage", image)
pulumi.export("appImageDigest", images.digests["app"])
pulumi.export("images", images.references)
# What the next deploy reads back to refuse a series step down (components/config/stacks.py).
pulumi.export(SERIES_OUTPUT, config.mariadb.version)
pulumi.export("siteJobs", list(jobs.jobs))
pulumi.export(
    "networks",
    {
        **{role: network.name for role, network in data.networks.items()},
        "public": TRAEFIK_PUBLIC_NETWORK,
        "sharedServices": SHARED_SERVICES_NETWORK,
    },
)
stacks = {data.stack_name: data.service_names, app.stack_name: app.service_names}
if ingress.service is not None:
    stacks[TRAEFIK_STACK] = pulumi.Output.all(ingress.service.name)
pulumi.export("stacks", stacks)
