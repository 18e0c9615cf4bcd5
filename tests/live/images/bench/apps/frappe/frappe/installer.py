"""What ``bench new-site`` does, in Frappe v15's order (frappe/installer.py ``_new_site``,
``install_db``, ``make_conf``, and the MariaDB ``setup_database``): the site's folders, then its
``site_config.json`` (written first), then the database user and database as root, then the
tables and the apps. Nothing is rolled back when a later step fails."""

from __future__ import annotations

import hashlib
import os
import shutil

import frappe
from frappe import CommandError

ADMIN_HASH_ROUNDS = 29000
AUTH_TABLE = "__Auth"
USER_TABLE = "tabUser"
SESSIONS_TABLE = "tabSessions"

TABLES = (
    f"CREATE TABLE `{AUTH_TABLE}` (doctype VARCHAR(140) NOT NULL, name VARCHAR(255) NOT NULL, "
    "fieldname VARCHAR(140) NOT NULL, password TEXT NOT NULL, encrypted INT NOT NULL DEFAULT 0, "
    "PRIMARY KEY (doctype, name, fieldname))",
    f"CREATE TABLE `{USER_TABLE}` (name VARCHAR(255) PRIMARY KEY, first_name VARCHAR(140), "
    "user_type VARCHAR(140) NOT NULL, enabled INT NOT NULL DEFAULT 1)",
    f"CREATE TABLE `{SESSIONS_TABLE}` (sid VARCHAR(140) PRIMARY KEY, user VARCHAR(255) NOT NULL, "
    "lastupdate DATETIME NOT NULL)",
    f"CREATE TABLE `{frappe.SINGLES_TABLE}` (doctype VARCHAR(140) NOT NULL, "
    "field VARCHAR(140) NOT NULL, value TEXT, PRIMARY KEY (doctype, field))",
    f"CREATE TABLE `{frappe.INSTALLED_APPS_TABLE}` (idx INT PRIMARY KEY, "
    "app_name VARCHAR(140) NOT NULL, app_version VARCHAR(140), git_branch VARCHAR(140))",
    f"CREATE TABLE `{frappe.NOTES_TABLE}` (name INT AUTO_INCREMENT PRIMARY KEY, "
    "title VARCHAR(140) NOT NULL)",
    f"CREATE TABLE `{frappe.PATCH_LOG_TABLE}` (name VARCHAR(140) PRIMARY KEY, "
    "patch TEXT, skipped INT NOT NULL DEFAULT 0)",
    "CREATE TABLE `tabToDo` (name VARCHAR(140) PRIMARY KEY, description TEXT, "
    "status VARCHAR(140) NOT NULL DEFAULT 'Open', allocated_to VARCHAR(140))",
)


def password_hash(password: str, salt: str) -> str:
    """How the stand-in keeps a user's password in ``__Auth`` (Frappe: passlib's pbkdf2)."""
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), ADMIN_HASH_ROUNDS)
    return f"pbkdf2_sha256${ADMIN_HASH_ROUNDS}${salt}${derived.hex()}"


def check_password_hash(password: str, stored: str) -> bool:
    import secrets  # here only: most bench calls make no password (a new process each)

    try:
        _, _, salt, _ = stored.split("$")
    except ValueError:
        return False
    return secrets.compare_digest(password_hash(password, salt), stored)


def default_db_name(site: str) -> str:
    # v15: "_" + sha1 of the site folder's real path, first 16 hex digits; the same site name
    # on the same bench always gets the same database name.
    path = os.path.realpath(frappe.SITES / site)
    return "_" + hashlib.sha1(path.encode()).hexdigest()[:16]


def make_site_dirs(site: str) -> None:
    for folder in ("public/files", "private/backups", "private/files", "locks", "logs"):
        (frappe.SITES / site / folder).mkdir(parents=True, exist_ok=True)


def make_conf(site: str, db_name: str) -> None:
    """site_config.json, unless the site already has one (Frappe never overwrites it): v15's
    make_conf / get_conf_params write the database's name, password, type and user (the user
    named as the database)."""
    import secrets  # here only: most bench calls make no password (a new process each)

    if frappe.site_config(site) is None:
        frappe.write_json(
            frappe.site_config_path(site),
            {
                "db_name": db_name,
                "db_password": secrets.token_hex(8),
                "db_type": "mariadb",
                "db_user": db_name,
            },
        )


