# shellcheck shell=bash
# shellcheck disable=SC2034,SC2317  # helpers and settings for the job scripts that source this
# Common start of every in-container job script: strict mode, logging, input checks, secret
# files, and the bench directory as working directory. A job script sources it from a
# checkout; components/frappe/jobs.py inlines it into the text a job runs (`bash -c`).
set -euo pipefail
log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$JOB" "$*"; }
die() {
  log "ERROR: $*" >&2
  exit 1
}
require_env() {
  local name missing=()
  for name in "$@"; do
    [[ -n ${!name:-} ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) || die "missing required environment variable(s): ${missing[*]}"
}
require_integer() {
  local name
  for name in "$@"; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
  done
}
# Checks docker secret files are readable and not empty without printing them: the jobs hand
# Frappe and MariaDB the file, never its content (lib/frappe-cli.sh, lib/mariadb-root.sh).
require_secret_file() {
  local file
  for file in "$@"; do
    [[ -r $file ]] || die "cannot read secret file $file"
    [[ -n $(<"$file") ]] || die "secret file $file is empty"
  done
}
# Prints a docker secret file's content; the value never reaches argv of this script or a log.
read_secret() {
  local file=$1 value
  [[ -r $file ]] || die "cannot read secret file $file"
  value=$(<"$file")
  [[ -n $value ]] || die "secret file $file is empty"
  printf '%s' "$value"
}
cd "${BENCH_DIR:-/home/frappe/frappe-bench}"
