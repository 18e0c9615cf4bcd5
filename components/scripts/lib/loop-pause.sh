# shellcheck shell=bash
# The pause of a long-running loop that is its container's PID 1 (backup-loop.sh,
# restore-drill.sh). Sourced (or inlined); the loop defines stop_requested (0) and sleeper
# (empty), and its SIGTERM/SIGINT trap sets stop_requested=1 and kills "$sleeper".
#
# pause SECONDS: sleeps; returns 1 soon after a stop was requested, before or during the sleep.
# A trapped signal ends the `wait` at once; the sleep also goes in slices of at most
# PAUSE_SLICE_SECONDS, so a signal that came at a moment `wait` could not see (between the
# check and the `wait`) still stops the loop within a slice, never only after hours. Measured on
# the clock (EPOCHSECONDS), so the slices' overhead never makes the run start early. The sleeps
# close descriptors 8 and 9, where the loops hold their locks: a sleep outliving a killed loop
# must not hold its lock.
PAUSE_SLICE_SECONDS=1
pause() {
  local end=$((EPOCHSECONDS + $1)) slice
  while ((EPOCHSECONDS < end)); do
    ((stop_requested)) && return 1
    slice=$((end - EPOCHSECONDS < PAUSE_SLICE_SECONDS ? end - EPOCHSECONDS : PAUSE_SLICE_SECONDS))
    sleep "$slice" 8>&- 9>&- &
    sleeper=$!
    if ((stop_requested)); then kill "$sleeper" 2>/dev/null; fi
    wait "$sleeper"
    kill "$sleeper" 2>/dev/null
    sleeper=
  done
  ((!stop_requested))
}
