"""Stand-in for Frappe v15's ``frappe.utils.bench_helper``: the command line behind ``bench``.

``bench <args>`` runs ``cd sites && ../env/bin/python -m frappe.utils.bench_helper frappe <args>``
and the job scripts' ``frappe_cli`` runs this module in the same way; so both paths arrive here
with the working directory ``sites`` and ``sys.argv == [..., "frappe", *args]``.

Each call is recorded as ``["bench", *args]`` in the stand-ins' call log and, when asked, takes a
snapshot of every process (stand_in_support). Commands act on the real ``sites`` folder and on
the fake MariaDB server ($FAKE_DB) the way Frappe v15 does, failures included:

- ``new-site`` follows ``frappe/installer.py`` ``_new_site``: it refuses an existing site folder,
  makes the site's folders, writes ``site_config.json`` (``make_conf``) *before* it creates the
  database user and database (``setup_database``), then installs the apps. On an error it prints
  the traceback and exits 1, rolling back nothing, as ``frappe/commands/site.py`` ``new_site``
  does when stdin is not a terminal. $FAKE_NEW_SITE_FAIL picks the failure: ``create-user``
  (MariaDB refuses the user) or ``install-app`` (an app fails after user and database exist).
- ``list-apps``, ``install-app``, ``scheduler enable``, ``restore`` and ``migrate`` log in as
  Frappe would: a site whose database user or database is missing fails with MariaDB's "Access
  denied". ``migrate`` counts each site's migrations in its database's ``migrations``.

$BENCH_FAIL (words, e.g. ``all migrate``) makes a call containing them fail with
$BENCH_FAIL_STATUS (1), as the bash stand-in of tests/fake_commands.py does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from stand_in_support import AccessDeniedError, database_server, record_call, snapshot_processes

SITES = Path.cwd()
FLAGS = {"--set-default", "--force", "--verbose"}


class OperationalError(Exception):
    """pymysql.err.OperationalError, as a failed CREATE USER reports it."""


def fail(message: str, status: int = 1) -> int:
    print(message, file=sys.stderr)
    return status


def options(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Positional arguments and ``--name value`` / ``--name=value`` options, as click reads
    them: the word after an option is its value even when it starts with a dash."""
    positional: list[str] = []
    values: dict[str, list[str]] = {}
    words = iter(argv)
    for word in words:
        if word in FLAGS:
            values.setdefault(word, []).append("")
        elif word.startswith("--"):
            name, equals, value = word.partition("=")
            values.setdefault(name, []).append(value if equals else next(words))
        else:
            positional.append(word)
    return positional, values


def site_config(site: str) -> dict:
    path = SITES / site / "site_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"404 Not Found: {site} does not exist")
    return json.loads(path.read_text())


def write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=1, sort_keys=True))


def connect(site: str, state: dict) -> dict:
    """The site's database, logged in with the credentials of its site_config.json."""
    config = site_config(site)
    user = config.get("db_user") or config["db_name"]
    logins = {state["users"].get(f"{user}@{host}") for host in ("%", "localhost")}
    if config.get("db_password") not in logins or config["db_name"] not in state["databases"]:
        raise AccessDeniedError(user)
    return state["databases"][config["db_name"]]


def root_login(values: dict[str, list[str]], state: dict) -> None:
    user = values.get("--db-root-username", ["root"])[-1]
    password = values.get("--db-root-password", [""])[-1]
    if user != "root" or password != state["root_password"]:
        raise AccessDeniedError(user)


def set_config(site: str | None, argv: list[str]) -> int:
    flags = {letter for arg in argv if arg.startswith("-") for letter in arg.lstrip("-")}
    key, text = [arg for arg in argv if not arg.startswith("-")]
    value = json.loads(text) if "p" in flags else text
    path = SITES / "common_site_config.json" if "g" in flags else SITES / site / "site_config.json"
    if "g" not in flags and not path.is_file():
        return fail(f"Site {site} does not exist")
    content = json.loads(path.read_text()) if path.is_file() else {}
    write_json(path, {**content, key: value})
    return 0


