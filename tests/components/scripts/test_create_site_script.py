"""create-site.sh: waits for real loopback ports, then creates the site with the stand-in Frappe
(tests/stand_ins), which fails the way Frappe v15's new-site does: site_config.json first,
nothing rolled back."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_commands import (
    FakeBin,
    database_state,
    make_bench,
    new_database_server,
    run_script,
)

SITE = "dev.brandclub.com"
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
    "--set-default",
]
ENABLE_SCHEDULER = ["bench", "--site", SITE, "scheduler", "enable"]


def _bound_socket() -> socket.socket:
    """A loopback port that refuses connections until listen() is called."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def ports() -> Iterator[dict[str, socket.socket]]:
    """Database, cache and queue ports, listening."""
    sockets = {name: _bound_socket() for name in ("db", "cache", "queue")}
    for sock in sockets.values():
        sock.listen()
    yield sockets
    for sock in sockets.values():
        sock.close()


def _port(sock: socket.socket) -> int:
    return sock.getsockname()[1]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return new_database_server(tmp_path / "db.json", DB_ROOT_PASSWORD)


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return make_bench(tmp_path, {})


def _env(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], **extra: str
) -> dict[str, str]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "admin").write_text(ADMIN_PASSWORD + "\n")
    (secrets / "db-root").write_text(DB_ROOT_PASSWORD)
    defaults = dict(
        BENCH_DIR=str(tmp_path / "frappe-bench"),
        FAKE_DB=str(tmp_path / "db.json"),
        SITE_NAME=SITE,
        INSTALL_APPS="erpnext brandclub",
        DB_HOST="127.0.0.1",
        DB_PORT=str(_port(ports["db"])),
        REDIS_CACHE=f"redis://127.0.0.1:{_port(ports['cache'])}",
        REDIS_QUEUE=f"redis://:queue-pass@127.0.0.1:{_port(ports['queue'])}/0",
        ADMIN_PASSWORD_FILE=str(secrets / "admin"),
        DB_ROOT_PASSWORD_FILE=str(secrets / "db-root"),
        WAIT_TIMEOUT="5",
        WAIT_INTERVAL="0.05",
    )
    return frappe_fakes.env(**{**defaults, **extra})


def _marker(bench: Path) -> dict | None:
    path = bench / "sites" / ".brandclub" / "sites" / f"{SITE}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _site_database(bench: Path, db: Path) -> dict:
    config = json.loads((bench / "sites" / SITE / "site_config.json").read_text())
    state = database_state(db)
    # The user Frappe logs in as, at the login scope the job asks for.
    assert state["users"][f"{config['db_user']}@%"] == config["db_password"]
    return state["databases"][config["db_name"]]


def _half_made(bench: Path) -> list[Path]:
    return sorted((bench / "sites" / ".brandclub" / "half-made").glob(f"{SITE}-*"))


@pytest.mark.parametrize("failure", ["create-user", "install-app"])
def test_the_stand_in_new_site_fails_as_frappe_v15_does(
    frappe_fakes: FakeBin, tmp_path: Path, bench: Path, db: Path, failure: str
) -> None:
    """The stand-in's contract (frappe/installer.py _new_site, frappe/commands/site.py
    new_site): site_config.json is written before the database user and database exist; a
    failure prints the traceback and exits 1, and without a terminal nothing is rolled back, so
    the folder stays and `list-apps` cannot open the site."""
    env = frappe_fakes.env(FAKE_DB=str(db), FAKE_NEW_SITE_FAIL=failure)
    new_site = NEW_SITE[1:11]  # new-site <site> ... --install-app erpnext
    created = subprocess.run(
        ["bench", *new_site],
        cwd=bench,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )

    assert created.returncode == 1
    assert "Traceback (most recent call last)" in created.stderr
    config = json.loads((bench / "sites" / SITE / "site_config.json").read_text())
    assert set(config) == {"db_name", "db_password", "db_type", "db_user"}
    state = database_state(db)
    made = failure == "install-app"
    assert (config["db_name"] in state["databases"]) is made
    assert (f"{config['db_user']}@%" in state["users"]) is made
    again = subprocess.run(["bench", *new_site], cwd=bench, env=env, capture_output=True, text=True)
    assert again.returncode == 1 and f"Site {SITE} already exists" in again.stdout
    listed = subprocess.run(
        ["bench", "--site", SITE, "list-apps"], cwd=bench, env=env, capture_output=True, text=True
    )
    assert listed.returncode == (0 if made else 1)


