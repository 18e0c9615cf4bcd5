"""create-site.sh after a run that failed or died: what it left is cleaned up, a site it did not
start is never touched, and a scheduler switch-on that failed is retried (or dropped)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from create_site_support import (
    DB_ROOT_PASSWORD,
    ENABLE_SCHEDULER,
    SITE,
    create_site_env,
    half_made,
    read_marker,
    site_database,
)
from fake_commands import (
    FakeBin,
    database_state,
    new_database_server,
    run_script,
)


def test_a_failed_first_run_leaves_nothing_behind_and_the_next_run_creates_the_site(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    """Issue 9 item 1: an app fails to install after Frappe wrote site_config.json and made the
    site's database user and database; Frappe rolls nothing back without a terminal."""
    failing = run_script(
        "create-site.sh",
        create_site_env(frappe_fakes, tmp_path, ports, STANDIN_FAIL_NEW_SITE="install-app"),
    )

    assert failing.returncode == 1
    assert "Traceback" in failing.stderr and "No module named 'erpnext'" in failing.stderr
    assert f"bench new-site {SITE} failed; the half-made site was removed" in failing.stderr
    state = database_state(db)
    assert (state["users"], state["databases"]) == ({}, {})
    [aside] = half_made(bench)
    assert (aside / "site_config.json").is_file()  # kept for a look, out of Frappe's way
    assert not (bench / "sites" / SITE).exists()
    assert read_marker(bench) is None
    drops = state["statements"][-1].splitlines()
    config = json.loads((aside / "site_config.json").read_text())
    assert drops == [
        f"DROP DATABASE IF EXISTS `{config['db_name']}`;",
        f"DROP USER IF EXISTS '{config['db_user']}'@'%';",
        f"DROP USER IF EXISTS '{config['db_user']}'@'localhost';",
    ]

    result = run_script("create-site.sh", create_site_env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    assert site_database(bench, db)["apps"] == ["frappe", "erpnext", "brandclub"]
    assert read_marker(bench)["state"] == "created"  # type: ignore[index]


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

    result = run_script("create-site.sh", create_site_env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    assert f"site {SITE} is half-made" in result.stdout
    assert "dropping database _dead01 and user _dead01" in result.stdout
    state = database_state(db)
    assert "_dead01" not in state["databases"] and "_dead01@%" not in state["users"]
    assert "_other" in state["databases"] and "_other@%" in state["users"]
    assert len(half_made(bench)) == 1
    assert [call[1] for call in frappe_fakes.calls("bench")] == ["new-site", "--site"]
    assert site_database(bench, db)["enable_scheduler"] == 1


def test_a_clean_up_that_fails_is_left_to_the_next_run(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    """Frappe refused by MariaDB (user creation fails), and the clean-up cannot log in either:
    the marker keeps saying "creating" so that the next run cleans up."""
    new_database_server(db, "another-root-password")
    result = run_script("create-site.sh", create_site_env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 1
    assert "Access denied for user 'root'" in result.stderr
    assert f"bench new-site {SITE} failed, and so did its clean-up" in result.stderr
    assert (bench / "sites" / SITE / "site_config.json").is_file()
    assert read_marker(bench)["state"] == "creating"  # type: ignore[index]


def test_a_user_creation_failure_is_cleaned_up(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = create_site_env(frappe_fakes, tmp_path, ports, STANDIN_FAIL_NEW_SITE="create-user")
    result = run_script("create-site.sh", env)

    assert result.returncode == 1
    assert "Operation CREATE USER failed" in result.stderr
    assert not (bench / "sites" / SITE).exists()
    assert read_marker(bench) is None


def test_a_site_made_before_the_marker_is_adopted(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    site = bench / "sites" / SITE
    site.mkdir()
    (site / "site_config.json").write_text('{"db_name": "_old1", "db_password": "p"}')
    new_database_server(
        db, DB_ROOT_PASSWORD, users={"_old1@%": "p"}, databases={"_old1": {"apps": ["frappe"]}}
    )

    result = run_script("create-site.sh", create_site_env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [["bench", "--site", SITE, "list-apps"]]
    assert read_marker(bench)["state"] == "created"  # type: ignore[index]
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

    result = run_script("create-site.sh", create_site_env(frappe_fakes, tmp_path, ports))

    assert result.returncode == 1
    assert "Access denied for user '_3b6f'" in result.stderr
    assert "this job did not create it" in result.stderr and "left untouched" in result.stderr
    assert frappe_fakes.calls("mariadb") == []
    assert database_state(db)["databases"] == {"_3b6f": {"apps": ["frappe"], "enable_scheduler": 0}}
    assert (site / "site_config.json").is_file() and half_made(bench) == []
    assert read_marker(bench) is None


def test_a_scheduler_switch_on_that_failed_is_retried(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = create_site_env(frappe_fakes, tmp_path, ports, STANDIN_FAIL="scheduler enable")
    first = run_script("create-site.sh", env)
    assert first.returncode == 1
    assert "enabling its scheduler failed; the next run tries again" in first.stderr
    frappe_fakes.log.write_text("")

    del env["STANDIN_FAIL"]
    result = run_script("create-site.sh", env)

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [ENABLE_SCHEDULER]
    assert read_marker(bench)["scheduler"] == "enabled"  # type: ignore[index]


def test_a_failed_switch_on_no_longer_wanted_is_dropped(
    frappe_fakes: FakeBin, tmp_path: Path, ports: dict[str, socket.socket], bench: Path, db: Path
) -> None:
    env = create_site_env(frappe_fakes, tmp_path, ports, STANDIN_FAIL="scheduler enable")
    assert run_script("create-site.sh", env).returncode == 1
    frappe_fakes.log.write_text("")

    del env["STANDIN_FAIL"]
    result = run_script("create-site.sh", {**env, "ENABLE_SCHEDULER": "0"})

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == []
    assert "scheduler" not in read_marker(bench)  # type: ignore[operator]
