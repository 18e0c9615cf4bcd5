"""The app services' Docker health checks, built from the one library the preflight job uses too.

``components/scripts/lib/health-checks.sh`` defines each check as a bash function. A service's
health check runs ``bash -c "<library>; <check> <args>"``; the preflight job sources the same
library and runs the same functions against the new image before a single service changes. So
what makes a task healthy and what makes a release pass preflight are one text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

HEALTH_LIBRARY = Path(__file__).parent / "scripts" / "lib" / "health-checks.sh"

HealthCheck = Literal[
    "backend_healthy", "frontend_healthy", "websocket_healthy", "worker_registered"
]


def health_test(check: HealthCheck, *args: str) -> tuple[str, ...]:
    """A Docker health test (exec form) that runs ``check`` with ``args`` from the library."""
    library = HEALTH_LIBRARY.read_text().rstrip("\n")
    # bash -c TEXT NAME ARGS...: NAME becomes $0 (shown in errors), ARGS the check's "$@".
    return ("CMD", "bash", "-c", f'{library}\n{check} "$@"', check, *args)
