"""Brand Club on Docker Swarm: one environment's data layer, ingress and app layer.

Read top to bottom it is the architecture diagram: the database stack owns the environment's
networks, Traefik owns the public one, and the application joins both.
"""

import pulumi

from components.app_layer import AppLayer, AppLayerArgs, AppNetworks
from components.config_loader import load_stack_config
from components.data_layer import DataLayer, DataLayerArgs
from components.naming import SHARED_SERVICES_NETWORK, TRAEFIK_PUBLIC_NETWORK, TRAEFIK_STACK
from components.traefik_ingress import TraefikIngress, TraefikIngressArgs

config = load_stack_config()

data = DataLayer("data", DataLayerArgs.from_config(config))
ingress = TraefikIngress("ingress", TraefikIngressArgs.from_config(config))
app = AppLayer(
    "app",
    AppLayerArgs(
        config=config,
        networks=AppNetworks(
            internal=data.internal_network.id,
            database=data.database_network.id,
            public=ingress.public_network_id,
        ),
        routing_labels=ingress.routing_labels(config),
    ),
)

pulumi.export("siteUrl", config.site_url)
pulumi.export("appImage", config.app_image)
pulumi.export(
    "networks",
    {
        "internal": data.internal_network.name,
        "database": data.database_network.name,
        "public": TRAEFIK_PUBLIC_NETWORK,
        "sharedServices": SHARED_SERVICES_NETWORK,
    },
)
stacks = {data.stack_name: data.service_names, app.stack_name: app.service_names}
if ingress.service is not None:
    stacks[TRAEFIK_STACK] = pulumi.Output.all(ingress.service.name)
pulumi.export("stacks", stacks)
