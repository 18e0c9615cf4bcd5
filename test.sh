#!/usr/bin/env bash
# Set up if needed, lint (Python and the GitHub workflows), run the unit tier under Pulumi's mocks
# (no Pulumi CLI; tools/unit-tier.sh, on every core), then the live-swarm tier (tests/live, a real
# dockerd and swarm, needs root) in one process, then the multi-node tier (tests/multinode, three
# dockerds as one swarm) in another. BRANDCLUB_LIVE=0 skips both for a local run. Extra arguments
# go to pytest, e.g. ./test.sh -k traefik
set -euo pipefail
cd "$(dirname "$0")"

./setup.sh --tests
.venv/bin/ruff check .
.venv/bin/ruff format --check .
tools/lint-workflows.sh
tools/unit-tier.sh "$@"
if [[ ${BRANDCLUB_LIVE:-1} == 0 ]]; then
  echo "test.sh: live-swarm and multi-node tiers switched off (BRANDCLUB_LIVE=0)"
  exit 0
fi
status=0
.venv/bin/python -m pytest -m live "$@" || status=$?
# 5: the arguments selected no live test (./test.sh -k traefik_static).
((status == 5)) && status=0
# The multi-node tier (tests/multinode): three dockerds in network namespaces as one swarm, on
# their own sockets; one run at a time on a machine.
multinode=0
flock /tmp/brandclub-multinode.lock .venv/bin/python -m pytest -m multinode tests/multinode "$@" ||
  multinode=$?
((multinode == 5)) && multinode=0
((status == 0)) && status=$multinode
exit "$status"
