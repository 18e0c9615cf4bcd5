"""The program's parts. Beside this file, the Pulumi components ``__main__.py`` composes, in the
order of a rollout: ``images.py``, ``data_layer.py``, ``traefik_ingress.py``, ``site_jobs.py``,
``app_layer.py``; ``capacity_preflight.py``, the check that the swarm holds the deploy, run before
any of them; and ``pulumi_sdk.py``, every use of the Pulumi SDK beyond its documented API.

What they are built from, from the ground up: ``platform/`` (the service catalogue and the
facts of its services), ``config/`` (the stack configuration), ``swarm/`` (Docker services,
secrets and configs), ``frappe/`` (how the Frappe processes and site jobs run), ``traefik/``
(Traefik's arguments and routing labels). The files containers get: ``scripts/``, ``nginx/``.
"""
