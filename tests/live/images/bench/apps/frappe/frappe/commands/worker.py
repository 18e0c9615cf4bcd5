"""``bench worker`` and ``bench schedule`` (Frappe v15 frappe/commands/scheduler.py)."""

from __future__ import annotations

from frappe.commands import Context, command, parse
from frappe.utils import background_jobs


@command("worker")
def worker(context: Context, argv: list[str]) -> int:
    options = parse(
        argv,
        {
            "--queue": "value",
            "--quiet": "flag",
            "--burst": "flag",
            "--strategy": "value",
            "--rq-username": "value",
            "--rq-password": "value",
        },
    )
    return background_jobs.start_worker(options.value("--queue"), burst=options.flag("--burst"))


@command("schedule")
def schedule(context: Context, argv: list[str]) -> int:
    parse(argv, {})
    return background_jobs.start_scheduler()
