"""create-site.sh: waits for real loopback ports, then creates the site with the stand-in Frappe
(the live image's, tests/live/images/bench), which fails the way Frappe v15's new-site does:
site_config.json first, nothing rolled back. What a later run does after a failed one:
test_create_site_recovery.py."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from create_site_support import (
    ADMIN_PASSWORD,
    DB_ROOT_PASSWORD,
    ENABLE_SCHEDULER,
    NEW_SITE,
    SECOND_SITE,
    SITE,
    bound_socket,
    create_site_env,
    port_of,
    read_marker,
    site_database,
)
from fake_commands import (
    FakeBin,
    database_server,
    database_state,
    drop_database,
    run_script,
)


@pytest.mark.parametrize("failure", ["create-user", "install-app"])
def test_the_stand_in_new_site_fails_as_frappe_v15_does(
    frappe_fakes: FakeBin, tmp_path: Path, bench: Path, db: Path, failure: str
) -> None:
    """The stand-in's contract (frappe/installer.py _new_site, frappe/commands/site.py
    new_site): site_config.json is written before the database user and database exist; a
    failure prints the traceback and exits 1, and without a terminal nothing is rolled back, so
    the folder stays and `list-apps` cannot open the site."""
    env = frappe_fakes.env(STANDIN_DB=str(db), STANDIN_FAIL_NEW_SITE=failure)
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
    made = failure == "install-app"
    # frappe's install writes the site's encryption key; the rest is make_conf's.
    assert set(config) == {"db_name", "db_password", "db_type", "db_user"} | (
        {"encryption_key"} if made else set()
    )
    state = database_state(db)
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
    result = run_script("create-site.sh", create_site_env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    # Frappe gets the passwords (the stand-in records the arguments it was handed)...
    assert frappe_fakes.calls() == [NEW_SITE, ENABLE_SCHEDULER]
    database = site_database(bench, db)
    assert database == {"apps": ["frappe", "erpnext", "brandclub"], "enable_scheduler": 1}
    marker = read_marker(bench)
    assert marker is not None
    assert (marker["state"], marker["scheduler"]) == ("created", "enabled")
    assert "restoreRequest" not in marker
    output = result.stdout + result.stderr
    for secret in (ADMIN_PASSWORD, DB_ROOT_PASSWORD, "queue-pass"):
        assert secret not in output
    waits = [line.split(": ", 1)[1] for line in output.splitlines() if "waiting for" in line]
    assert waits == [
        f"waiting for database at 127.0.0.1:{port_of(ports['db'])}",
        f"waiting for cache Redis at 127.0.0.1:{port_of(ports['cache'])}",
        f"waiting for queue Redis at 127.0.0.1:{port_of(ports['queue'])}",
    ]


def test_the_scheduler_can_be_left_as_frappe_sets_it(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    result = run_script(
        "create-site.sh", create_site_env(frappe_fakes, tmp_path, ports, ENABLE_SCHEDULER="0")
    )

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [NEW_SITE]
    assert site_database(bench, db)["enable_scheduler"] == 0
    assert "scheduler left as Frappe sets it: disabled" in result.stdout


def test_the_restore_request_of_the_same_deploy_is_recorded(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = create_site_env(frappe_fakes, tmp_path, ports, RESTORE_REQUEST="brandclub.com@2026-11-20")
    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert read_marker(bench)["restoreRequest"] == "brandclub.com@2026-11-20"  # type: ignore[index]


def test_a_created_site_is_left_alone(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = create_site_env(frappe_fakes, tmp_path, ports)
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


def test_a_site_dropped_by_hand_is_created_again(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = create_site_env(frappe_fakes, tmp_path, ports)
    assert run_script("create-site.sh", env).returncode == 0
    # As `bench drop-site` (frappe/commands/site.py drop_site): the database and its user are
    # dropped, the folder is moved away.
    config = json.loads((bench / "sites" / SITE / "site_config.json").read_text())
    with database_server(db) as state:
        drop_database(state, config["db_name"], db)
        del state["users"][f"{config['db_user']}@%"]
    shutil.rmtree(bench / "sites" / SITE)
    frappe_fakes.log.write_text("")

    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert [call[1] for call in frappe_fakes.calls()] == ["new-site", "--site"]


@pytest.mark.waits
def test_waits_for_a_service_that_comes_up_late(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    late = bound_socket()
    env = create_site_env(
        frappe_fakes, tmp_path, ports, REDIS_QUEUE=f"redis://127.0.0.1:{port_of(late)}"
    )
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


@pytest.mark.waits
def test_gives_up_on_an_unreachable_service(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    closed = bound_socket()  # bound, never listening: connections are refused
    closed_port = port_of(closed)
    env = create_site_env(
        frappe_fakes, tmp_path, ports, REDIS_CACHE=f"redis://127.0.0.1:{closed_port}"
    )
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
    assert read_marker(bench) is None


def test_without_apps_only_frappe_is_installed(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    result = run_script(
        "create-site.sh", create_site_env(frappe_fakes, tmp_path, ports, INSTALL_APPS="")
    )

    assert result.returncode == 0, result.stderr
    assert "--install-app" not in frappe_fakes.calls()[0]
    assert frappe_fakes.calls()[0][-1] == "--set-default"
    assert site_database(bench, db)["apps"] == ["frappe"]


def test_only_the_primary_site_becomes_the_default_site(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    """Issue 19 item 4: `--set-default` on every site made a second site the bench's
    default_site. The primary site takes it; a site made beside it leaves it alone."""
    primary = run_script("create-site.sh", create_site_env(frappe_fakes, tmp_path, ports))
    assert primary.returncode == 0, primary.stderr
    common = bench / "sites" / "common_site_config.json"
    assert json.loads(common.read_text())["default_site"] == SITE

    frappe_fakes.log.write_text("")
    env = create_site_env(frappe_fakes, tmp_path, ports, SITE_NAME=SECOND_SITE)
    second = run_script("create-site.sh", env)

    assert second.returncode == 0, second.stderr
    new_site = frappe_fakes.calls()[0]
    assert new_site[:3] == ["bench", "new-site", SECOND_SITE]
    assert "--set-default" not in new_site
    assert json.loads(common.read_text())["default_site"] == SITE


@pytest.fixture
def ready_env(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> dict[str, str]:
    """A job environment create-site.sh would run with: ports listening, bench and server ready."""
    return create_site_env(frappe_fakes, tmp_path, ports)


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
    ready_env: dict[str, str],
    variable: str,
    content: str | None,
    message: str,
) -> None:
    secret = tmp_path / "broken-secret"
    if content is not None:
        secret.write_text(content)
    ready_env[variable] = str(secret)
    result = _refused_before_any_call(frappe_fakes, ready_env, message)
    assert str(secret) in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SITE_NAME", None, "missing required environment variable(s): SITE_NAME"),
        ("PRIMARY_SITE", "", "missing required environment variable(s): PRIMARY_SITE"),
        ("ENABLE_SCHEDULER", "yes", "ENABLE_SCHEDULER must be 1 or 0, got 'yes'"),
    ],
)
def test_bad_input_is_named(
    frappe_fakes: FakeBin, ready_env: dict[str, str], variable: str, value: str | None, message: str
) -> None:
    if value is None:
        del ready_env[variable]
    else:
        ready_env[variable] = value
    _refused_before_any_call(frappe_fakes, ready_env, message)


def _refused_before_any_call(
    frappe_fakes: FakeBin, env: dict[str, str], message: str
) -> subprocess.CompletedProcess[str]:
    """create-site.sh fails with ``message`` before it runs bench or the mariadb client."""
    result = run_script("create-site.sh", env)
    assert result.returncode == 1
    assert message in result.stderr
    assert frappe_fakes.calls() == []
    return result
