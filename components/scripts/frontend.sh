#!/usr/bin/env bash
# The frontend's command: keeps nginx's list of websocket tasks current, then hands over to the
# image's own nginx-entrypoint.sh (which renders the site template and runs nginx as PID 1).
#
# Why: a socket.io polling session is a series of separate HTTP requests, and only the task
# that answered the handshake knows its session id; any other answers 400 "Session ID
# unknown". So every request of a client must reach the same websocket task. nginx 1.22 (the
# image's) can only pick a server by a hash of the client inside an `upstream` block, and it
# resolves the names in such a block once, at start; under dnsrr the websocket's name resolves
# to the task addresses, which change with every task replaced. This script resolves the name
# itself, writes the addresses as the upstream's servers (sorted, so every frontend replica
# hashes a client to the same task), and reloads nginx when they change. A reload lets
# established connections finish on the old workers.
#
# Environment:
#   SOCKETIO                  host:port of the websocket service (the template's variable)
#   SOCKETIO_SERVERS_FILE     the upstream's server list, included by the site template
#                             (/etc/nginx/conf.d/socketio-servers.inc: not *.conf, so nginx.conf
#                             does not include it a second time at http level)
#   SOCKETIO_RESOLVE_INTERVAL seconds between lookups (2)
#   NGINX_ENTRYPOINT          what runs nginx (nginx-entrypoint.sh, the image's)
#   FRONTEND_RESOLVE_ONCE=1   write the list once and exit (tests, and by hand)
set -uo pipefail

: "${SOCKETIO:?SOCKETIO (host:port of the websocket service) is required}"
: "${SOCKETIO_SERVERS_FILE:=/etc/nginx/conf.d/socketio-servers.inc}"
: "${SOCKETIO_RESOLVE_INTERVAL:=2}"
: "${NGINX_ENTRYPOINT:=nginx-entrypoint.sh}"

socketio_host=${SOCKETIO%:*}
socketio_port=${SOCKETIO##*:}

log() { printf '%s frontend: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

# The upstream's servers for the addresses the name resolves to now. No address (no websocket
# task yet, or the lookup failed): one server marked down, so nginx starts and answers 502 for
# /socket.io until a task appears, as the per-request lookup did before.
servers() {
  local addresses address
  addresses=$(getent ahostsv4 "$socketio_host" 2>/dev/null | awk '{ print $1 }' | sort -u -V)
  if [[ -z $addresses ]]; then
    echo "server 127.0.0.1:$socketio_port down;  # $socketio_host does not resolve"
    return
  fi
  for address in $addresses; do
    echo "server $address:$socketio_port;"
  done
}

# Writes the list when it differs from the file; returns 0 when it wrote, 1 when nothing
# changed (or the write failed, which is logged: the old list stays in force).
update_servers() {
  local wanted
  wanted=$(servers)
  if [[ -f $SOCKETIO_SERVERS_FILE && $(<"$SOCKETIO_SERVERS_FILE") == "$wanted" ]]; then
    return 1
  fi
  # Beside the file, then renamed over it: nginx never reads half a list.
  if ! printf '%s\n' "$wanted" >"$SOCKETIO_SERVERS_FILE.new" ||
    ! mv -f "$SOCKETIO_SERVERS_FILE.new" "$SOCKETIO_SERVERS_FILE"; then
    log "ERROR: could not write $SOCKETIO_SERVERS_FILE"
    return 1
  fi
  log "websocket tasks: $(grep -o '^server [^;]*' "$SOCKETIO_SERVERS_FILE" | cut -d' ' -f2 | paste -sd' ')"
  return 0
}

# The parent of this shell now, in $parent (/proc/PID/stat: after the command's ")" come the
# state, then the parent's pid). No command substitution: that would be a subshell's parent.
read_parent() {
  local stat
  read -r stat <"/proc/$BASHPID/stat"
  read -r _ parent _ <<<"${stat##*) }"
}

# Every change after the first list: reload nginx. A reload that fails (nginx not started yet:
# no pid to signal) is tried again at the next lookup. (A list nginx refuses is not possible:
# it is addresses only; nginx would keep its running configuration.) Ends with nginx: its
# parent is this script's own process, which exec turns into the entrypoint and then nginx;
# once that ends, the loop is someone else's child.
watch_servers() {
  local nginx_pid=$1 parent
  while sleep "$SOCKETIO_RESOLVE_INTERVAL" && read_parent && [[ $parent == "$nginx_pid" ]]; do
    if update_servers || [[ -n ${reload_pending:-} ]]; then
      if nginx -s reload 2>/dev/null; then
        reload_pending=
      else
        reload_pending=1
        log "nginx did not take the new websocket list yet; trying again"
      fi
    fi
  done
}

update_servers || true
if [[ ${FRONTEND_RESOLVE_ONCE:-} == 1 ]]; then
  exit 0
fi
watch_servers $$ &
exec "$NGINX_ENTRYPOINT"
