#!/usr/bin/env bash
# Set up if needed, lint (Python and the GitHub workflows), and run the whole test suite under
# Pulumi's mocks (no Pulumi CLI).
# Extra arguments go to pytest, e.g. ./test.sh -k traefik
# The live-swarm tier (tests/live, a real dockerd and swarm, needs root) runs last; BRANDCLUB_LIVE=0
# skips it for a local run.
set -euo pipefail
cd "$(dirname "$0")"

./setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
tools/lint-workflows.sh
exec .venv/bin/python -m pytest "$@"
