"""restore-drill.sh end to end with the stand-in Frappe: a backup the stand-in bench made of a
live site, restored by the drill into a throwaway site of its own bench on the same stand-in
MariaDB, every check, the result files and metrics, and everything dropped afterwards."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_commands import (
    SCRIPTS,
    FakeBin,
    add_frappe,
    database_file,
    make_bench,
    new_database_server,
    run_script,
)

SITE = "brandclub.com"
DAY = "2026-12-01"
ROOT_PASSWORD = "root-Pa55-word"
# ToDo rows whose text holds what a naive counter trips over: parentheses, commas, quotes.
TODOS = ("call (back), then close", "it's done", "a);(b", "plain")


# Below the kernel's ephemeral range (32768 and up): a port the kernel hands out is soon some
# other test's client socket, and a drill's backend bound much later then finds it taken (a
# unit-tier run saw a login check fail so). Random here, checked free.
_PORTS = range(20000, 30000)


def _free_port() -> int:
    for _ in range(100):
        port = random.choice(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS}")


def _bench(fakes: FakeBin, env: dict[str, str], *args: str, cwd: Path) -> None:
    subprocess.run(["bench", *args], env=env, cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def drill(tmp_path: Path) -> dict[str, object]:
    """The live site (made by the stand-in new-site) with a backup taken by the stand-in bench,
    and the drill's own bench and environment."""
    fakes = FakeBin(tmp_path)
    add_frappe(fakes)
    db = new_database_server(tmp_path / "db.json", ROOT_PASSWORD)
    (tmp_path / "db-root").write_text(ROOT_PASSWORD + "\n")
    live = make_bench(tmp_path / "live", {})
    env = fakes.env(STANDIN_DB=str(db))
    _bench(
        fakes,
        env,
        "new-site",
        SITE,
        "--db-root-password",
        ROOT_PASSWORD,
        "--admin-password",
        "live-admin",
        cwd=live,
    )
    live_config = json.loads((live / "sites" / SITE / "site_config.json").read_text())
    import sqlite3

    with sqlite3.connect(database_file(live_config["db_name"], db)) as connection:
        connection.executemany(
            "INSERT INTO tabToDo (name, description) VALUES (?, ?)",
            [(f"TD-{n}", text) for n, text in enumerate(TODOS)],
        )
    connection.close()
    for part in ("public", "private"):
        (live / "sites" / SITE / part / "files" / f"{part}.txt").write_text(part)
    backups = tmp_path / "backups"
    _bench(
        fakes,
        env,
        "--site",
        SITE,
        "backup",
        "--with-files",
        "--backup-path",
        str(backups / SITE / DAY),
        cwd=live,
    )
    # The drill's container: the image's bench, without the live sites.
    bench = make_bench(tmp_path / "drill", {}, configured=False)
    port = _free_port()
    fakes.add(
        "start.sh",
        f'cd "{bench}/sites" && STANDIN_PORT={port} STANDIN_BOOT_SECONDS=0 '
        f'exec "{bench}/env/bin/python" -m frappe.app',
    )
    state = tmp_path / "state"
    # The drill's calls only, from here on.
    fakes.log.write_text("")
    drill_env = fakes.env(
        STANDIN_DB=str(db),
        BENCH_DIR=str(bench),
        BACKUP_ROOT=str(backups),
        DRILL_STATE_DIR=str(state),
        DRILL_SITES=SITE,
        DRILL_DOCTYPES="User,ToDo",
        DB_ROOT_PASSWORD_FILE=str(tmp_path / "db-root"),
        DRILL_BACKEND_PORT=str(port),
        DRILL_BACKEND_TIMEOUT="20",
    )
    return {
        "env": drill_env,
        "fakes": fakes,
        "db": db,
        "bench": bench,
        "state": state,
        "live_db": live_config["db_name"],
        "backups": backups,
    }


def _once(drill: dict[str, object], **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**drill["env"], **extra}  # type: ignore[dict-item]
    return run_script("restore-drill.sh", env, timeout=60)


def _result(drill: dict[str, object]) -> dict[str, object]:
    path = Path(drill["state"]) / "sites" / SITE / "last-run.json"  # type: ignore[arg-type]
    return json.loads(path.read_text())


def _checks(result: dict[str, object]) -> dict[str, dict[str, object]]:
    return {check["name"]: check for check in result["checks"]}  # type: ignore[union-attr]


def _server(drill: dict[str, object]) -> dict[str, object]:
    return json.loads(Path(drill["db"]).read_text())  # type: ignore[arg-type]


def _assert_nothing_left(drill: dict[str, object]) -> None:
    server = _server(drill)
    assert [name for name in server["databases"] if name.startswith("drill_")] == []
    assert [user for user in server["users"] if user.startswith("drill_")] == []
    sites = Path(drill["bench"]) / "sites"  # type: ignore[arg-type]
    assert list(sites.glob("drill-*")) == []
    # The live site's database is untouched.
    assert drill["live_db"] in server["databases"]


