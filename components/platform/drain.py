"""The drain of routed services: a stopping task keeps serving until nothing routes to it.

Swarm has no pre-stop hook. When it replaces a task (every rolling update) or removes one, it
takes the task's address out of its DNS, waits about 2 seconds (Docker's gossip delay) and
sends the stop signal, and the process stops at once. What routes requests to the task learns of
the change only later:

- nginx (the frontend) resolves ``backend`` through Docker's DNS and keeps an answer for
  ``valid=5s`` (components/nginx/frappe.conf.template); its list of ``websocket`` tasks is
  looked up every ``SOCKETIO_RESOLVE_INTERVAL`` (2 s, components/scripts/frontend.sh) and takes
  effect with the reload that follows;
- Traefik's Swarm provider lists the services' tasks every ``refreshSeconds`` and applies a new
  configuration at most every ``providersThrottleDuration`` (2 s, Traefik's default).

Measured on the live tier (docs/traefik.md, "Rolling updates without a failed request"):
without a drain, requests sent to the stopped task in that window fail, as timeouts and 502s
through Traefik and through nginx. So the processes Traefik or nginx route to (backend,
frontend, websocket) run under ``components/scripts/drain.sh``, which holds the stop signal
back for ``rollout.drainSeconds``: the task goes on answering whatever still reaches it, and
stops once nothing does. Their stop grace period grows by the same amount, so Swarm does not
kill them during the drain.
"""

from __future__ import annotations

from pathlib import Path

# How long each router may still send to a task Swarm has taken out of its DNS.
NGINX_RESOLVER_VALID_SECONDS = 5
TRAEFIK_SWARM_REFRESH_SECONDS = 5
TRAEFIK_PROVIDERS_THROTTLE_SECONDS = 2
# The shortest drain that outlasts both (Docker's own 2 s before the signal not counted: it is
# not documented), with a second to spare; the default leaves more room for a loaded node.
DRAIN_SECONDS_MIN = (
    max(
        NGINX_RESOLVER_VALID_SECONDS,
        TRAEFIK_SWARM_REFRESH_SECONDS + TRAEFIK_PROVIDERS_THROTTLE_SECONDS,
    )
    + 1
)
DRAIN_SECONDS = 10

DRAIN_SCRIPT = Path(__file__).parents[1] / "scripts" / "drain.sh"
# Where a routed service finds the script (a Docker config, components/swarm/configs.py).
DRAIN_TARGET = "/usr/local/lib/brandclub/drain.sh"


def drain_command(seconds: int, command: tuple[str, ...]) -> tuple[str, ...]:
    """``command`` run under the drain: the stop signal reaches it ``seconds`` late."""
    return ("bash", DRAIN_TARGET, str(seconds), *command)
