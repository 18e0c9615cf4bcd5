#!/bin/bash
# The image's entrypoint (frappe_docker resources/core/main-entrypoint.sh): link the assets
# baked into the image into the sites volume, then run the command.
set -e
ASSETS_PATH=/home/frappe/frappe-bench/sites/assets
BAKED_PATH=/home/frappe/frappe-bench/assets
rm -rf "$ASSETS_PATH"
mkdir -p "$(dirname "$ASSETS_PATH")"
ln -s "$BAKED_PATH" "$ASSETS_PATH"

# A release whose processes never open their ports (STANDIN_BROKEN=port): nginx stays down
# too, whatever runs it (the program may wrap the command). (The other processes check it
# themselves; bench commands and jobs still run.)
if [[ ${STANDIN_BROKEN:-no} == port && " $* " == *" nginx-entrypoint.sh "* ]]; then
  echo "broken build: nginx never starts" >&2
  trap 'exit 0' TERM INT
  sleep infinity &
  wait
fi
exec "$@"