def test_creates_the_site_with_its_apps_and_enables_its_scheduler(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    # Frappe gets the passwords (the stand-in records the arguments it was handed)...
    assert frappe_fakes.calls() == [NEW_SITE, ENABLE_SCHEDULER]
    database = _site_database(bench, db)
    assert database == {"apps": ["frappe", "erpnext", "brandclub"], "enable_scheduler": 1}
    marker = _marker(bench)
    assert marker is not None
    assert (marker["state"], marker["scheduler"]) == ("created", "enabled")
    assert "restoreRequest" not in marker
    output = result.stdout + result.stderr
    for secret in (ADMIN_PASSWORD, DB_ROOT_PASSWORD, "queue-pass"):
        assert secret not in output
    waits = [line.split(": ", 1)[1] for line in output.splitlines() if "waiting for" in line]
    assert waits == [
        f"waiting for database at 127.0.0.1:{_port(ports['db'])}",
        f"waiting for cache Redis at 127.0.0.1:{_port(ports['cache'])}",
        f"waiting for queue Redis at 127.0.0.1:{_port(ports['queue'])}",
    ]


def test_the_scheduler_can_be_left_as_frappe_sets_it(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports, ENABLE_SCHEDULER="0"))

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [NEW_SITE]
    assert _site_database(bench, db)["enable_scheduler"] == 0
    assert "scheduler left as Frappe sets it: disabled" in result.stdout


def test_the_restore_request_of_the_same_deploy_is_recorded(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, ports, RESTORE_REQUEST="brandclub.com@2026-11-20")
    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert _marker(bench)["restoreRequest"] == "brandclub.com@2026-11-20"  # type: ignore[index]


def test_a_created_site_is_left_alone(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, ports)
    assert run_script("create-site.sh", env).returncode == 0
    before = (bench / "sites" / SITE / "site_config.json").read_text()
    frappe_fakes.log.write_text("")
    for sock in ports.values():
        sock.close()  # nothing to wait for: an existing site needs no service

    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert f"site {SITE} exists, nothing to do" in result.stdout
    assert frappe_fakes.calls() == []
    assert (bench / "sites" / SITE / "site_config.json").read_text() == before


