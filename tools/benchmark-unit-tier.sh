#!/usr/bin/env bash
# Time the unit tier (tools/unit-tier.sh) on this machine: wall time, and the CPU time (user +
# system) of it and every process it started, with the load average before and after, since
# both depend on what else runs on the machine. A measurement, never a test.
#   tools/benchmark-unit-tier.sh              one run
#   BENCHMARK_RUNS=3 tools/benchmark-unit-tier.sh -k traefik   three runs; arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
./setup.sh >/dev/null
runs=${BENCHMARK_RUNS:-1}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "BENCHMARK_RUNS must be a whole number" >&2; exit 2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
output=$(mktemp)
timing=$(mktemp)
trap 'rm -f "$output" "$timing"' EXIT
TIMEFORMAT='%R %U %S'
status=0
for ((run = 1; run <= runs; run++)); do
  before=$(load)
  { time tools/unit-tier.sh -q -p no:cacheprovider "$@" >"$output" 2>&1; } 2>"$timing" \
    || status=$?
  read -r wall user sys <"$timing"
  printf 'run %d: %s\n' "$run" "$(tail -n 1 "$output")"
  printf 'unit tier: %s s wall, %s s CPU (user %s + sys %s) on %s cores; load average %s before, %s after\n' \
    "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')" "$user" "$sys" \
    "$(nproc)" "$before" "$(load)"
done
exit "$status"
