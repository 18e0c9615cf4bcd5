"""The capacity preflight on the tiers' swarms. A rendering of the program is the tiers' preview;
its pulumi-command ``local.run`` invoke is answered here as pulumi-command answers it: the
command run by ``/bin/sh -c`` on this machine, against the tier's engine (the ``DOCKER_HOST`` of
this process, as the site jobs run; never the stack file's ``docker:host``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.capacity_preflight import CapacityError, planned_services
from components.config.loader import load_stack_config
from components.swarm.capacity import PlannedService, SwarmFacts
from components.swarm.swarm_facts import GATHER_SCRIPT, parse_facts
from stacktools.engine import Rendering, deep_merge, render, run_on_this_machine
from stacktools.export import EXPORT_DEFAULTS

COMMAND_TIMEOUT = 120
# Strong enough for the config's checks; a preview registers nothing with them.
SECRETS = {
    "brandclub:dbRootPassword": "capacity-Root-pw-1!",
    "brandclub:adminPassword": "capacity-Admin-pw-2?",
    "brandclub:secretNameKey": "capacity-preflight-secret-name-key-0123456789",
}


# local.run's command as pulumi-command runs it, on the tier's engine.
on_tier_engine = run_on_this_machine(COMMAND_TIMEOUT)


def tier_facts() -> SwarmFacts:
    """The tier's swarm as the preflight reads it."""
    return parse_facts(on_tier_engine({"command": GATHER_SCRIPT})["stdout"])


def preview(stack: str, overrides: Mapping[str, Any]) -> Rendering:
    """The program for ``stack`` as the export renders it, with ``overrides``, the preflight
    reading the tier's swarm."""
    return render(
        stack, deep_merge(EXPORT_DEFAULTS, overrides), secrets=SECRETS, commands=on_tier_engine
    )


def planned(stack: str, overrides: Mapping[str, Any]) -> dict[str, PlannedService]:
    """The services the preflight plans for ``stack`` with ``overrides``, by swarm name."""
    found: dict[str, PlannedService] = {}

    def program() -> None:
        found.update({s.name: s for s in planned_services(load_stack_config())})

    render(stack, deep_merge(EXPORT_DEFAULTS, overrides), secrets=SECRETS, program=program)
    return found


def refused(stack: str, overrides: Mapping[str, Any]) -> CapacityError:
    try:
        preview(stack, overrides)
    except CapacityError as error:
        assert error.registered == [], "refused before anything was registered"  # type: ignore[attr-defined]
        return error
    raise AssertionError(f"the preflight let {stack} with {overrides} through")


def checked(rendering: Rendering) -> None:
    """The preflight ran and found the deploy fits: no warning that it did not run."""
    skipped = [w for w in rendering.warnings if "Capacity preflight" in w]
    assert not skipped, skipped