def new_site(argv: list[str]) -> int:
    (site,), values = options(argv)
    site_dir = SITES / site
    if site_dir.exists() and "--force" not in values:
        print(f"Site {site} already exists, use `--force` to proceed anyway")
        return 1
    failure = os.environ.get("FAKE_NEW_SITE_FAIL", "")
    try:
        import secrets  # here only: most calls make no site, and every call is a new process

        db_name = f"_{secrets.token_hex(8)}"
        for folder in ("private/backups", "private/files", "public/files", "locks"):
            (site_dir / folder).mkdir(parents=True, exist_ok=True)
        config = {
            "db_name": db_name,
            "db_password": secrets.token_hex(8),
            "db_type": "mariadb",
            "db_user": db_name,
        }
        write_json(site_dir / "site_config.json", config)
        scope = values.get("--mariadb-user-host-login-scope", ["localhost"])[-1]
        with database_server() as state:
            root_login(values, state)
            if failure == "create-user":
                raise OperationalError(
                    1396, f"Operation CREATE USER failed for '{db_name}'@'{scope}'"
                )
            state["users"][f"{db_name}@{scope}"] = config["db_password"]
            state["databases"][db_name] = {"apps": [], "enable_scheduler": 0}
        for app in ["frappe", *values.get("--install-app", [])]:
            print(f"Installing {app}...")
            if failure == "install-app" and app != "frappe":
                raise ImportError(f"No module named '{app}'")
            with database_server() as state:
                state["databases"][db_name]["apps"].append(app)
        print("*** Scheduler is disabled ***")
        if "--set-default" in values:
            set_config(None, ["-g", "default_site", site])
            print(f"Current Site set to {site}")
    except Exception:
        import traceback  # as secrets: only where it fails

        traceback.print_exc()
        if sys.__stdin__ is not None and sys.__stdin__.isatty():
            print("Site creation failed, do you want to rollback the site? [y/N]: ")
        return 1
    return 0


def list_apps(site: str) -> int:
    with database_server() as state:
        apps = connect(site, state)["apps"]
    for app in apps:
        print(f"{app} 15.50.0 version-15")
    return 0


def install_app(site: str, apps: list[str]) -> int:
    with database_server() as state:
        installed = connect(site, state)["apps"]
        for app in apps:
            if app in installed:
                print(f"App {app} already installed")
            else:
                print(f"Installing {app}...")
                installed.append(app)
    return 0


def enable_scheduler(site: str) -> int:
    with database_server() as state:
        connect(site, state)["enable_scheduler"] = 1
    print(f"Scheduler is enabled for site {site}")
    return 0


def restore(site: str, argv: list[str]) -> int:
    (sql_file,), values = options(argv)
    with database_server() as state:
        root_login(values, state)
        database = connect(site, state)
        files = [sql_file, *values.get("--with-public-files", [])]
        database["restored_from"] = [
            Path(path).name for path in [*files, *values.get("--with-private-files", [])]
        ]
    print(f"Site {site} has been restored with files")
    return 0


def migrate(site: str) -> int:
    """As ``frappe/commands/site.py`` ``migrate``: one site after the other (``all``: every
    folder holding a site_config.json, as ``frappe.utils.get_sites``), each logged in as its own
    user; the first that fails (a half-made site: no such user) ends the command, and the sites
    after it are not migrated."""
    sites = (
        sorted(path.parent.name for path in SITES.glob("*/site_config.json"))
        if site == "all"
        else [site]
    )
    for name in sites:
        print(f"Migrating {name}", flush=True)
        with database_server() as state:
            database = connect(name, state)
            database["migrations"] = database.get("migrations", 0) + 1
    return 0


def run(args: list[str]) -> int:
    failing = os.environ.get("BENCH_FAIL")
    if failing and f" {failing} " in f" {' '.join(args)} ":
        return fail("bench: simulated failure", int(os.environ.get("BENCH_FAIL_STATUS", "1")))
    site, command = (args[1], args[2:]) if args[:1] == ["--site"] else (None, args)
    match command:
        case ["set-config", *rest]:
            return set_config(site, rest)
        case ["new-site", *rest]:
            return new_site(rest)
        case ["list-apps"] if site:
            return list_apps(site)
        case ["install-app", *apps] if site:
            return install_app(site, apps)
        case ["scheduler", "enable"] if site:
            return enable_scheduler(site)
        case ["restore", *rest] if site:
            return restore(site, rest)
        case ["migrate"] if site:
            return migrate(site)
    return fail(f"bench: the stand-in does not know {args}", 2)


def main() -> int:
    assert sys.argv[1] == "frappe", sys.argv
    args = sys.argv[2:]
    record_call("bench", args)
    snapshot_processes("bench " + (args[2] if args[:1] == ["--site"] else args[0]))
    try:
        return run(args)
    except Exception:
        # As Frappe: an uncaught error is a traceback and exit status 1.
        import traceback  # as secrets: only where it fails

        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
