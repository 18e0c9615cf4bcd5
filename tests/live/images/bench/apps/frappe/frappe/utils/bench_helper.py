"""``python -m frappe.utils.bench_helper frappe [--site SITE] COMMAND ...``: the entry point
``bench`` hands every Frappe command to, from the ``sites`` folder (Frappe's bench_helper and
its click group). Global options come before the command, as with Frappe's own group."""

from __future__ import annotations

import sys

from frappe import CommandError, all_sites
from frappe.commands import COMMANDS, Context, UsageError


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


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "frappe":
        print("Usage: python -m frappe.utils.bench_helper frappe ...", file=sys.stderr)
        return 2
    try:
        context, arguments = parse_globals(argv[1:])
        if not arguments:
            raise UsageError("Missing command.")
        name, *rest = arguments
        if name not in COMMANDS:
            raise UsageError(f"No such command '{name}'.")
        return COMMANDS[name](context, rest) or 0
    except UsageError as error:
        # click's way: usage errors exit 2.
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except CommandError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