def test_a_failed_first_run_leaves_nothing_behind_and_the_next_run_creates_the_site(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    """Issue 9 item 1: an app fails to install after Frappe wrote site_config.json and made the
    site's database user and database; Frappe rolls nothing back without a terminal."""
    failing = run_script(
        "create-site.sh", _env(frappe_fakes, tmp_path, ports, FAKE_NEW_SITE_FAIL="install-app")
    )

    assert failing.returncode == 1
    assert "Traceback" in failing.stderr and "No module named 'erpnext'" in failing.stderr
    assert f"bench new-site {SITE} failed; the half-made site was removed" in failing.stderr
    state = database_state(db)
    assert (state["users"], state["databases"]) == ({}, {})
    [aside] = _half_made(bench)
    assert (aside / "site_config.json").is_file()  # kept for a look, out of Frappe's way
    assert not (bench / "sites" / SITE).exists()
    assert _marker(bench) is None
    drops = state["statements"][-1].splitlines()
    config = json.loads((aside / "site_config.json").read_text())
    assert drops == [
        f"DROP DATABASE IF EXISTS `{config['db_name']}`;",
        f"DROP USER IF EXISTS '{config['db_user']}'@'%';",
        f"DROP USER IF EXISTS '{config['db_user']}'@'localhost';",
    ]

    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    assert _site_database(bench, db)["apps"] == ["frappe", "erpnext", "brandclub"]
    assert _marker(bench)["state"] == "created"  # type: ignore[index]


def test_a_run_that_died_midway_is_cleaned_up_by_the_next_run(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    """The job was killed after `new-site` made the user and database: the marker still says
    "creating", so the site is half-made and this job's own."""
    site = bench / "sites" / SITE
    site.mkdir()
    (site / "site_config.json").write_text('{"db_name": "_dead01", "db_password": "x"}')
    markers = bench / "sites" / ".brandclub" / "sites"
    markers.mkdir(parents=True)
    (markers / f"{SITE}.json").write_text('{"site": "dev.brandclub.com", "state": "creating"}')
    new_database_server(
        db,
        DB_ROOT_PASSWORD,
        users={"_dead01@%": "x", "_other@%": "y"},
        databases={"_dead01": {"apps": ["frappe"]}, "_other": {"apps": ["frappe"]}},
    )

    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    assert f"site {SITE} is half-made" in result.stdout
    assert "dropping database _dead01 and user _dead01" in result.stdout
    state = database_state(db)
    assert "_dead01" not in state["databases"] and "_dead01@%" not in state["users"]
    assert "_other" in state["databases"] and "_other@%" in state["users"]
    assert len(_half_made(bench)) == 1
    assert [call[1] for call in frappe_fakes.calls("bench")] == ["new-site", "--site"]
    assert _site_database(bench, db)["enable_scheduler"] == 1


def test_a_clean_up_that_fails_is_left_to_the_next_run(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    """Frappe refused by MariaDB (user creation fails), and the clean-up cannot log in either:
    the marker keeps saying "creating" so that the next run cleans up."""
    new_database_server(db, "another-root-password")
    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 1
    assert "Access denied for user 'root'" in result.stderr
    assert f"bench new-site {SITE} failed, and so did its clean-up" in result.stderr
    assert (bench / "sites" / SITE / "site_config.json").is_file()
    assert _marker(bench)["state"] == "creating"  # type: ignore[index]


def test_a_user_creation_failure_is_cleaned_up(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, ports, FAKE_NEW_SITE_FAIL="create-user")
    result = run_script("create-site.sh", env)

    assert result.returncode == 1
    assert "Operation CREATE USER failed" in result.stderr
    assert not (bench / "sites" / SITE).exists()
    assert _marker(bench) is None


def test_a_site_made_before_the_marker_is_adopted(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    site = bench / "sites" / SITE
    site.mkdir()
    (site / "site_config.json").write_text('{"db_name": "_old1", "db_password": "p"}')
    new_database_server(
        db, DB_ROOT_PASSWORD, users={"_old1@%": "p"}, databases={"_old1": {"apps": ["frappe"]}}
    )

    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [["bench", "--site", SITE, "list-apps"]]
    assert _marker(bench)["state"] == "created"  # type: ignore[index]
    assert "recorded as created" in result.stdout


def test_a_site_this_job_did_not_start_is_never_touched(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    """Half-made by someone else (or by a run before markers existed): Frappe cannot open it,
    and the job fails without dropping or moving anything."""
    site = bench / "sites" / SITE
    site.mkdir()
    (site / "site_config.json").write_text('{"db_name": "_3b6f", "db_password": "p"}')
    new_database_server(db, DB_ROOT_PASSWORD, databases={"_3b6f": {"apps": ["frappe"]}})

    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 1
    assert "Access denied for user '_3b6f'" in result.stderr
    assert "this job did not create it" in result.stderr and "left untouched" in result.stderr
    assert frappe_fakes.calls("mariadb") == []
    assert database_state(db)["databases"] == {"_3b6f": {"apps": ["frappe"]}}
    assert (site / "site_config.json").is_file() and _half_made(bench) == []
    assert _marker(bench) is None


def test_a_scheduler_switch_on_that_failed_is_retried(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, ports, BENCH_FAIL="scheduler enable")
    first = run_script("create-site.sh", env)
    assert first.returncode == 1
    assert "enabling its scheduler failed; the next run tries again" in first.stderr
    frappe_fakes.log.write_text("")

    del env["BENCH_FAIL"]
    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [ENABLE_SCHEDULER]
    assert _marker(bench)["scheduler"] == "enabled"  # type: ignore[index]


def test_a_failed_switch_on_no_longer_wanted_is_dropped(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, ports, BENCH_FAIL="scheduler enable")
    assert run_script("create-site.sh", env).returncode == 1
    frappe_fakes.log.write_text("")

    del env["BENCH_FAIL"]
    result = run_script("create-site.sh", {**env, "ENABLE_SCHEDULER": "0"})

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == []
    assert "scheduler" not in _marker(bench)  # type: ignore[operator]


def test_a_site_dropped_by_hand_is_created_again(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, ports)
    assert run_script("create-site.sh", env).returncode == 0
    shutil.rmtree(bench / "sites" / SITE)  # as `bench drop-site` moves it away
    frappe_fakes.log.write_text("")

    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert [call[1] for call in frappe_fakes.calls()] == ["new-site", "--site"]


def test_waits_for_a_service_that_comes_up_late(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    late = _bound_socket()
    env = _env(frappe_fakes, tmp_path, ports, REDIS_QUEUE=f"redis://127.0.0.1:{_port(late)}")
    timer = threading.Timer(0.5, late.listen)
    timer.start()
    try:
        started = time.monotonic()
        result = run_script("create-site.sh", env)
        elapsed = time.monotonic() - started
    finally:
        timer.cancel()
        late.close()

    assert result.returncode == 0, result.stderr
    assert elapsed >= 0.5
    assert [call[1] for call in frappe_fakes.calls()] == ["new-site", "--site"]


def test_gives_up_on_an_unreachable_service(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    closed = _bound_socket()  # bound, never listening: connections are refused
    closed_port = _port(closed)
    env = _env(frappe_fakes, tmp_path, ports, REDIS_CACHE=f"redis://127.0.0.1:{closed_port}")
    env["WAIT_TIMEOUT"] = "1"
    try:
        started = time.monotonic()
        result = run_script("create-site.sh", env)
        elapsed = time.monotonic() - started
    finally:
        closed.close()

    assert result.returncode == 1
    assert 1 <= elapsed < 5
    assert (f"cache Redis at 127.0.0.1:{closed_port} not reachable after 1s") in result.stderr
    assert frappe_fakes.calls() == []
    assert _marker(bench) is None


def test_without_apps_only_frappe_is_installed(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    result = run_script("create-site.sh", _env(frappe_fakes, tmp_path, ports, INSTALL_APPS=""))

    assert result.returncode == 0, result.stderr
    assert "--install-app" not in frappe_fakes.calls()[0]
    assert frappe_fakes.calls()[0][-1] == "--set-default"
    assert _site_database(bench, db)["apps"] == ["frappe"]


@pytest.mark.parametrize(
    ("variable", "content", "message"),
    [
        ("ADMIN_PASSWORD_FILE", None, "cannot read secret file"),
        ("DB_ROOT_PASSWORD_FILE", "\n", "is empty"),
    ],
)
def test_a_missing_or_empty_secret_fails_clearly(
    frappe_fakes: FakeBin,
    tmp_path: Path,
    ports: dict[str, socket.socket],
    bench: Path,
    db: Path,
    variable: str,
    content: str | None,
    message: str,
) -> None:
    env = _env(frappe_fakes, tmp_path, ports)
    secret = tmp_path / "broken-secret"
    if content is not None:
        secret.write_text(content)
    env[variable] = str(secret)
    result = run_script("create-site.sh", env)

    assert result.returncode == 1
    assert message in result.stderr
    assert str(secret) in result.stderr
    assert frappe_fakes.calls() == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SITE_NAME", None, "missing required environment variable(s): SITE_NAME"),
        ("ENABLE_SCHEDULER", "yes", "ENABLE_SCHEDULER must be 1 or 0, got 'yes'"),
    ],
)
def test_bad_input_is_named(
    frappe_fakes: FakeBin,
    tmp_path: Path,
    ports: dict[str, socket.socket],
    bench: Path,
    db: Path,
    variable: str,
    value: str | None,
    message: str,
) -> None:
    env = _env(frappe_fakes, tmp_path, ports)
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    result = run_script("create-site.sh", env)

    assert result.returncode == 1
    assert message in result.stderr
    assert frappe_fakes.calls() == []