def _metrics(drill: dict[str, object]) -> str:
    env = {**drill["env"], "PYTHONDONTWRITEBYTECODE": "1"}  # type: ignore[dict-item]
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "restore_drill.py"), "metrics"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_drill_restores_the_backup_checks_it_and_drops_everything(drill) -> None:
    done = _once(drill, RESTORE_DRILL_ONCE="1")
    assert done.returncode == 0, done.stdout + done.stderr
    result = _result(drill)
    assert result["ok"] is True
    checks = _checks(result)
    assert list(checks) == ["backup", "restore", "rows", "migrate", "login", "files"]
    assert all(check["ok"] for check in checks.values()), checks
    assert checks["migrate"]["message"] == "no patch ran (1 rows in tabPatch Log before and after)"
    assert checks["rows"]["message"] == f"User: 2; ToDo: {len(TODOS)}"
    assert "files.tar: 1 files" in checks["files"]["message"]
    assert "private-files.tar: 1 files" in checks["files"]["message"]
    assert result["backup"]["date"] == DAY  # type: ignore[index]
    assert str(result["backup"]["path"]).endswith("-brandclub_com-database.sql.gz")  # type: ignore[index]
    assert result["started"] <= result["ended"]  # type: ignore[operator]
    success = json.loads((Path(drill["state"]) / "sites" / SITE / "last-success.json").read_text())  # type: ignore[arg-type]
    assert success == result
    _assert_nothing_left(drill)
    metrics = _metrics(drill)
    assert f'brandclub_restore_drill_healthy{{site="{SITE}"}} 1' in metrics
    assert f'brandclub_restore_drill_last_run_ok{{site="{SITE}"}} 1' in metrics
    assert f'brandclub_restore_drill_check_ok{{site="{SITE}",check="login"}} 1' in metrics
    assert f'brandclub_restore_drill_last_success_timestamp_seconds{{site="{SITE}"}} ' in metrics
    assert f'brandclub_backup_newest_age_seconds{{site="{SITE}"}} ' in metrics
    # Every Frappe command named the throwaway site, never the live one.
    bench_calls = drill["fakes"].calls("bench")  # type: ignore[attr-defined]
    assert bench_calls
    assert all(call[2].startswith("drill-") for call in bench_calls), bench_calls


@pytest.mark.parametrize(
    ("extra", "check", "message"),
    [
        (
            {"STANDIN_NEW_PATCHES": "frappe.patches.v15_0.one,frappe.patches.v15_0.two"},
            "migrate",
            "migrate ran 2 patches the backup had not run (1 rows in tabPatch Log before, 3 after)",
        ),
        ({"STANDIN_FAIL": "migrate"}, "migrate", "bench migrate failed"),
        ({"STANDIN_FAIL": "set-admin-password"}, "login", "bench set-admin-password failed"),
        ({"STANDIN_BROKEN": "http500"}, "login", "answered 500, not 200"),
        ({"DRILL_DOCTYPES": "User,Sales Invoice"}, "rows", "Sales Invoice: not in the dump"),
        ({"STANDIN_FAIL": "restore"}, "restore", "bench restore failed"),
    ],
)
def test_a_failing_check_fails_the_drill_and_still_drops_everything(
    drill, extra: dict[str, str], check: str, message: str
) -> None:
    done = _once(drill, RESTORE_DRILL_ONCE="1", **extra)
    assert done.returncode == 1, done.stdout + done.stderr
    result = _result(drill)
    assert result["ok"] is False
    failed = _checks(result)[check]
    assert failed["ok"] is False
    assert message in failed["message"], failed
    _assert_nothing_left(drill)
    assert f'brandclub_restore_drill_healthy{{site="{SITE}"}} 0' in _metrics(drill)


def test_an_archive_that_does_not_unpack_fails_the_files_check(drill) -> None:
    for tar in (Path(drill["backups"]) / SITE / DAY).glob("*-private-files.tar"):  # type: ignore[arg-type]
        tar.write_bytes(b"not a tar at all" * 100)
    done = _once(drill, RESTORE_DRILL_ONCE="1")
    assert done.returncode == 1
    files = _checks(_result(drill))["files"]
    assert files["ok"] is False
    assert "private-files.tar does not unpack" in files["message"]
    _assert_nothing_left(drill)


def test_no_backup_fails_the_drill_with_the_reason(drill) -> None:
    done = _once(drill, RESTORE_DRILL_ONCE="1", DRILL_SITES=f"{SITE} shop.brandclub.com")
    assert done.returncode == 1
    shop = json.loads(
        (Path(drill["state"]) / "sites" / "shop.brandclub.com" / "last-run.json").read_text()  # type: ignore[arg-type]
    )
    assert shop["ok"] is False
    assert shop["checks"][0]["message"].startswith("no backup")
    assert _result(drill)["ok"] is True, _result(drill)


