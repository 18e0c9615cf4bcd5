#!/usr/bin/env bash
# Set up if needed, lint (Python and the GitHub workflows), and run the whole test suite under
# Pulumi's mocks (no Pulumi CLI).
# Extra arguments go to pytest, e.g. ./test.sh -k traefik
set -euo pipefail
cd "$(dirname "$0")"

./setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
tools/lint-workflows.sh
exec .venv/bin/python -m pytest "$@"
