#!/usr/bin/env bash
# The unit tier: every test but the live-swarm tier's, in parallel (pytest-xdist), one worker more
# than there are cores: the script tests spend part of their time waiting out the timeouts they
# exercise. Work stealing rather than xdist's default fixed batches: the tier mixes millisecond
# tests with a few seconds-long ones, and a worker that ends early takes over the rest of another
# worker's queue instead of idling (on 2 cores: 45 s of wall time became 38 s). Tests marked
# `waits` run first (tests/conftest.py).
# Extra arguments go to pytest, e.g. tools/unit-tier.sh -k traefik
set -euo pipefail
cd "$(dirname "$0")/.."
# Bytecode is cached even where the environment switches it off (PYTHONDONTWRITEBYTECODE, as on
# some CI images): otherwise every worker, and every Python stand-in the script tests start,
# compiles the program, the tests and pytest's rewritten assertions again (about 2 s of CPU per
# worker). The caches are the usual __pycache__ folders, which git ignores; pip wrote those of
# the installed packages already.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest -m "not live and not multinode" --numprocesses "$(($(nproc) + 1))" --dist worksteal "$@"
