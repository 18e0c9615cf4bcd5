"""frappe.utils, as far as the stand-in needs it."""

from __future__ import annotations

import frappe


def get_bench_id() -> str:
    """Frappe v15: ``bench_id`` from the common config, else the bench's real path with slashes
    as dashes (``home-frappe-frappe-bench``); RQ queue and worker names start with it."""
    path = str(frappe.BENCH.resolve()).strip("/").replace("/", "-")
    return frappe.common_config().get("bench_id", path)


def cint(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return int(bool(value))
