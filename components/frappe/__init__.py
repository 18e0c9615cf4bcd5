"""How the Frappe platform runs: each app service's process and health check, and the table of
site jobs a rollout walks."""
