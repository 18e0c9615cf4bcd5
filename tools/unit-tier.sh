#!/usr/bin/env bash
# The unit tier: every test but the live-swarm tier's, in parallel (pytest-xdist), one worker more
# than there are cores: the script tests spend part of their time waiting out the timeouts they
# exercise. Extra arguments go to pytest, e.g. tools/unit-tier.sh -k traefik
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -m "not live" --numprocesses "$(($(nproc) + 1))" "$@"
