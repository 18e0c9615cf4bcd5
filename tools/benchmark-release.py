#!/usr/bin/env python3
"""How long a release takes on this machine's swarm, and where the time goes: a measurement,
never a test.

It deploys dev as the live tier does (real Docker, the tier's images, two replicas of every
routed service, Traefik with a local Pebble), then rolls the app from one image tag to the other
in the program's order (the site jobs whose inputs changed, then the services layer by layer,
as ``pulumi up`` runs them: tests/live/rollout.py), ``--releases`` times, alternating v1 and v2,
under a bounded request loop through the program's frontend. For each release it prints the
whole time, each job's, each layer's and each service's update (Swarm's own UpdateStatus
start and end), and the loop's requests sent and failed.

    sudo .venv/bin/python tools/benchmark-release.py                    the tier's timings
    sudo .venv/bin/python tools/benchmark-release.py --timings prod     Pulumi.prod.yaml's
    sudo .venv/bin/python tools/benchmark-release.py --releases 3 --keep

``--timings tier`` uses the live tier's health-check and rollout settings (2 s checks, 10 s
monitor); ``--timings prod`` the health-check and rollout sections of Pulumi.prod.yaml, what an
operator's release waits for. Needs root and Docker, like the live tier; the figures go to
build/release-benchmark.json too. It removes what it deployed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stacktools.engine import stack_file_config  # noqa: E402
from tests.live.deployment import DevDeployment  # noqa: E402
from tests.live.images.build import build_all  # noqa: E402
from tests.live.pebble import Pebble  # noqa: E402
from tests.live.rendering import PrivateAcme  # noqa: E402
from tests.live.swarm import Daemon, docker, gateway_address, host_address  # noqa: E402

REPORT = REPO / "build" / "release-benchmark.json"
# Bounded: at most this many requests, one every LOOP_INTERVAL s, each given LOOP_TIMEOUT s.
LOOP_COUNT = 6000
LOOP_INTERVAL = 0.05
LOOP_TIMEOUT = 5.0
TIMED_SECTIONS = ("brandclub:healthcheck", "brandclub:rollout")


def timings(choice: str) -> dict[str, Any]:
    """The settings over the tier's overlay: none for the tier's own, else the stack file's
    health-check and rollout sections (the converge timeout stays the tier's)."""
    if choice == "tier":
        return {}
    config = stack_file_config(choice)
    return {key: config[key] for key in TIMED_SECTIONS if key in config}


def update_seconds(service: str) -> float | None:
    """Swarm's own duration of the service's last update (its UpdateStatus), if it has one."""
    raw = docker("service", "inspect", "--format", "{{json .UpdateStatus}}", service)
    status = json.loads(raw) if raw and raw != "null" else None
    if not status or not status.get("CompletedAt"):
        return None

    def parsed(stamp: str) -> datetime:
        # Docker's nanoseconds: Python reads microseconds.
        head, _, rest = stamp.partition(".")
        fraction = "".join(c for c in rest if c.isdigit())[:6]
        return datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00")

    return round((parsed(status["CompletedAt"]) - parsed(status["StartedAt"])).total_seconds(), 1)


def release(dev: DevDeployment, tag: str) -> dict[str, Any]:
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    time.sleep(2)  # requests flow before the release starts
    rollout = dev.rollout(tag)
    time.sleep(2)
    requests = loop.finish()
    report = rollout.report()
    report["serviceSeconds"] = {
        name.removeprefix(f"{dev.app_stack}_"): update_seconds(name)
        for layer in rollout.layers
        for name in layer.changed
    }
    report["requests"] = {key: requests[key] for key in ("sent", "failed", "errors")}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timings", default="tier", choices=("tier", "dev", "staging", "prod"))
    parser.add_argument("--releases", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the stacks running")
    options = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root, like the live tier (it may start dockerd)")
    # A stopped benchmark still removes what it started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    daemon = Daemon.ensure()
    build_all()
    pebble = Pebble(Path(tempfile.mkdtemp(prefix="pebble-")), gateway_address())
    pebble.start()
    dev = DevDeployment(
        Path(tempfile.mkdtemp(prefix="release-benchmark-")),
        PrivateAcme(pebble.directory_url, pebble.ca_certificate),
        host_address=host_address(),
        pebble_root=pebble.root_file,
        settings=timings(options.timings),
    )
    results: dict[str, Any] = {"timings": options.timings, "settings": dev.settings}
    try:
        started = time.monotonic()
        dev.up("v1")
        results["upSeconds"] = round(time.monotonic() - started, 1)
        results["releases"] = [
            release(dev, "v2" if index % 2 == 0 else "v1") for index in range(options.releases)
        ]
    finally:
        if not options.keep:
            dev.down()
            pebble.stop()
            if daemon.process is not None:
                daemon.stop()
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    for one in results["releases"]:
        layers = ", ".join(f"{layer['seconds']}s" for layer in one["layers"])
        print(
            f"{one['tag']}: {one['seconds']}s (ok: {one['ok']}); jobs {one['jobSeconds']}; "
            f"layers {layers}; services {one['serviceSeconds']}; "
            f"requests {one['requests']['sent']} sent, {one['requests']['failed']} failed"
        )
    clean = all(one["ok"] and not one["requests"]["failed"] for one in results["releases"])
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
