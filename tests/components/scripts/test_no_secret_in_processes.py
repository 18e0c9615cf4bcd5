"""Issue 10 item 2: no password on any command line or in any process environment while a job
runs. Each stand-in (the Frappe CLI, the `mariadb` client) snapshots every process's
/proc/<pid>/cmdline and /proc/<pid>/environ, and `ps -eo args`, at the moment it is called, that
is while the job script, its subshells and the stand-in itself are running; no snapshot may hold
a secret. The secrets are random, so no other process on the machine can hold them by chance.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_commands import FakeBin, make_bench, new_database_server, run_script, write_backup_set


def _secret(label: str) -> str:
    # A quote, a space and a dollar sign: nothing a shell or an option parser may eat.
    return f"{label}-{secrets.token_hex(12)} q'$x"


@pytest.fixture
def listening() -> Iterator[int]:
    """One port that accepts: the database and both Redis for create-site's waits."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def _secret_file(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(value + "\n")
    return str(path)


def _snapshots(tmp_path: Path) -> list[dict]:
    path = tmp_path / "snapshots"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _assert_no_secret_seen(tmp_path: Path, *values: str) -> set[str]:
    """Checked first, before what the job did: a leak is the failure to see. Returns who took
    the snapshots."""
    snapshots = _snapshots(tmp_path)
    assert snapshots, "no stand-in was called"
    for snapshot in snapshots:
        # Every process: the test's own pytest process is in the list too.
        assert os.getpid() in {process["pid"] for process in snapshot["processes"]}
        seen = [snapshot["ps"]]
        for process in snapshot["processes"]:
            seen += [process["cmdline"], process["environ"]]
        for value in values:
            leaks = [text[:200] for text in seen if value in text]
            assert not leaks, f"while {snapshot['by']} ran, a secret was in {leaks}"
    return {snapshot["by"] for snapshot in snapshots}


def test_create_site_and_its_clean_up(
    frappe_fakes: FakeBin, tmp_path: Path, listening: int
) -> None:
    admin, root = _secret("admin"), _secret("root")
    bench = make_bench(tmp_path, {})
    db = new_database_server(tmp_path / "db.json", root)
    env = frappe_fakes.env(
        BENCH_DIR=str(bench),
        STANDIN_DB=str(db),
        STANDIN_PROC_SNAPSHOTS=str(tmp_path / "snapshots"),
        SITE_NAME="dev.brandclub.com",
        PRIMARY_SITE="dev.brandclub.com",
        INSTALL_APPS="erpnext",
        DB_HOST="127.0.0.1",
        DB_PORT=str(listening),
        REDIS_CACHE=f"redis://127.0.0.1:{listening}",
        REDIS_QUEUE=f"redis://127.0.0.1:{listening}",
        ADMIN_PASSWORD_FILE=_secret_file(tmp_path, "admin", admin),
        DB_ROOT_PASSWORD_FILE=_secret_file(tmp_path, "root", root),
        WAIT_INTERVAL="0.05",
    )
    # A first run fails after the database user exists: the clean-up logs in as root.
    failing = run_script("create-site.sh", {**env, "STANDIN_FAIL_NEW_SITE": "install-app"})
    result = run_script("create-site.sh", env)

    callers = _assert_no_secret_seen(tmp_path, admin, root)
    assert {"bench new-site", "mariadb"} <= callers
    assert failing.returncode == 1
    assert result.returncode == 0, result.stderr
    # Frappe was handed the passwords: its argv inside Python is not /proc's cmdline.
    new_sites = [call for call in frappe_fakes.calls("bench") if call[1] == "new-site"]
    assert {admin, root} <= set(new_sites[-1])


def test_restore(frappe_fakes: FakeBin, tmp_path: Path) -> None:
    root, key = _secret("root"), _secret("encryption-key")
    site = "brandclub.com"
    bench = make_bench(tmp_path, {site: {"db_name": "_a1", "db_password": "pa"}})
    db = new_database_server(
        tmp_path / "db.json", root, users={"_a1@%": "pa"}, databases={"_a1": {"apps": ["frappe"]}}
    )
    day = tmp_path / "backups" / site / "2026-11-20"
    day.mkdir(parents=True)
    write_backup_set(day, "20261120_020000-brandclub_com", site, files=False)
    config = {"db_name": "_prod", "encryption_key": key}
    (day / "20261120_020000-brandclub_com-site_config_backup.json").write_text(json.dumps(config))
    env = frappe_fakes.env(
        BENCH_DIR=str(bench),
        STANDIN_DB=str(db),
        STANDIN_PROC_SNAPSHOTS=str(tmp_path / "snapshots"),
        SITE_NAME=site,
        SOURCE_SITE=site,
        BACKUP_DATE="2026-11-20",
        BACKUP_ROOT=str(tmp_path / "backups"),
        DB_ROOT_PASSWORD_FILE=_secret_file(tmp_path, "root", root),
        USE_BACKUP_ENCRYPTION_KEY="true",
    )
    result = run_script("restore.sh", env)

    assert "bench restore" in _assert_no_secret_seen(tmp_path, root, key)
    assert result.returncode == 0, result.stderr
    restored = json.loads((bench / "sites" / site / "site_config.json").read_text())
    assert restored["encryption_key"] == key


def test_root_password_rotation(frappe_fakes: FakeBin, tmp_path: Path) -> None:
    new, previous = _secret("new"), _secret("previous")
    db = new_database_server(tmp_path / "db.json", previous)
    env = frappe_fakes.env(
        BENCH_DIR=str(tmp_path),
        STANDIN_DB=str(db),
        STANDIN_PROC_SNAPSHOTS=str(tmp_path / "snapshots"),
        DB_HOST="mariadb",
        DB_PORT="3306",
        DB_ROOT_PASSWORD_FILE=_secret_file(tmp_path, "new", new),
        DB_ROOT_PASSWORD_PREVIOUS_FILE=_secret_file(tmp_path, "previous", previous),
    )
    result = run_script("rotate-db-root-password.sh", env)

    assert "mariadb" in _assert_no_secret_seen(tmp_path, new, previous)
    assert result.returncode == 0, result.stderr
    assert json.loads(db.read_text())["root_password"] == new
