"""What the create-site tests share: the stand-in site's name and passwords, the job's
environment, and readers of what the job left behind."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from fake_commands import (
    FakeBin,
    database_state,
)

SITE = "dev.brandclub.com"
# A site made beside the stack's own (PRIMARY_SITE): it must never become the bench's default.
SECOND_SITE = "shop.dev.brandclub.com"
ADMIN_PASSWORD = "admin-Pa55-word"
DB_ROOT_PASSWORD = "root-Pa55-word"
NEW_SITE = [
    "bench",
    "new-site",
    SITE,
    "--mariadb-user-host-login-scope=%",
    "--admin-password",
    ADMIN_PASSWORD,
    "--db-root-username=root",
    "--db-root-password",
    DB_ROOT_PASSWORD,
    "--install-app",
    "erpnext",
    "--install-app",
    "brandclub",
    "--set-default",  # SITE is the primary site (PRIMARY_SITE): only it is made the default
]
ENABLE_SCHEDULER = ["bench", "--site", SITE, "scheduler", "enable"]


def bound_socket() -> socket.socket:
    """A loopback port that refuses connections until listen() is called."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return sock.getsockname()[1]


def create_site_env(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], **extra: str
) -> dict[str, str]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "admin").write_text(ADMIN_PASSWORD + "\n")
    (secrets / "db-root").write_text(DB_ROOT_PASSWORD)
    defaults = dict(
        BENCH_DIR=str(tmp_path / "frappe-bench"),
        STANDIN_DB=str(tmp_path / "db.json"),
        SITE_NAME=SITE,
        PRIMARY_SITE=SITE,
        INSTALL_APPS="erpnext brandclub",
        DB_HOST="127.0.0.1",
        DB_PORT=str(port_of(ports["db"])),
        REDIS_CACHE=f"redis://127.0.0.1:{port_of(ports['cache'])}",
        REDIS_QUEUE=f"redis://:queue-pass@127.0.0.1:{port_of(ports['queue'])}/0",
        ADMIN_PASSWORD_FILE=str(secrets / "admin"),
        DB_ROOT_PASSWORD_FILE=str(secrets / "db-root"),
        WAIT_TIMEOUT="5",
        WAIT_INTERVAL="0.05",
    )
    return frappe_fakes.env(**{**defaults, **extra})


def read_marker(bench: Path) -> dict | None:
    path = bench / "sites" / ".brandclub" / "sites" / f"{SITE}.json"
    return json.loads(path.read_text()) if path.exists() else None


def site_database(bench: Path, db: Path) -> dict:
    config = json.loads((bench / "sites" / SITE / "site_config.json").read_text())
    state = database_state(db)
    # The user Frappe logs in as, at the login scope the job asks for.
    assert state["users"][f"{config['db_user']}@%"] == config["db_password"]
    return state["databases"][config["db_name"]]


def half_made(bench: Path) -> list[Path]:
    return sorted((bench / "sites" / ".brandclub" / "half-made").glob(f"{SITE}-*"))
