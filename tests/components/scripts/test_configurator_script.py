"""configurator.sh: the bench's global config, with the stand-in Frappe and a real bench folder
(issue 9 items 9, 10 and 19)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_commands import FakeBin, make_bench, run_script

REDIS_QUEUE = "redis://:queue-pass@redis-queue:6379"


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    bench = make_bench(tmp_path, {})
    for app in ("frappe", "erpnext", "brandclub"):
        (bench / "apps" / app).mkdir(parents=True)
    return bench


def _env(frappe_fakes: FakeBin, bench: Path, **extra: str) -> dict[str, str]:
    defaults = dict(
        BENCH_DIR=str(bench),
        DB_HOST="mariadb",
        DB_PORT="3306",
        REDIS_CACHE="redis://redis-cache:6379",
        REDIS_QUEUE=REDIS_QUEUE,
        REDIS_SOCKETIO=REDIS_QUEUE,
        SOCKETIO_PORT="9000",
        HOST_NAME="https://dev.brandclub.com",
    )
    return frappe_fakes.env(**{**defaults, **extra})


EXPECTED = [
    ["bench", "set-config", "-g", "db_host", "mariadb"],
    ["bench", "set-config", "-gp", "db_port", "3306"],
    ["bench", "set-config", "-g", "redis_cache", "redis://redis-cache:6379"],
    ["bench", "set-config", "-g", "redis_queue", REDIS_QUEUE],
    ["bench", "set-config", "-g", "redis_socketio", REDIS_QUEUE],
    ["bench", "set-config", "-gp", "socketio_port", "9000"],
    ["bench", "set-config", "-g", "host_name", "https://dev.brandclub.com"],
]
# Without mailpit the site-config mail fallback is off: an empty mail_server.
NO_MAIL = [
    ["bench", "set-config", "-g", "mail_server", ""],
    ["bench", "set-config", "-gp", "disable_mail_smtp_authentication", "0"],
]
MAILPIT = [
    ["bench", "set-config", "-g", "mail_server", "mailpit"],
    ["bench", "set-config", "-gp", "mail_port", "1025"],
    ["bench", "set-config", "-gp", "use_ssl", "0"],
    ["bench", "set-config", "-gp", "use_tls", "0"],
    ["bench", "set-config", "-gp", "disable_mail_smtp_authentication", "1"],
]


def _common(bench: Path) -> dict:
    return json.loads((bench / "sites" / "common_site_config.json").read_text())


def test_lists_the_apps_and_sets_the_global_config(frappe_fakes: FakeBin, bench: Path) -> None:
    result = run_script("configurator.sh", _env(frappe_fakes, bench))

    assert result.returncode == 0, result.stderr
    assert (bench / "sites" / "apps.txt").read_text() == "brandclub\nerpnext\nfrappe\n"
    assert frappe_fakes.calls() == [*EXPECTED, *NO_MAIL]
    assert _common(bench)["host_name"] == "https://dev.brandclub.com"
    assert _common(bench)["mail_server"] == ""
    assert "queue-pass" not in result.stdout + result.stderr


def test_points_frappes_outgoing_mail_at_mailpit(frappe_fakes: FakeBin, bench: Path) -> None:
    result = run_script(
        "configurator.sh", _env(frappe_fakes, bench, MAIL_SERVER="mailpit", MAIL_PORT="1025")
    )

    assert result.returncode == 0, result.stderr
    assert frappe_fakes.calls() == [*EXPECTED, *MAILPIT]
    common = _common(bench)
    assert (common["mail_server"], common["mail_port"], common["use_tls"]) == ("mailpit", 1025, 0)
    assert common["disable_mail_smtp_authentication"] == 1


def test_bench_backup_retention_is_not_set_any_more(frappe_fakes: FakeBin, bench: Path) -> None:
    """keep_backups_for_hours only prunes sites/<site>/private/backups, which the backup
    service never writes to (it passes --backup-path): the setting protected nothing."""
    result = run_script("configurator.sh", _env(frappe_fakes, bench, KEEP_BACKUPS_FOR_HOURS="192"))

    assert result.returncode == 0, result.stderr
    assert "keep_backups_for_hours" not in _common(bench)


def test_a_missing_variable_fails_before_changing_anything(
    frappe_fakes: FakeBin, bench: Path
) -> None:
    env = _env(frappe_fakes, bench)
    del env["REDIS_CACHE"]
    env["SOCKETIO_PORT"] = ""
    result = run_script("configurator.sh", env)

    assert result.returncode == 1
    assert ("missing required environment variable(s): REDIS_CACHE SOCKETIO_PORT") in result.stderr
    assert frappe_fakes.calls() == []
    assert not (bench / "sites" / "apps.txt").exists()


@pytest.mark.parametrize("variable", ["DB_PORT", "SOCKETIO_PORT", "MAIL_PORT"])
def test_numbers_must_be_numbers(frappe_fakes: FakeBin, bench: Path, variable: str) -> None:
    env = _env(frappe_fakes, bench, MAIL_SERVER="mailpit", **{variable: "7d"})
    result = run_script("configurator.sh", env)

    assert result.returncode == 1
    assert f"{variable} must be a whole number, got '7d'" in result.stderr
    assert frappe_fakes.calls() == []


def test_stops_at_the_first_failing_setting(frappe_fakes: FakeBin, bench: Path) -> None:
    result = run_script("configurator.sh", _env(frappe_fakes, bench, BENCH_FAIL="redis_cache"))

    assert result.returncode == 1
    assert frappe_fakes.calls() == EXPECTED[:3]
