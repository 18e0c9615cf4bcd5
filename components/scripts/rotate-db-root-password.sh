#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Rotate-db-root-password job: gives every MariaDB root account the new password. Safe to run
# again: when the new password already logs in, it changes nothing.
# Runs in the app image (which has the `mariadb` client), as `bash -c "<this text>"`.
#
# Environment: DB_HOST, DB_PORT, DB_ROOT_PASSWORD_FILE (the new password),
# DB_ROOT_PASSWORD_PREVIOUS_FILE (the one in use until now); both docker secret files.
# Passwords reach `mariadb` through --defaults-extra-file (a pipe, lib/mariadb-root.sh) and, the
# new one, in SQL on its stdin: never in an argument list, a process environment or a log.
JOB=rotate-db-root-password
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe/jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"
# shellcheck source=lib/mariadb-root.sh
source "$SCRIPT_DIR/lib/mariadb-root.sh"

require_env DB_HOST DB_PORT DB_ROOT_PASSWORD_FILE DB_ROOT_PASSWORD_PREVIOUS_FILE
require_integer DB_PORT

require_secret_file "$DB_ROOT_PASSWORD_PREVIOUS_FILE"
# Only SET PASSWORD needs the new password itself, on mariadb's stdin.
new_password=$(read_secret "$DB_ROOT_PASSWORD_FILE")
new=$DB_ROOT_PASSWORD_FILE
previous=$DB_ROOT_PASSWORD_PREVIOUS_FILE

# Runs the SQL on stdin as root with the password in file $1; extra arguments go to mariadb.
as_root() {
  local password_file=$1
  shift
  mariadb_with_password_file "$password_file" --host="$DB_HOST" --port="$DB_PORT" --user=root "$@"
}

logs_in() { as_root "$1" --batch --skip-column-names <<<"SELECT 1;" >/dev/null 2>&1; }

# A quoted SQL string literal: backslashes and single quotes escaped.
sql_string() {
  local value=${1//\\/\\\\}
  printf "'%s'" "${value//\'/\'\'}"
}

if logs_in "$new"; then
  log "root on $DB_HOST:$DB_PORT already has the new password, already rotated"
  exit 0
fi
logs_in "$previous" ||
  die "neither the new nor the previous root password logs in to $DB_HOST:$DB_PORT"

hosts=$(as_root "$previous" --batch --skip-column-names \
  <<<"SELECT Host FROM mysql.user WHERE User = 'root';") ||
  die "could not list the root accounts"
[[ -n $hosts ]] || die "no root accounts found in mysql.user"

statements=
while IFS= read -r host; do
  [[ -n $host ]] || continue
  log "setting the new password for 'root'@'$host'"
  statements+="SET PASSWORD FOR 'root'@$(sql_string "$host") = PASSWORD($(sql_string "$new_password"));"$'\n'
done <<<"$hosts"
as_root "$previous" <<<"$statements" || die "changing the root password failed"

logs_in "$new" ||
  die "the new root password does not log in after the change: check the root accounts by hand"
log "root password rotated on $DB_HOST:$DB_PORT"
