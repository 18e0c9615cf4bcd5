# shellcheck shell=bash
# Frappe's command line for the commands that take a password (new-site, restore), without the
# password on any command line. `bench` runs
#   cd sites && ../env/bin/python -m frappe.utils.bench_helper frappe <args>
# and frappe_cli runs that same module in the same Python, after replacing every argument of the
# form `@secret:<file>` by the file's content (trailing newlines stripped, as the MariaDB image
# reads its secret files). `ps` and /proc/<pid>/cmdline show the file's path only, and the option
# spellings stay Frappe's own (`--admin-password @secret:/run/secrets/admin-password`).
# Sourced (or inlined) after job-prelude.sh, which makes the bench directory the working one.
FRAPPE_CLI_PYTHON='
import runpy
import sys

PREFIX = "@secret:"


def resolve(argument):
    if not argument.startswith(PREFIX):
        return argument
    with open(argument[len(PREFIX):]) as secret:
        return secret.read().rstrip("\n")


sys.argv = ["bench_helper", "frappe", *map(resolve, sys.argv[1:])]
runpy.run_module("frappe.utils.bench_helper", run_name="__main__", alter_sys=True)
'

frappe_cli() {
  (cd sites && exec ../env/bin/python -c "$FRAPPE_CLI_PYTHON" "$@")
}
