"""The drain of routed services (components/platform/drain.py, components/scripts/drain.sh):
the script holds the stop signal back for the configured seconds and then passes it on; its
bounds follow from the caches it must outlast; the configuration refuses a drain too short to
help.

What the drain buys on a real swarm (no failed request through Traefik or nginx while their
tasks are replaced) is measured by the live tier (tests/live/test_live_app.py)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from components.config.loader import ConfigError
from components.platform.drain import (
    DRAIN_SCRIPT,
    DRAIN_SECONDS,
    DRAIN_SECONDS_MIN,
    NGINX_RESOLVER_VALID_SECONDS,
    TRAEFIK_PROVIDERS_THROTTLE_SECONDS,
    TRAEFIK_SWARM_REFRESH_SECONDS,
    drain_command,
)
from harness import REPO, render, render_error

# A process that reports when it gets a signal, then exits with 7 (or runs until killed).
CHILD = """
import signal, sys, time
started = time.monotonic()
def stop(number, frame):
    print(f"{signal.Signals(number).name} {time.monotonic() - started:.2f}", flush=True)
    sys.exit(7)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _default_signals() -> None:
    # As a container's first process gets them: a test run started in the background of a
    # shell inherits SIGINT ignored, and bash can neither trap nor reset a signal ignored on entry.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*command: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        ["bash", str(DRAIN_SCRIPT), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,
    )
    assert process.stdout is not None
    if command[1:2] == (sys.executable,):
        assert process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.waits
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_command_keeps_running_for_the_drain_then_gets_the_signal(
    stop: signal.Signals,
) -> None:
    process = _start("1", sys.executable, "-c", CHILD)
    signalled = time.monotonic()
    process.send_signal(stop)
    # Still serving during the drain.
    time.sleep(0.5)
    assert process.poll() is None, "stopped before the drain was over"
    out, err = process.communicate(timeout=10)
    waited = time.monotonic() - signalled
    assert process.returncode == 7, (out, err)  # the command's own exit status
    assert out.splitlines()[-1].startswith(stop.name), out
    assert 1.0 <= waited < 3.0, waited
    assert f"SIG{stop.name.removeprefix('SIG')} received; serving 1s more" in err


@pytest.mark.waits
def test_a_second_signal_neither_cuts_the_drain_short_nor_is_passed_twice() -> None:
    process = _start("1", sys.executable, "-c", CHILD)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert time.monotonic() - signalled >= 1.0
    assert [line for line in out.splitlines() if line.startswith("SIGTERM")] != []
    assert err.count("passing SIGTERM on") == 1, err


def test_a_command_that_ends_by_itself_ends_the_drain_at_once() -> None:
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(DRAIN_SCRIPT), "30", "bash", "-c", "exit 5"], capture_output=True, timeout=10
    )
    assert result.returncode == 5
    assert time.monotonic() - started < 5


@pytest.mark.waits
def test_a_command_that_exits_during_the_drain_gives_the_script_its_own_status() -> None:
    # The command exits by itself (7) while the drain still waits: the script must not report
    # the status of its interrupted `wait` (143) instead of the command's.
    process = subprocess.Popen(
        ["bash", str(DRAIN_SCRIPT), "1", "bash", "-c", "echo ready; sleep 0.5; exit 7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 7, (out, err)
    assert "SIGTERM received" in err


def test_zero_seconds_passes_the_signal_on_at_once() -> None:
    process = _start("0", sys.executable, "-c", CHILD)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 7 and time.monotonic() - signalled < 1.0, out


@pytest.mark.parametrize("arguments", [[], ["10"], ["ten", "true"], ["-1", "true"]])
def test_usage(arguments: list[str]) -> None:
    result = subprocess.run(
        ["bash", str(DRAIN_SCRIPT), *arguments], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 2
    assert "usage: drain.sh <seconds> <command>" in result.stderr


def test_the_command_is_the_script_then_the_seconds_then_the_services_own() -> None:
    assert drain_command(12, ("nginx-entrypoint.sh",)) == (
        "bash",
        "/usr/local/lib/brandclub/drain.sh",
        "12",
        "nginx-entrypoint.sh",
    )


# --- the bounds -------------------------------------------------------------------------------


def test_the_minimum_outlasts_every_cache_it_is_derived_from() -> None:
    traefik = TRAEFIK_SWARM_REFRESH_SECONDS + TRAEFIK_PROVIDERS_THROTTLE_SECONDS
    assert max(NGINX_RESOLVER_VALID_SECONDS, traefik) < DRAIN_SECONDS_MIN
    assert DRAIN_SECONDS >= DRAIN_SECONDS_MIN


def test_the_caches_are_the_ones_the_program_configures() -> None:
    template = (REPO / "components" / "nginx" / "frappe.conf.template").read_text()
    assert re.findall(r"^\s*resolver .* valid=(\d+)s", template, re.M) == [
        str(NGINX_RESOLVER_VALID_SECONDS)
    ]
    args = render("prod").service("traefik", "traefik").container["args"]
    assert f"--providers.swarm.refreshSeconds={TRAEFIK_SWARM_REFRESH_SECONDS}s" in args
    # Traefik's own default throttle: the program does not change it.
    assert not [a for a in args if "providersThrottleDuration" in a]


@pytest.mark.parametrize("seconds", [1, DRAIN_SECONDS_MIN - 1])
def test_a_drain_too_short_to_help_is_refused(seconds: int) -> None:
    error, registered = render_error("dev", {"brandclub:rollout": {"drainSeconds": seconds}})
    assert isinstance(error, ConfigError) and registered == []
    [problem] = error.problems
    assert problem.key == "brandclub:rollout.drainSeconds"
    assert f"0 (no drain) or at least {DRAIN_SECONDS_MIN}" in problem.expected


@pytest.mark.parametrize("value", [301, -1, "10", 10.5])
def test_drain_seconds_is_a_whole_number_of_seconds_up_to_five_minutes(value: object) -> None:
    error, registered = render_error("dev", {"brandclub:rollout": {"drainSeconds": value}})
    assert isinstance(error, ConfigError) and registered == []
    assert [p.key for p in error.problems] == ["brandclub:rollout.drainSeconds"]


@pytest.mark.parametrize("seconds", [0, DRAIN_SECONDS_MIN, 300])
def test_accepted_drains(seconds: int) -> None:
    assert render("dev", {"brandclub:rollout": {"drainSeconds": seconds}}).resources
