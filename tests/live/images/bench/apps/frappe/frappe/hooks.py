"""Frappe's own hooks module (frappe/hooks.py), imported with every app's on each request."""

app_name = "frappe"
