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
    bench = make_bench(tmp_path, {}, configured=False)  # the configurator's job
    (bench / "apps" / "brandclub").mkdir()  # beside make_bench's frappe and erpnext
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
        FRAPPE_WORKERS="{}",
    )
    return frappe_fakes.env(**{**defaults, **extra})


# What the configurator writes into common_site_config.json, with the types bench set-config
# -g (strings) and -gp (numbers) would give.
EXPECTED = {
    "db_host": "mariadb",
    "db_port": 3306,
    "redis_cache": "redis://redis-cache:6379",
    "redis_queue": REDIS_QUEUE,
    "redis_socketio": REDIS_QUEUE,
    "socketio_port": 9000,
    "host_name": "https://dev.brandclub.com",
    "workers": {},
}
# Without mailpit the site-config mail fallback is off: an empty mail_server.
NO_MAIL = {"mail_server": "", "disable_mail_smtp_authentication": 0}
MAILPIT = {
    "mail_server": "mailpit",
    "mail_port": 1025,
    "use_ssl": 0,
    "use_tls": 0,
    "disable_mail_smtp_authentication": 1,
}


def _common(bench: Path) -> dict:
    return json.loads((bench / "sites" / "common_site_config.json").read_text())


def test_lists_the_apps_and_sets_the_global_config(frappe_fakes: FakeBin, bench: Path) -> None:
    result = run_script("configurator.sh", _env(frappe_fakes, bench))

    assert result.returncode == 0, result.stderr
    assert (bench / "sites" / "apps.txt").read_text() == "brandclub\nerpnext\nfrappe\n"
    assert _common(bench) == {**EXPECTED, **NO_MAIL}
    # Frappe's own layout of the file.
    text = (bench / "sites" / "common_site_config.json").read_text()
    assert text == json.dumps({**EXPECTED, **NO_MAIL}, indent=1, sort_keys=True)
    # The files a running Frappe reads are never rewritten in place by bench set-config.
    assert frappe_fakes.calls() == []
    assert "queue-pass" not in result.stdout + result.stderr


def test_keeps_what_others_wrote_into_the_config(frappe_fakes: FakeBin, bench: Path) -> None:
    common = bench / "sites" / "common_site_config.json"
    common.write_text(json.dumps({"default_site": "a.test", "db_host": "old-host"}))
    assert run_script("configurator.sh", _env(frappe_fakes, bench)).returncode == 0
    assert _common(bench) == {"default_site": "a.test", **EXPECTED, **NO_MAIL}


def test_replaces_the_files_whole_and_only_when_a_value_changes(
    frappe_fakes: FakeBin, bench: Path
) -> None:
    """A reader of common_site_config.json or apps.txt sees the old file or the new one, never a
    truncated one: the new file is written beside and renamed over the old (a new inode), with
    the old file's mode, and an unchanged value writes nothing."""
    sites = bench / "sites"
    assert run_script("configurator.sh", _env(frappe_fakes, bench)).returncode == 0
    common, apps = sites / "common_site_config.json", sites / "apps.txt"
    common.chmod(0o640)
    before = {path: path.stat() for path in (common, apps)}

    again = run_script("configurator.sh", _env(frappe_fakes, bench))
    assert again.returncode == 0, again.stderr
    assert "common_site_config.json unchanged" in again.stdout
    for path, stat in before.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    changed = run_script(
        "configurator.sh", _env(frappe_fakes, bench, HOST_NAME="https://other.brandclub.com")
    )
    assert changed.returncode == 0, changed.stderr
    assert "common_site_config.json changed" in changed.stdout
    assert common.stat().st_ino != before[common].st_ino
    assert common.stat().st_mode & 0o777 == 0o640
    assert _common(bench)["host_name"] == "https://other.brandclub.com"
    assert apps.stat().st_ino == before[apps].st_ino
    # Nothing left beside them.
    assert not [path.name for path in sites.iterdir() if path.name.startswith(".")]


def test_points_frappes_outgoing_mail_at_mailpit(frappe_fakes: FakeBin, bench: Path) -> None:
    result = run_script(
        "configurator.sh", _env(frappe_fakes, bench, MAIL_SERVER="mailpit", MAIL_PORT="1025")
    )

    assert result.returncode == 0, result.stderr
    assert _common(bench) == {**EXPECTED, **MAILPIT}


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
    assert not (bench / "sites" / "apps.txt").exists()
    assert not (bench / "sites" / "common_site_config.json").exists()


@pytest.mark.parametrize("variable", ["DB_PORT", "SOCKETIO_PORT", "MAIL_PORT"])
def test_numbers_must_be_numbers(frappe_fakes: FakeBin, bench: Path, variable: str) -> None:
    env = _env(frappe_fakes, bench, MAIL_SERVER="mailpit", **{variable: "7d"})
    result = run_script("configurator.sh", env)

    assert result.returncode == 1
    assert f"{variable} must be a whole number, got '7d'" in result.stderr
    assert not (bench / "sites" / "common_site_config.json").exists()


def test_a_config_that_does_not_parse_fails_the_job_and_is_left_as_it_is(
    frappe_fakes: FakeBin, bench: Path
) -> None:
    common = bench / "sites" / "common_site_config.json"
    common.write_text('{"db_host": ')
    result = run_script("configurator.sh", _env(frappe_fakes, bench))

    assert result.returncode != 0
    assert common.read_text() == '{"db_host": '


def test_writes_frappes_workers_map(frappe_fakes: FakeBin, bench: Path) -> None:
    """A queue of the platform's own reaches Frappe only through `workers`: the map is written
    as given, replacing whatever map was there."""
    common = bench / "sites" / "common_site_config.json"
    common.write_text(json.dumps({"workers": {"old": {"timeout": 60}}}))
    workers = '{"reports": {"timeout": 3000}}'
    result = run_script("configurator.sh", _env(frappe_fakes, bench, FRAPPE_WORKERS=workers))

    assert result.returncode == 0, result.stderr
    assert _common(bench)["workers"] == {"reports": {"timeout": 3000}}


@pytest.mark.parametrize("workers", ["[]", "reports", '"x"'])
def test_a_workers_map_that_is_no_object_is_refused(
    frappe_fakes: FakeBin, bench: Path, workers: str
) -> None:
    result = run_script("configurator.sh", _env(frappe_fakes, bench, FRAPPE_WORKERS=workers))

    assert result.returncode == 1
    assert f"FRAPPE_WORKERS must be a JSON object, got '{workers}'" in result.stderr
    assert not (bench / "sites" / "common_site_config.json").exists()
