"""The swarm's nodes and running tasks, read at preview time for the capacity preflight.

One pulumi-command ``local.run`` invoke (it runs on every preview and up, unlike a Command
resource) runs the docker CLI against the swarm the docker provider targets (``docker:host``, as
the site jobs do): ``docker node inspect`` of every node, ``docker service inspect`` of every
service (for their names) and ``docker inspect`` of every task Swarm wants running, each as JSON
in a section of its own. The script always exits 0; when a docker command fails it prints an
``unreachable`` section with the CLI's own error instead, so the program can say why nothing was
checked rather than fail on a failed invoke. :func:`parse_facts` is pure and reads recorded
output as well (tests/fixtures/capacity).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pulumi_command as command

from components.swarm.capacity import Node, Reservation, RunningTask, SwarmFacts

SECTION = "### "
UNREACHABLE = "unreachable"
# Each docker command gets this long: an ssh:// host that does not answer must not hold a
# preview for the TCP timeout.
DOCKER_TIMEOUT_SECONDS = 60
# The reason shown comes from the end of the CLI's error output; a page of it helps no one.
REASON_MAX = 400

GATHER_SCRIPT = f"""\
set -u
docker_cli() {{
  if command -v timeout >/dev/null 2>&1; then
    timeout {DOCKER_TIMEOUT_SECONDS} docker "$@"
  else
    docker "$@"
  fi
}}
# Each section on a line of its own, whether or not the JSON before it ended its line.
mark() {{ printf '\\n{SECTION}%s\\n' "$1"; }}
gather() {{
  set -e
  nodes=$(docker_cli node ls -q)
  mark nodes
  docker_cli node inspect $nodes
  services=$(docker_cli service ls -q)
  mark services
  if [ -n "$services" ]; then docker_cli service inspect $services; else echo '[]'; fi
  tasks=$(docker_cli node ps -q --no-trunc --filter desired-state=running $nodes)
  mark tasks
  if [ -n "$tasks" ]; then docker_cli inspect --type task $tasks; else echo '[]'; fi
}}
errors=$(mktemp)
# Not in an if: a tested command runs without set -e, and a failed docker command must stop it.
(gather) 2>"$errors"
status=$?
if [ "$status" -ne 0 ]; then
  mark {UNREACHABLE}
  cat "$errors"
  if [ "$status" -eq 124 ]; then echo 'no answer within {DOCKER_TIMEOUT_SECONDS} s'; fi
fi
rm -f "$errors"
exit 0
"""


class SwarmUnreachableError(Exception):
    """The swarm could not be read; the message says why."""


def read_swarm(docker_host: str | None) -> SwarmFacts:
    """The swarm's facts, read now with the docker CLI; :class:`SwarmUnreachableError` when it
    cannot be read."""
    where = docker_host or "this machine's Docker engine"
    try:
        result = command.local.run(
            command=GATHER_SCRIPT,
            environment={"DOCKER_HOST": docker_host} if docker_host else None,
            # The JSON is for the check, not for the preview's log.
            logging=command.local.Logging.NONE,
        )
    # Any failed invoke (no command plugin, a command that could not start) read nothing.
    except Exception as error:
        raise SwarmUnreachableError(f"{where}: {_first_line(str(error))}") from error
    try:
        return parse_facts(result.stdout or "")
    except SwarmUnreachableError as error:
        raise SwarmUnreachableError(f"{where}: {error}") from error


# How the SDK words a failed invoke around the provider's own reason.
_INVOKE_FAILED = re.compile(r"invoke of \S+ failed: (?P<reason>.*?)(?: \(\w*\))?")


def _first_line(text: str) -> str:
    line = (text.strip().splitlines() or ["no output"])[0]
    match = _INVOKE_FAILED.fullmatch(line)
    return (match["reason"] if match else line)[:REASON_MAX]


def sections(stdout: str) -> dict[str, str]:
    """The gathering script's output by section name."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        if line.startswith(SECTION):
            current = found.setdefault(line.removeprefix(SECTION).strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def parse_facts(stdout: str) -> SwarmFacts:
    """Nodes and running tasks from the gathering script's output."""
    parts = sections(stdout)
    if UNREACHABLE in parts:
        reason = " ".join(parts[UNREACHABLE].split()) or "the docker CLI failed without a word"
        raise SwarmUnreachableError(reason[-REASON_MAX:])
    missing = [name for name in ("nodes", "services", "tasks") if name not in parts]
    if missing:
        raise SwarmUnreachableError(f"the docker CLI's output has no {', '.join(missing)}")
    try:
        nodes = [_node(item) for item in json.loads(parts["nodes"])]
        names = {item["ID"]: item["Spec"]["Name"] for item in json.loads(parts["services"])}
        tasks = [_task(item, names) for item in json.loads(parts["tasks"])]
    except (ValueError, KeyError, TypeError) as error:
        raise SwarmUnreachableError(f"unexpected output from the docker CLI: {error!r}") from error
    return SwarmFacts(tuple(nodes), tuple(task for task in tasks if task is not None))


def _reservation(resources: Mapping[str, Any] | None) -> Reservation:
    values = resources or {}
    return Reservation(int(values.get("NanoCPUs") or 0), int(values.get("MemoryBytes") or 0))


def _node(item: Mapping[str, Any]) -> Node:
    description, spec = item["Description"], item["Spec"]
    platform = description.get("Platform") or {}
    return Node(
        id=item["ID"],
        hostname=description["Hostname"],
        role=spec["Role"],
        capacity=_reservation(description.get("Resources")),
        labels=dict(spec.get("Labels") or {}),
        engine_labels=dict((description.get("Engine") or {}).get("Labels") or {}),
        os=platform.get("OS", ""),
        arch=platform.get("Architecture", ""),
        schedulable=spec.get("Availability") == "active" and item["Status"]["State"] == "ready",
    )


def _task(item: Mapping[str, Any], services: Mapping[str, str]) -> RunningTask | None:
    """A task Swarm has placed and wants running; None for any other (one not yet placed holds
    nothing anywhere)."""
    node = item.get("NodeID")
    if item.get("DesiredState") != "running" or not node:
        return None
    resources = (item.get("Spec") or {}).get("Resources") or {}
    service = services.get(item["ServiceID"], item["ServiceID"])
    return RunningTask(service, node, _reservation(resources.get("Reservations")))
