#!/usr/bin/python3
"""The MariaDB image's entrypoint, for the live-swarm test tier: the official image's behaviour
for what the program uses, on Debian's own MariaDB package.

- Arguments that start with ``-`` are flags for ``mariadbd``.
- An empty data directory is initialised first, with the root password read from
  ``MARIADB_ROOT_PASSWORD_FILE`` for ``root@localhost`` and ``root@'%'``; while that runs the
  server has networking off, so a TCP health check stays red until the real server is up.
- The server runs as ``mysql``, never as root.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

DATADIR = Path("/var/lib/mysql")
RUNDIR = Path("/run/mysqld")
INIT_SOCKET = RUNDIR / "init.sock"


def log(message: str) -> None:
    print(f"[entrypoint] {message}", file=sys.stderr, flush=True)


def sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def root_password() -> str:
    path = os.environ.get("MARIADB_ROOT_PASSWORD_FILE")
    if not path:
        raise SystemExit("MARIADB_ROOT_PASSWORD_FILE is required to initialise the database")
    return Path(path).read_text().rstrip("\n")


def initialised() -> bool:
    # The image ships an empty data directory (the Debian package's own one is removed at
    # build time), so the system schema's folder marks a data directory this entrypoint set up.
    return (DATADIR / "mysql").is_dir()


def initialise(server_flags: list[str]) -> None:
    password = root_password()
    log("initialising an empty data directory")
    subprocess.run(
        [
            "mariadb-install-db",
            "--user=mysql",
            f"--datadir={DATADIR}",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        ["mariadbd", "--user=mysql", "--skip-networking", f"--socket={INIT_SOCKET}", *server_flags]
    )
    client = ["mariadb", "--protocol=socket", f"--socket={INIT_SOCKET}", "--user=root"]
    deadline = time.monotonic() + 120
    while subprocess.run([*client, "-e", "SELECT 1"], capture_output=True).returncode != 0:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the temporary server did not start")
        time.sleep(0.5)
    literal = sql_literal(password)
    statements = f"""
        SET @@SESSION.SQL_LOG_BIN=0;
        DELETE FROM mysql.global_priv WHERE User='' OR Host NOT IN ('localhost');
        ALTER USER 'root'@'localhost' IDENTIFIED BY {literal};
        CREATE USER 'root'@'%' IDENTIFIED BY {literal};
        GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
        FLUSH PRIVILEGES;
    """
    subprocess.run(client, input=statements.encode(), check=True)
    server.terminate()
    if server.wait(timeout=120) != 0:
        raise SystemExit("the temporary server did not shut down cleanly")
    log("initialised")


def drop_to_mysql() -> None:
    account = pwd.getpwnam("mysql")
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        argv = ["mariadbd", *argv]
    if argv[0] not in ("mariadbd", "mysqld") or os.getuid() != 0:
        os.execvp(argv[0], argv)
    flags = argv[1:]
    RUNDIR.mkdir(exist_ok=True)
    account = pwd.getpwnam("mysql")
    for path in (DATADIR, RUNDIR):
        os.chown(path, account.pw_uid, account.pw_gid)
    if not initialised():
        initialise(flags)
    drop_to_mysql()
    os.execvp("mariadbd", ["mariadbd", *flags])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
