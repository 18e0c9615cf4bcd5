"""The stand-in's Frappe commands and the little of click they need: options by spelling,
flags, repeatable options, combined short flags (``-gp``), and an option's value being the
next argument whatever it looks like (a password may start with a dash)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Literal

from frappe import CommandError

Kind = Literal["flag", "value", "multiple"]


class UsageError(Exception):
    """A command line click would refuse (exit status 2)."""


# Plain classes, not dataclasses: every bench call is a new process (the unit tier starts a few
# hundred), and dataclasses' import (inspect with it) was a third of a call's imports.
class Context:
    def __init__(self) -> None:
        self.sites: list[str] = []
        self.verbose = False
        self.force = False

    def site(self) -> str:
        """The one site a command works on (Frappe's get_site)."""
        if not self.sites:
            raise CommandError("Please specify --site sitename")
        return self.sites[0]


class Parsed:
    def __init__(self, arguments: list[str], options: dict[str, list[str]]) -> None:
        self.arguments, self.options = arguments, options

    def value(self, name: str, default: str | None = None) -> str | None:
        values = self.options.get(name) or []
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return bool(self.options.get(name))

    def values(self, name: str) -> list[str]:
        return list(self.options.get(name) or [])


def parse(argv: list[str], spec: dict[str, Kind], aliases: dict[str, str] | None = None) -> Parsed:
    """``spec`` maps each long option to its kind; ``aliases`` maps other spellings (short
    letters such as ``-g``, or old names) to the long one."""
    aliases = aliases or {}
    arguments: list[str] = []
    options: dict[str, list[str]] = {}
    pending = iter(argv)
    for argument in pending:
        if argument == "--":
            arguments.extend(pending)
            break
        if not argument.startswith("-") or argument == "-":
            arguments.append(argument)
            continue
        name, equals, inline = argument.partition("=")
        if (
            not name.startswith("--")
            and len(name) > 2
            and all(f"-{c}" in aliases for c in name[1:])
        ):
            names = [f"-{c}" for c in name[1:]]  # combined short flags: -gp
        else:
            names = [name]
        for short in names:
            option = aliases.get(short, short)
            if option not in spec:
                raise UsageError(f"No such option: {short}")
            if spec[option] == "flag":
                options.setdefault(option, []).append("1")
                continue
            value = inline if equals else next(pending, None)
            if value is None:
                raise UsageError(f"Option '{option}' requires an argument.")
            options.setdefault(option, []).append(value)
    return Parsed(arguments, options)


Command = Callable[[Context, list[str]], int | None]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(function: Command) -> Command:
        COMMANDS[name] = function
        return function

    return register


# The module that registers each command (on import); every other command is site's. Only the
# module of the command run is imported, as Frappe's commands import their heavy parts inside.
MODULES = {"backup": "backup", "restore": "backup", "worker": "worker", "schedule": "worker"}


def find(name: str) -> Command | None:
    importlib.import_module(f"frappe.commands.{MODULES.get(name, 'site')}")
    return COMMANDS.get(name)
