#!/usr/bin/env bash
# Create .venv (the virtualenv Pulumi.yaml names) and install the pinned dependencies.
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: Python 3.11 or newer is needed ($python is $("$python" --version 2>&1))" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

# Debian's age, which the backup scripts encrypt off-site copies with (as in the app image): the
# unit tier runs them with the real binary. As root, or through sudo where it asks no password
# (a hosted CI runner); otherwise say what to install.
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  if ((EUID == 0)); then
    as_root=()
  elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "setup.sh: the tests need age (Debian's package age); install it as root: apt-get install age" >&2
    exit 1
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age >/dev/null
fi
echo "setup.sh: .venv ready ($(.venv/bin/python --version))"
