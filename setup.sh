#!/usr/bin/env bash
# Create .venv (the virtualenv Pulumi.yaml names) and install the pinned dependencies; with
# --tests (test.sh passes it) also the tools the unit tier runs besides Python: nginx, for
# `nginx -t` on the rendered site (tests/components/test_nginx_template.py).
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

# nginx as the image has it: Debian's package, its binary unpacked into build/tools/nginx
# (git-ignored) rather than installed, so no root is needed and no nginx service starts on
# port 80, where the live tier's Traefik listens. An nginx already on PATH is used as it is.
nginx_dir=build/tools/nginx
if [[ ${1:-} == --tests ]] && ! command -v nginx >/dev/null && [[ ! -x $nginx_dir/usr/sbin/nginx ]]; then
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "setup.sh: no apt-get/dpkg-deb here; install nginx yourself or its test is skipped" >&2
  else
    download=$(mktemp -d)
    # A machine whose package lists were never fetched knows no nginx yet: root fetches them.
    if ! (cd "$download" && apt-get download -qq nginx 2>/dev/null) && ((EUID == 0)); then
      apt-get update -qq && (cd "$download" && apt-get download -qq nginx 2>/dev/null)
    fi
    if compgen -G "$download/nginx_*.deb" >/dev/null; then
      rm -rf "$nginx_dir" && mkdir -p "$nginx_dir"
      dpkg-deb -x "$download"/nginx_*.deb "$nginx_dir"
      echo "setup.sh: $("$nginx_dir/usr/sbin/nginx" -v 2>&1) in $nginx_dir"
    else
      echo "setup.sh: could not download Debian's nginx; its test is skipped" >&2
    fi
    rm -rf "$download"
  fi
fi
