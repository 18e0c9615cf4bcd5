"""Traefik's static configuration (its arguments) and the routing labels it reads from the
app services."""
