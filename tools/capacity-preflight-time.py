#!/usr/bin/env python3
"""What the capacity preflight adds to a preview, measured on this machine: a measurement, never
a test.

It renders a stack with the offline engine twice per run: once as the offline engine always does
(the local.run invoke fails at once, so the preflight only warns), once with local.run answered
as pulumi-command answers it, by running the preflight's docker CLI script against the swarm.
The difference is the preflight's time on a preview: the docker CLI calls, parsing their JSON
and fitting the stack. The swarm is the one ``DOCKER_HOST`` names, else this machine's engine
(never the stack file's ``docker:host``: point it at a swarm on purpose).

    .venv/bin/python tools/capacity-preflight-time.py              dev, 3 runs
    .venv/bin/python tools/capacity-preflight-time.py prod --runs 5

Without a reachable swarm it says so, and times the parsing and fitting of the recorded output
in tests/fixtures/capacity instead (the docker CLI calls are then not measured).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.capacity_preflight import planned_services  # noqa: E402
from components.config.loader import load_stack_config  # noqa: E402
from components.swarm.capacity import fit  # noqa: E402
from components.swarm.swarm_facts import (  # noqa: E402
    GATHER_SCRIPT,
    SwarmUnreachableError,
    parse_facts,
)
from stacktools import engine  # noqa: E402
from stacktools.__main__ import secrets_from_environment  # noqa: E402

RECORDED = REPO / "tests" / "fixtures" / "capacity" / "three-nodes.txt"
COMMAND_TIMEOUT = 300


# local.run as pulumi-command runs it (``/bin/sh -c``), on this machine's DOCKER_HOST.
run_locally = engine.run_on_this_machine(COMMAND_TIMEOUT)


def seconds(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    secrets, _ = secrets_from_environment(dict(os.environ))
    swarm = run_locally({"command": GATHER_SCRIPT})["stdout"]
    try:
        parse_facts(swarm)
    except SwarmUnreachableError as error:
        print(f"No swarm to read ({error}): timing the parse and fit of {RECORDED.name} only.")
        return time_recorded(options.stack, secrets, options.runs)
    offline, checked = [], []
    for _ in range(options.runs):
        offline.append(seconds(lambda: engine.render(options.stack, secrets=secrets)))
        checked.append(
            seconds(lambda: engine.render(options.stack, secrets=secrets, commands=run_locally))
        )
    added = [c - o for c, o in zip(checked, offline, strict=True)]
    print(
        f"{options.stack}: preview without the check {statistics.median(offline):.2f} s, with it "
        f"{statistics.median(checked):.2f} s; the check adds {statistics.median(added):.2f} s "
        f"(median of {options.runs}; DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unset')})"
    )
    return 0


def time_recorded(stack: str, secrets: dict[str, str], runs: int) -> int:
    planned: list[Any] = []
    engine.render(
        stack,
        secrets=secrets,
        program=lambda: planned.extend(planned_services(load_stack_config())),
    )
    stdout = RECORDED.read_text()
    times = [seconds(lambda: fit(parse_facts(stdout), planned)) for _ in range(max(runs, 1))]
    print(
        f"{stack}: parse and fit of the recorded swarm {statistics.median(times) * 1000:.1f} ms "
        f"(median of {runs}); add the docker CLI calls' time on the real swarm"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
