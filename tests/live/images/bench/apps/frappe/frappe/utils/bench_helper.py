"""``python -m frappe.utils.bench_helper frappe [--site SITE] COMMAND ...``: the entry point
``bench`` hands every Frappe command to, from the ``sites`` folder (Frappe's bench_helper and
its click group). Global options come before the command, as with Frappe's own group.

Where a test asks (the image never sets these): $STANDIN_CALLS records each call as
``["bench", *args]`` and $STANDIN_PROC_SNAPSHOTS takes a snapshot of every process (both with
the unit tier's helpers, tests/stand_ins/stand_in_support.py, on that tier's bench path);
$STANDIN_FAIL (words, e.g. ``all migrate``) makes a call whose arguments contain them fail
before it does anything, with $STANDIN_FAIL_STATUS (1)."""

from __future__ import annotations

import os
import sys

from frappe import CommandError, all_sites
from frappe.commands import Context, UsageError, find


def parse_globals(argv: list[str]) -> tuple[Context, list[str]]:
    context = Context()
    arguments = list(argv)
    while arguments and arguments[0].startswith("-"):
        option = arguments.pop(0)
        name, equals, inline = option.partition("=")
        if name == "--site":
            value = inline if equals else (arguments.pop(0) if arguments else "")
            if not value:
                raise UsageError("Option '--site' requires an argument.")
            # Frappe: "all" means every site of the bench; a list may be comma separated.
            context.sites = all_sites() if value == "all" else value.split(",")
        elif name in ("--verbose", "-v"):
            context.verbose = True
        elif name == "--force":
            context.force = True
        else:
            raise UsageError(f"No such option: {name}")
    return context, arguments


def observe(args: list[str]) -> None:
    if os.environ.get("STANDIN_CALLS") or os.environ.get("STANDIN_PROC_SNAPSHOTS"):
        from stand_in_support import record_call, snapshot_processes

        record_call("bench", args)
        snapshot_processes(
            " ".join(["bench", *(args[2:3] if args[:1] == ["--site"] else args[:1])])
        )


def simulated_failure(args: list[str]) -> int | None:
    """The exit status of a call $STANDIN_FAIL makes fail, else None. Frappe's commands fail
    with an uncaught error (a traceback, status 1); the status is a switch so a test can tell a
    job passes the command's own status on."""
    failing = os.environ.get("STANDIN_FAIL")
    if failing and f" {failing} " in f" {' '.join(args)} ":
        print(f"bench: simulated failure (STANDIN_FAIL={failing})", file=sys.stderr)
        return int(os.environ.get("STANDIN_FAIL_STATUS", "1"))
    return None


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "frappe":
        print("Usage: python -m frappe.utils.bench_helper frappe ...", file=sys.stderr)
        return 2
    observe(argv[1:])
    failed = simulated_failure(argv[1:])
    if failed is not None:
        return failed
    try:
        context, arguments = parse_globals(argv[1:])
        if not arguments:
            raise UsageError("Missing command.")
        name, *rest = arguments
        run = find(name)
        if run is None:
            raise UsageError(f"No such command '{name}'.")
        return run(context, rest) or 0
    except UsageError as error:
        # click's way: usage errors exit 2.
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except CommandError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
