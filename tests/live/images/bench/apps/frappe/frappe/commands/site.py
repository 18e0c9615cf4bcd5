"""Site commands as the program's jobs and tests call them (Frappe v15 frappe/commands/site.py
and scheduler.py): new-site, install-app, list-apps, migrate, set-config, scheduler, execute,
set-admin-password.
What they print is what the real ones print where a script or test reads it."""

from __future__ import annotations

import json
import os
import sys

import frappe
from frappe import CommandError, installer
from frappe.commands import Context, UsageError, command, parse
from frappe.utils import cint

NEW_SITE_OPTIONS = {
    "--db-name": "value",
    "--db-root-username": "value",
    "--db-root-password": "value",
    "--admin-password": "value",
    "--install-app": "multiple",
    "--set-default": "flag",
    "--force": "flag",
    "--verbose": "flag",
    "--mariadb-user-host-login-scope": "value",
    "--db-type": "value",
    "--db-host": "value",
    "--db-port": "value",
}
NEW_SITE_ALIASES = {
    "--mariadb-root-username": "--db-root-username",
    "--mariadb-root-password": "--db-root-password",
}


@command("new-site")
def new_site(context: Context, argv: list[str]) -> int:
    """Frappe v15's new_site (frappe/commands/site.py) and _new_site (frappe/installer.py).
    ``STANDIN_FAIL_NEW_SITE`` makes it fail where Frappe's can: ``create-user`` (MariaDB refuses
    the database user: site_config.json is written, no user, no database) or ``install-app``
    (an app after frappe fails: user, database and frappe are in). Either way the error leaves
    as a traceback with exit status 1 and, with no terminal, nothing is rolled back."""
    options = parse(argv, NEW_SITE_OPTIONS, NEW_SITE_ALIASES)  # type: ignore[arg-type]
    if len(options.arguments) != 1:
        raise UsageError("Missing argument 'SITE'.")
    (site,) = options.arguments
    force = options.flag("--force")
    if not force and (frappe.SITES / site).exists():
        print(f"Site {site} already exists, use `--force` to proceed anyway")
        return 1
    common = frappe.common_config()
    if "db_host" not in common:
        raise CommandError("db_host missing in common_site_config.json (run the configurator)")
    admin_password = options.value("--admin-password")
    if not admin_password:
        raise CommandError("EOFError: Set Administrator password: no terminal to ask on")
    apps = ["frappe", *(common.get("install_apps") or []), *options.values("--install-app")]
    scope = options.value("--mariadb-user-host-login-scope", "localhost") or "localhost"
    root_user = options.value("--db-root-username", "root") or "root"
    root_password = options.value("--db-root-password")
    try:
        installer.make_site_dirs(site)
        installer.make_conf(site, options.value("--db-name") or installer.default_db_name(site))
        root = installer.root_login(root_user, root_password)
        try:
            installer.setup_database(site, root, scope, force)
        finally:
            root.close()
        installer.create_tables(site, admin_password)
        for app in dict.fromkeys(apps):
            installer.install_app(site, app)
        print("*** Scheduler is disabled ***")
    except Exception:
        # v15 offers to roll back only to a user at a terminal; without one the half-made site
        # (its site_config.json first of all) stays where it is.
        if sys.__stdin__ is not None and sys.__stdin__.isatty():
            root = installer.root_login(root_user, root_password)
            installer.drop_site(site, root, scope)
        raise
    if options.flag("--set-default"):
        frappe.update_config_file(frappe.SITES / "common_site_config.json", "default_site", site)
    frappe.log(f"created site {site} (apps {', '.join(dict.fromkeys(apps))})")
    return 0


@command("install-app")
def install_app(context: Context, argv: list[str]) -> int:
    options = parse(argv, {"--force": "flag"})
    status = 0
    for site in context.sites or [context.site()]:
        for app in options.arguments:
            try:
                installer.install_app(site, app, force=options.flag("--force"))
            except CommandError as error:
                print(f"An error occurred while installing {app}: {error}")
                status = 1
    return status


@command("list-apps")
def list_apps(context: Context, argv: list[str]) -> int:
    options = parse(argv, {"--format": "value"}, {"-f": "--format"})
    summary = {}
    for site in context.sites or [context.site()]:
        rows = frappe.query(
            site,
            f"SELECT app_name, app_version, git_branch FROM `{frappe.INSTALLED_APPS_TABLE}` "
            "ORDER BY idx",
        )
        summary[site] = [name for name, _, _ in rows]
        if options.value("--format", "text") == "json":
            continue
        if len(context.sites) > 1:
            print(site)
        width_name = max(len(name) for name, _, _ in rows)
        width_version = max(len(version) for _, version, _ in rows)
        for name, version, branch in rows:
            print(f"{name:{width_name}} {version:{width_version}} {branch}")
    if options.value("--format", "text") == "json":
        print(json.dumps(summary))
    return 0


@command("migrate")
def migrate(context: Context, argv: list[str]) -> int:
    """A row per site in the migrations table, naming the image's version.
    ``STANDIN_FAIL_MIGRATE=yes`` fails after the first site's message, as a broken patch would."""
    parse(argv, {"--skip-failing": "flag", "--skip-search-index": "flag"})
    for site in context.sites or [context.site()]:
        if frappe.site_config(site) is None:
            raise CommandError(f"Site {site} does not exist")
        print(f"Migrating {site}", flush=True)
        if os.environ.get("STANDIN_FAIL_MIGRATE") == "yes":
            raise CommandError(f"migrate {site}: simulated failure (STANDIN_FAIL_MIGRATE=yes)")
        frappe.query(
            site,
            f"CREATE TABLE IF NOT EXISTS `{frappe.MIGRATIONS_TABLE}` (name INT AUTO_INCREMENT "
            "PRIMARY KEY, version VARCHAR(140) NOT NULL, migrated_at DATETIME NOT NULL)",
        )
        frappe.query(
            site,
            f"INSERT INTO `{frappe.MIGRATIONS_TABLE}` (version, migrated_at) VALUES (%s, NOW())",
            (frappe.VERSION,),
        )
        run_pending_patches(site)
    return 0


