# shellcheck shell=bash
# The `mariadb` client logged in with a password kept in a file (a docker secret). The password
# reaches the client through --defaults-extra-file, a pipe only the client reads: never an
# argument (`ps`, /proc/<pid>/cmdline) nor the environment (MYSQL_PWD is readable in
# /proc/<pid>/environ). Sourced (or inlined) after job-prelude.sh.

# Prints a [client] option group with the password in file $1, quoted for MariaDB's option-file
# parser: inside double quotes `#` is no comment, and \\, \" and \n are its escapes.
client_password_option() {
  local value
  value=$(<"$1")
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  printf '[client]\npassword="%s"\n' "$value"
}

# mariadb_with_password_file FILE [mariadb options...]: runs the SQL on stdin.
# --defaults-extra-file must be the client's first option.
mariadb_with_password_file() {
  local file=$1
  shift
  mariadb --defaults-extra-file=<(client_password_option "$file") "$@"
}
