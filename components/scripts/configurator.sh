#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Configurator job (every deploy): points the bench at this stack's MariaDB and Redis services,
# tells Frappe its public URL, and owns Frappe's site-config mail fallback. The running release
# reads these files on every request, so they are written whole and renamed into place, and only
# when a value changes (lib/config-files.sh), never rewritten in place as `bench set-config` does.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: DB_HOST, DB_PORT, REDIS_CACHE, REDIS_QUEUE, REDIS_SOCKETIO (redis:// URLs),
# SOCKETIO_PORT, HOST_NAME (https://<site>: Frappe builds URLs outside a request, e.g. in
# e-mails, from host_name), FRAPPE_WORKERS (Frappe's `workers` map, a JSON object: the queues of
# the platform's own with their timeouts, `{}` when it has none; Frappe accepts a queue and
# knows its timeout only from there), and MAIL_SERVER / MAIL_PORT where mailpit runs (dev).
#
# Without an enabled default outgoing Email Account, Frappe v15 sends with the site config's
# mail_server, mail_port, use_tls, mail_login/mail_password, auto_email_id and
# disable_mail_smtp_authentication (frappe/email/doctype/email_account/email_account.py,
# get_account_details_from_site_config), and only when mail_server is set. mailpit takes plain
# SMTP without a login, so SMTP authentication is switched off (otherwise Frappe asks for a
# password it has not got). Without MAIL_SERVER the fallback is switched off by an empty
# mail_server, so a value from an earlier deploy cannot linger.
JOB=configurator
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe/jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/config-files.sh
source "$SCRIPT_DIR/lib/config-files.sh"

require_env DB_HOST DB_PORT REDIS_CACHE REDIS_QUEUE REDIS_SOCKETIO SOCKETIO_PORT HOST_NAME \
  FRAPPE_WORKERS
require_integer DB_PORT SOCKETIO_PORT
python3 -c 'import json, sys; sys.exit(not isinstance(json.loads(sys.argv[1]), dict))' \
  "$FRAPPE_WORKERS" 2>/dev/null || die "FRAPPE_WORKERS must be a JSON object, got '$FRAPPE_WORKERS'"
[[ $HOST_NAME =~ ^https?://[^/[:space:]]+$ ]] ||
  die "HOST_NAME must be http(s)://<host>, got '$HOST_NAME'"

# One line per global setting: type (string, or json for a number or an object), key, variable
# holding the value; the types bench set-config -g and -gp would give.
settings=(
  "string db_host DB_HOST"
  "json db_port DB_PORT"
  "string redis_cache REDIS_CACHE"
  "string redis_queue REDIS_QUEUE"
  "string redis_socketio REDIS_SOCKETIO"
  "json socketio_port SOCKETIO_PORT"
  "string host_name HOST_NAME"
  "json workers FRAPPE_WORKERS"
)
# use_ssl is written too: older Frappe versions read it for the fallback; v15 reads use_tls.
# shellcheck disable=SC2034  # read through ${!variable} below
ZERO=0 ONE=1
if [[ -n ${MAIL_SERVER:-} ]]; then
  : "${MAIL_PORT:=25}"
  require_integer MAIL_PORT
  settings+=(
    "string mail_server MAIL_SERVER"
    "json mail_port MAIL_PORT"
    "json use_ssl ZERO"
    "json use_tls ZERO"
    "json disable_mail_smtp_authentication ONE"
  )
else
  settings+=(
    "string mail_server MAIL_SERVER"
    "json disable_mail_smtp_authentication ZERO"
  )
fi

# Assigned first: a failed write then stops the job (errexit), which it would not inside log's
# arguments.
apps=$(ls -1 apps)
outcome=$(printf '%s\n' "$apps" | replace_file_if_changed sites/apps.txt)
log "apps.txt $outcome: $(paste -sd ' ' <<<"$apps")"
arguments=()
for setting in "${settings[@]}"; do
  read -r type key variable <<<"$setting"
  arguments+=("$type" "$key" "${!variable:-}")
done
outcome=$(config_update sites/common_site_config.json "${arguments[@]}")
# Keys, not values: a Redis URL may carry a password.
keys=$(printf '%s\n' "${settings[@]}" | awk '{print $2}' | paste -sd ' ')
log "common_site_config.json $outcome (keys: $keys)"
log "done"
