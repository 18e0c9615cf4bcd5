#!/usr/bin/env bash
# drain.sh <seconds> <command> [args...]: run the command, and when the task is told to stop
# (SIGTERM or SIGINT), keep it serving <seconds> longer before passing the signal on; then wait
# for it and exit with its status.
#
# Why: Swarm has no pre-stop hook. When it replaces or removes a task it takes the task's
# address out of its DNS, waits a moment and signals the container, and the process stops at
# once; but what routes to the task learns of the change only later: nginx re-resolves
# `backend` and `websocket` when its resolver cache expires (valid=5s in the program's template),
# and Traefik's Swarm provider lists the tasks again every refreshSeconds (plus its
# providersThrottleDuration). Requests sent to the stopped task in that window fail. Serving on
# for longer than those caches closes the window: by the time the process stops, nothing sends
# it requests any more.
#
# The program runs the routed services (backend, frontend, websocket) as
#   bash <this file, a Docker config> <rollout.drainSeconds> <the service's command>
# and gives them a stop grace period of the drain plus their own (components/frappe/processes.py);
# the image's entrypoint still runs first and execs this script.
set -uo pipefail

usage() {
  echo "usage: drain.sh <seconds> <command> [args...]" >&2
  exit 2
}

[[ $# -ge 2 && $1 =~ ^[0-9]+$ ]] || usage
delay=$1
shift
name=$1

child=""
stopping=""
draining=""

drain_then_pass_on() {
  [[ -z $draining ]] || return 0
  draining=1
  echo "drain: SIG$stopping received; serving ${delay}s more before passing it on" >&2
  sleep "$delay" &
  wait $! 2>/dev/null
  echo "drain: passing SIG$stopping on to $name (pid $child)" >&2
  kill -s "$stopping" "$child" 2>/dev/null
}

on_stop() {
  [[ -z $stopping ]] || return 0
  stopping=$1
  # A signal between starting the command and learning its pid is drained just below.
  [[ -z $child ]] || drain_then_pass_on
}
# The traps first, then the command: a signal that arrives as soon as the command is up (a task
# stopped right after it started) must find them set, or bash dies of it and leaves the command
# running without anyone to wait for it.
trap 'on_stop TERM' TERM
trap 'on_stop INT' INT
"$@" &
child=$!
[[ -z $stopping ]] || drain_then_pass_on

# `wait` returns early (128 + the signal's number) when a trapped signal arrives, and the command
# may have exited while the trap ran; so wait until it is gone, then ask once more for its own
# status, which bash keeps for an exited child.
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
done
wait "$child"
