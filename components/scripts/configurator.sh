#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Configurator job (every deploy): points the bench at this stack's MariaDB and Redis services,
# tells Frappe its public URL, and owns Frappe's site-config mail fallback.
# Runs in the app image from the bench directory, as `bash -c "<this text>"`.
#
# Environment: DB_HOST, DB_PORT, REDIS_CACHE, REDIS_QUEUE, REDIS_SOCKETIO (redis:// URLs),
# SOCKETIO_PORT, HOST_NAME (https://<site>: Frappe builds URLs outside a request, e.g. in
# e-mails, from host_name), and MAIL_SERVER / MAIL_PORT where mailpit runs (dev).
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
# (components/frappe_jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"

require_env DB_HOST DB_PORT REDIS_CACHE REDIS_QUEUE REDIS_SOCKETIO SOCKETIO_PORT HOST_NAME
require_integer DB_PORT SOCKETIO_PORT
[[ $HOST_NAME =~ ^https?://[^/[:space:]]+$ ]] ||
  die "HOST_NAME must be http(s)://<host>, got '$HOST_NAME'"

# One line per global setting: set-config flag, key, variable holding the value.
# -gp stores the value as JSON (a number), -g as a string.
settings=(
  "-g db_host DB_HOST"
  "-gp db_port DB_PORT"
  "-g redis_cache REDIS_CACHE"
  "-g redis_queue REDIS_QUEUE"
  "-g redis_socketio REDIS_SOCKETIO"
  "-gp socketio_port SOCKETIO_PORT"
  "-g host_name HOST_NAME"
)
# use_ssl is written too: older Frappe versions read it for the fallback; v15 reads use_tls.
# shellcheck disable=SC2034  # read through ${!variable} below
ZERO=0 ONE=1
if [[ -n ${MAIL_SERVER:-} ]]; then
  : "${MAIL_PORT:=25}"
  require_integer MAIL_PORT
  settings+=(
    "-g mail_server MAIL_SERVER"
    "-gp mail_port MAIL_PORT"
    "-gp use_ssl ZERO"
    "-gp use_tls ZERO"
    "-gp disable_mail_smtp_authentication ONE"
  )
else
  settings+=(
    "-g mail_server MAIL_SERVER"
    "-gp disable_mail_smtp_authentication ZERO"
  )
fi

ls -1 apps >sites/apps.txt
log "apps: $(paste -sd ' ' sites/apps.txt)"
for setting in "${settings[@]}"; do
  read -r flag key variable <<<"$setting"
  # Values are not logged: a Redis URL may carry a password.
  log "set-config $flag $key"
  bench set-config "$flag" "$key" "${!variable:-}"
done
log "done"
