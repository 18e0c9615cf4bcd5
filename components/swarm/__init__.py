"""Docker Swarm's objects as pulumi-docker resources: services (one translation of a service
description), secrets named by their value, and configs named by their content."""
