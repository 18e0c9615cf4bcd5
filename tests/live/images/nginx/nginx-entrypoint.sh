#!/bin/bash
# The frontend's entrypoint as the Frappe image ships it (frappe_docker
# resources/core/nginx/nginx-entrypoint.sh), rewritten for the live tier: every setting the
# template reads gets its default when unset, the template is rendered with envsubst
# (only these variables: nginx's own $host, $uri, ... stay as they are), then nginx runs in
# the foreground. A template mounted over /templates/nginx/frappe.conf.template (the
# program's Docker config) replaces the baked one without touching this script.

default() {
  local name=$1 value=$2 shown=${3:-$2}
  if [[ -z ${!name} ]]; then
    echo "$name defaulting to $shown"
    export "$name=$value"
  fi
}

default BACKEND 0.0.0.0:8000
default SOCKETIO 0.0.0.0:9000
default UPSTREAM_REAL_IP_ADDRESS 127.0.0.1
default UPSTREAM_REAL_IP_HEADER X-Forwarded-For
default UPSTREAM_REAL_IP_RECURSIVE off
# shellcheck disable=SC2016  # the literal nginx variable, expanded by nginx per request
default FRAPPE_SITE_NAME_HEADER '$host'
default PROXY_READ_TIMEOUT 120
default CLIENT_MAX_BODY_SIZE 50m

# shellcheck disable=SC2016  # envsubst's list of the variables it may replace
envsubst '${BACKEND} ${SOCKETIO} ${UPSTREAM_REAL_IP_ADDRESS} ${UPSTREAM_REAL_IP_HEADER}
  ${UPSTREAM_REAL_IP_RECURSIVE} ${FRAPPE_SITE_NAME_HEADER} ${PROXY_READ_TIMEOUT}
  ${CLIENT_MAX_BODY_SIZE}' \
  </templates/nginx/frappe.conf.template >/etc/nginx/conf.d/frappe.conf

exec nginx -g 'daemon off;'
