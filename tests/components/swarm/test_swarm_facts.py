"""Reading the swarm for the capacity preflight (components/swarm/swarm_facts.py): the gathering
script against a stand-in docker CLI, and its recorded output parsed into nodes and tasks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.swarm.capacity import NANO_CPUS, Reservation
from components.swarm.swarm_facts import GATHER_SCRIPT, SwarmUnreachableError, parse_facts
from harness import FIXTURES

GIB = 1024**3
MIB = 1024**2


def recorded(name: str) -> str:
    return (FIXTURES / "capacity" / f"{name}.txt").read_text()


def test_nodes_and_running_tasks_of_a_recorded_swarm() -> None:
    facts = parse_facts(recorded("three-nodes"))
    nodes = {node.hostname: node for node in facts.nodes}
    assert sorted(nodes) == ["swarm-1", "swarm-2", "swarm-3", "swarm-4"]
    data = nodes["swarm-1"]
    assert (data.role, data.labels, data.os, data.arch) == (
        "manager",
        {"brandclub.data": "true"},
        "linux",
        "x86_64",
    )
    assert data.capacity == Reservation(4 * NANO_CPUS, 8 * GIB - 311 * MIB)
    assert data.schedulable and not nodes["swarm-4"].schedulable  # drained
    by_node = {node.id: node.hostname for node in facts.nodes}
    placed = sorted((task.service, by_node[task.node_id]) for task in facts.tasks)
    # The pending task (no node yet) holds nothing anywhere.
    assert placed == [
        ("brandclub-prod_backend", "swarm-1"),
        ("brandclub-prod_backend", "swarm-2"),
        ("brandclub-staging_backend", "swarm-2"),
        ("brandclub-staging_backend", "swarm-3"),
        ("monitoring_prometheus", "swarm-1"),
        ("monitoring_prometheus", "swarm-4"),
    ]
    prometheus = next(t for t in facts.tasks if t.service == "monitoring_prometheus")
    assert prometheus.reservation == Reservation(NANO_CPUS, 2 * GIB)


def test_an_empty_swarm() -> None:
    facts = parse_facts(recorded("one-node"))
    assert [node.hostname for node in facts.nodes] == ["laptop"]
    assert facts.tasks == ()


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        (
            "### nodes\n### unreachable\nError response from daemon: This node is not a swarm "
            "manager.\n",
            "Error response from daemon: This node is not a swarm manager.",
        ),
        ("### unreachable\n", "the docker CLI failed without a word"),
        ("", "the docker CLI's output has no nodes, services, tasks"),
        ("### nodes\n[{]\n### services\n[]\n### tasks\n[]\n", "unexpected output"),
    ],
)
def test_what_is_not_a_swarm_says_why(stdout: str, reason: str) -> None:
    with pytest.raises(SwarmUnreachableError, match=reason.replace(".", r"\.")):
        parse_facts(stdout)


FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$1 $2" in
  "node ls") [ -n "${NO_SWARM:-}" ] && { echo "$NO_SWARM" >&2; exit 1; }; echo n1; echo n2;;
  "node inspect") echo '[{"ID": "n1"}, {"ID": "n2"}]';;
  "service ls") ;;
  "node ps") echo t1;;
  "inspect --type") echo '[{"ID": "t1"}]';;
  *) echo "unexpected: $*" >&2; exit 3;;
esac
"""


def gather(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    calls = tmp_path / "calls"
    result = subprocess.run(
        ["/bin/sh", "-c", GATHER_SCRIPT],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, calls.read_text().splitlines()


def test_the_script_reads_every_node_service_and_running_task(tmp_path: Path) -> None:
    result, calls = gather(tmp_path)
    assert result.returncode == 0
    assert calls == [
        "node ls -q",
        "node inspect n1 n2",
        "service ls -q",
        "node ps -q --no-trunc --filter desired-state=running n1 n2",
        "inspect --type task t1",
    ]
    # Each section starts on a line of its own, after an empty one.
    assert result.stdout.splitlines() == [
        "",
        "### nodes",
        '[{"ID": "n1"}, {"ID": "n2"}]',
        "",
        "### services",
        "[]",
        "",
        "### tasks",
        '[{"ID": "t1"}]',
    ]


def test_the_script_reports_a_failed_docker_command_and_stops(tmp_path: Path) -> None:
    result, calls = gather(tmp_path, NO_SWARM="Error response from daemon: not a swarm manager")
    assert result.returncode == 0
    assert calls == ["node ls -q"]
    with pytest.raises(SwarmUnreachableError, match="not a swarm manager"):
        parse_facts(result.stdout)