def root_login(user: str, password: str | None):
    password = password or frappe.common_config().get("root_password")
    if not password:
        # v15 asks with getpass; a job has no terminal, so the prompt reads end-of-file.
        raise CommandError("EOFError: MySQL root password: no password given and no terminal")
    try:
        return frappe.root_connection(user, password)
    except Exception as error:  # pymysql's OperationalError, e.g. (1045, "Access denied ...")
        raise CommandError(f"{type(error).__name__}: {error}") from error


def setup_database(site: str, root, scope: str, force: bool) -> None:
    conf = frappe.get_conf(site)
    name, password = conf["db_name"], conf["db_password"]
    with root.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        existing = {row[0] for row in cursor.fetchall()}
        if not force and name in existing:
            raise CommandError(f"Exception: Database {name} already exists")
        cursor.execute("DROP USER IF EXISTS %s@%s", (name, scope))
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        if os.environ.get("STANDIN_FAIL_NEW_SITE") == "create-user":
            # MariaDB refusing the user (e.g. a user of that name left at another host): the
            # error pymysql raises, out of new-site as a traceback.
            import pymysql

            raise pymysql.err.OperationalError(
                1396, f"Operation CREATE USER failed for '{name}'@'{scope}'"
            )
        cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (name, scope, password))
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cursor.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (name, scope))
        cursor.execute("FLUSH PRIVILEGES")


def create_tables(site: str, admin_password: str) -> None:
    import secrets  # here only: most bench calls make no password (a new process each)

    for statement in TABLES:
        frappe.query(site, statement)
    frappe.query(
        site,
        f"INSERT INTO `{USER_TABLE}` VALUES ('Administrator', 'Administrator', 'System User', 1),"
        " ('Guest', 'Guest', 'Website User', 1)",
    )
    salt = secrets.token_hex(8)
    frappe.query(
        site,
        f"INSERT INTO `{AUTH_TABLE}` VALUES ('User', 'Administrator', 'password', %s, 0)",
        (password_hash(admin_password, salt),),
    )
    # New sites have the scheduler off until the setup wizard completes.
    frappe.set_single_value(site, "System Settings", "enable_scheduler", 0)


def install_app(site: str, app: str, force: bool = False) -> bool:
    """False when the app was installed already; raises when the bench does not have it."""
    installed = frappe.installed_apps(site)
    if app in installed and not force:
        print(f"App {app} already installed")
        return False
    if app not in frappe.bench_apps():
        raise CommandError(f"App {app} not found in this bench (sites/apps.txt)")
    print(f"\nInstalling {app}...")
    if os.environ.get("STANDIN_FAIL_NEW_SITE") == "install-app" and app != "frappe":
        # An app that fails to install (here: to import), after frappe is in: the site's user,
        # database and tables exist; the error leaves new-site as a traceback.
        raise ImportError(f"No module named '{app}'")
    if app == "frappe" and "encryption_key" not in (frappe.site_config(site) or {}):
        from frappe.utils.password import generate_key

        frappe.update_site_config(site, "encryption_key", generate_key())
    frappe.query(
        site,
        f"INSERT INTO `{frappe.INSTALLED_APPS_TABLE}` VALUES (%s, %s, %s, %s)",
        (len(installed) + 1, app, frappe.__version__ if app == "frappe" else "15.0.0", "HEAD"),
    )
    if app == "frappe":
        # v15 install_app(set_as_patched=True) on a new site: set_all_patches_as_completed, a
        # Patch Log row per line of the app's patches.txt, so migrate runs none of them.
        for patch in frappe.patches():
            log_patch(site, patch)
    return True


def log_patch(site: str, patch: str) -> None:
    """frappe.modules.patch_handler.update_patch_log: the patch's row in ``tabPatch Log``."""
    frappe.query(
        site,
        f"INSERT INTO `{frappe.PATCH_LOG_TABLE}` (name, patch) VALUES (%s, %s)",
        (patch, patch),
    )


def set_admin_password(site: str, password: str) -> None:
    """frappe.utils.password.update_password("Administrator", ...): the user's row in
    ``__Auth``, replaced."""
    import secrets  # here only: most bench calls make no password (a new process each)

    frappe.query(
        site,
        f"REPLACE INTO `{AUTH_TABLE}` VALUES ('User', 'Administrator', 'password', %s, 0)",
        (password_hash(password, secrets.token_hex(8)),),
    )


def drop_site(site: str, root, scope: str) -> None:
    """The rollback a terminal user is offered; jobs never get it."""
    name = (frappe.site_config(site) or {}).get("db_name")
    if name:
        with root.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@%s", (name, scope))
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    shutil.rmtree(frappe.SITES / site, ignore_errors=True)
