#!/usr/bin/env bash
# Wall time of the unit tier (tools/unit-tier.sh) on this machine; extra arguments go to pytest.
# A measurement, never a test: the time depends on the machine and on what else runs on it.
set -euo pipefail
cd "$(dirname "$0")/.."
./setup.sh >/dev/null
start=$(date +%s%N)
status=0
tools/unit-tier.sh -q -p no:cacheprovider "$@" | tail -n 1 || status=$?
end=$(date +%s%N)
elapsed=$(((end - start) / 1000000))
printf 'unit tier: %d.%03d s wall on %s cores (load average %s)\n' \
  $((elapsed / 1000)) $((elapsed % 1000)) "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
