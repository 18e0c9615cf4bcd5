"""The app services' Docker health checks, from the one library the boot-check job uses too.

``components/scripts/lib/health-checks.sh`` defines each check as a bash function. Every
health-checked service mounts that file as a Docker config (components/swarm/configs.py) and
its health check runs ``bash <file> <check> <args>``; the boot-check job (preflight.sh) has the
same library inlined in its script and runs the same functions against the new image before
migrate. So what makes a task healthy and what makes a release pass the boot check are one
text, and ``docker service inspect`` shows a one-line health check.
"""

from __future__ import annotations

from typing import Literal

from components.swarm.configs import HEALTH_CHECKS

HEALTH_LIBRARY = HEALTH_CHECKS.source

HealthCheck = Literal[
    "backend_healthy", "frontend_healthy", "websocket_healthy", "worker_registered"
]


def health_test(check: HealthCheck, *args: str) -> tuple[str, ...]:
    """A Docker health test (exec form) that runs ``check`` with ``args`` from the mounted
    library; the service must mount the ``health-checks`` config."""
    return ("CMD", "bash", HEALTH_CHECKS.target, check, *args)