def run_pending_patches(site: str) -> None:
    """v15 patch_handler.run_all: each patch of patches.txt without a ``tabPatch Log`` row runs,
    announced as run_single prints it, and gets its row (update_patch_log)."""
    frappe.query(
        site,
        f"CREATE TABLE IF NOT EXISTS `{frappe.PATCH_LOG_TABLE}` (name VARCHAR(140) PRIMARY KEY, "
        "patch TEXT, skipped INT NOT NULL DEFAULT 0)",
    )
    done = {
        patch for (patch,) in frappe.query(site, f"SELECT patch FROM `{frappe.PATCH_LOG_TABLE}`")
    }
    db_name = frappe.get_conf(site)["db_name"]
    for patch in frappe.patches():
        if patch in done:
            continue
        print(f"Executing {patch} in {site} ({db_name})", flush=True)
        installer.log_patch(site, patch)


@command("set-admin-password")
def set_admin_password(context: Context, argv: list[str]) -> int:
    """v15 set_admin_password -> set_password(context, "Administrator", ...): for each site,
    the password argument, else getpass (which, with no terminal, reads end of file: EOFError,
    a traceback); "User Administrator does not exist" and exit 1 when the site has none."""
    options = parse(argv, {"--logout-all-sessions": "flag"})
    if len(options.arguments) > 1:
        raise UsageError(f"Got unexpected extra arguments ({' '.join(options.arguments[1:])})")
    password = options.arguments[0] if options.arguments else None
    if not password:
        raise CommandError("EOFError: Administrator's password: no terminal to ask on")
    sites = context.sites
    if not sites:
        raise CommandError("SiteNotSpecifiedError: Please specify --site sitename")
    for site in sites:
        if frappe.site_config(site) is None:
            raise CommandError(f"Site {site} does not exist")
        users = frappe.query(
            site, f"SELECT name FROM `{installer.USER_TABLE}` WHERE name = 'Administrator'"
        )
        if not users:
            print("User Administrator does not exist")
            return 1
        installer.set_admin_password(site, password)
    return 0


@command("set-config")
def set_config(context: Context, argv: list[str]) -> int:
    """``[--site S] set-config [-g] [-p] KEY VALUE`` (``-gp`` too): the common config with
    ``-g``, else each given site's config; ``-p`` parses the value as JSON."""
    options = parse(
        argv, {"--global": "flag", "--parse": "flag"}, {"-g": "--global", "-p": "--parse"}
    )
    if len(options.arguments) != 2:
        raise UsageError("set-config takes KEY and VALUE")
    key, text = options.arguments
    value = json.loads(text) if options.flag("--parse") else text
    if options.flag("--global"):
        frappe.update_config_file(frappe.SITES / "common_site_config.json", key, value)
        return 0
    for site in context.sites or [context.site()]:
        if frappe.site_config(site) is None:
            raise CommandError(f"Site {site} does not exist")
        frappe.update_site_config(site, key, value)
    return 0


def scheduler_inactive(site: str) -> bool:
    """frappe.utils.scheduler.is_scheduler_inactive: maintenance, a pause, or disabled."""
    conf = frappe.get_conf(site)
    if cint(conf.get("maintenance_mode")) or cint(conf.get("pause_scheduler")):
        return True
    if cint(conf.get("disable_scheduler")):
        return True
    return not cint(frappe.get_single_value(site, "System Settings", "enable_scheduler"))


@command("scheduler")
def scheduler(context: Context, argv: list[str]) -> int:
    options = parse(argv, {"--format": "value", "--site": "value"}, {"-f": "--format"})
    if len(options.arguments) != 1 or options.arguments[0] not in (
        "pause",
        "resume",
        "disable",
        "enable",
        "status",
    ):
        raise UsageError("STATE must be one of pause, resume, disable, enable, status")
    (state,) = options.arguments
    site = options.value("--site") or context.site()
    if state == "status":
        status = "disabled" if scheduler_inactive(site) else "enabled"
        if options.value("--format", "text") == "json":
            print(json.dumps({"status": status}))
        else:
            print(f"Scheduler is {status} for site {site}")
        return 0
    if state in ("pause", "resume"):
        frappe.update_site_config(site, "pause_scheduler", 1 if state == "pause" else 0)
    else:
        frappe.set_single_value(site, "System Settings", "enable_scheduler", int(state == "enable"))
    print(f"Scheduler {state}d for site {site}")
    return 0


EXECUTABLE = {
    "frappe.utils.password.set_encrypted_password": "set_encrypted_password",
    "frappe.utils.password.get_decrypted_password": "get_decrypted_password",
}


@command("execute")
def execute(context: Context, argv: list[str]) -> int:
    """``bench --site S execute METHOD --args '[...]'`` for the few methods the tests use;
    prints the result as JSON, as bench does."""
    from frappe.utils import password

    options = parse(argv, {"--args": "value", "--kwargs": "value"})
    if len(options.arguments) != 1 or options.arguments[0] not in EXECUTABLE:
        raise CommandError(f"execute: the stand-in runs only {', '.join(EXECUTABLE)}")
    function = getattr(password, EXECUTABLE[options.arguments[0]])
    args = json.loads(options.value("--args") or "[]")
    kwargs = json.loads(options.value("--kwargs") or "{}")
    result = function(context.site(), *args, **kwargs)
    if result is not None:
        print(json.dumps(result))
    return 0