@pytest.mark.waits
def test_a_drill_killed_halfway_leaves_what_the_next_run_drops(drill, tmp_path: Path) -> None:
    # The backend never listens: the drill waits in the login check, its site and database made.
    env = {**drill["env"], "RESTORE_DRILL_ONCE": "1", "STANDIN_BROKEN": "port"}  # type: ignore[dict-item]
    process = subprocess.Popen(
        ["bash", str(SCRIPTS / "restore-drill.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log = Path(drill["fakes"].log)  # type: ignore[attr-defined]
    _wait_for(lambda: "set-admin-password" in log.read_text())
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    server = _server(drill)
    left = [name for name in server["databases"] if name.startswith("drill_")]
    assert left, "the killed drill left no database: it was killed too early"
    assert list((Path(drill["bench"]) / "sites").glob("drill-*"))  # type: ignore[arg-type]
    ledger = (Path(drill["state"]) / "ledger").read_text()  # type: ignore[arg-type]
    assert left[0] in ledger
    done = _once(drill, RESTORE_DRILL_ONCE="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"dropped leftovers of an earlier drill: {left[0]}" in done.stdout
    _assert_nothing_left(drill)


def _wait_for(predicate, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.waits
def test_sigterm_during_a_drill_skips_the_rest_and_still_drops_everything(drill) -> None:
    env = {**drill["env"], "STANDIN_BROKEN": "port"}  # type: ignore[dict-item]
    process = subprocess.Popen(
        ["bash", str(SCRIPTS / "restore-drill.sh"), "once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log = Path(drill["fakes"].log)  # type: ignore[attr-defined]
    _wait_for(lambda: "set-admin-password" in log.read_text())
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 1, output
    checks = _checks(_result(drill))
    assert checks["login"]["message"] == "stopped (SIGTERM) while waiting for the backend"
    assert checks["files"]["message"] == "skipped: the drill was stopped (SIGTERM)"
    assert checks["files"]["ok"] is False
    _assert_nothing_left(drill)


@pytest.mark.waits
def test_the_loop_serves_metrics_and_stops_at_once_on_sigterm(drill) -> None:
    port = _free_port()
    env = {**drill["env"], "DRILL_METRICS_PORT": str(port)}  # type: ignore[dict-item]
    process = subprocess.Popen(
        ["bash", str(SCRIPTS / "restore-drill.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    import urllib.request

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        _wait_for(answers, 20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
            kind = reply.headers["Content-Type"]
        assert kind.startswith("text/plain; version=0.0.4")
        # Never drilled yet: unhealthy.
        assert f'brandclub_restore_drill_healthy{{site="{SITE}"}} 0' in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=2) as reply:
            status = json.loads(reply.read())
        assert [site["site"] for site in status["sites"]] == [SITE]
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
        assert time.monotonic() - started < 3
        assert process.returncode == 0, output
        assert output.rstrip().endswith("restore-drill: stopped")
        assert not answers()
    finally:
        if process.poll() is None:
            process.kill()


def test_next_run_in_counts_from_the_last_run(drill) -> None:
    state = Path(drill["state"])  # type: ignore[arg-type]
    state.mkdir(parents=True, exist_ok=True)
    now = 1_800_000_000 - 1_800_000_000 % 86400
    (state / "last-run").write_text(str(now + 4 * 3600))
    answer = subprocess.run(
        ["bash", str(SCRIPTS / "restore-drill.sh"), "next-run-in", str(now + 5 * 3600)],
        env=drill["env"],  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert answer.stdout.strip() == str(7 * 86400 - 3600), answer.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DRILL_TIME", "4:00", "DRILL_TIME must be HH:MM"),
        ("DRILL_INTERVAL_DAYS", "0", "DRILL_INTERVAL_DAYS must be a positive whole number"),
        ("DB_ROOT_PASSWORD_FILE", "/nonexistent", "cannot read the secret file /nonexistent"),
        ("DRILL_DOCTYPES", "User,To`Do", "DRILL_DOCTYPES must be doctype names"),
    ],
)
def test_bad_settings_stop_it_at_start(drill, name: str, value: str, message: str) -> None:
    done = _once(drill, RESTORE_DRILL_ONCE="1", **{name: value})
    assert done.returncode == 2
    assert message in done.stderr


def test_a_second_drill_refuses_while_one_runs(drill) -> None:
    state = Path(drill["state"])  # type: ignore[arg-type]
    state.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(["flock", str(state / ".drill.lock"), "sleep", "30"])
    try:
        _wait_for(
            lambda: (
                subprocess.run(
                    ["flock", "--nonblock", str(state / ".drill.lock"), "true"]
                ).returncode
                != 0
            )
        )
        done = _once(drill, RESTORE_DRILL_ONCE="1")
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 3
    assert "another drill is running" in done.stdout
    assert drill["fakes"].calls("bench") == []  # type: ignore[attr-defined]
    assert not (state / "last-run").exists()
