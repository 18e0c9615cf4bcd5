"""The prod backup loop, run for real with the stand-in Frappe's `bench` (its `bench backup`
over the stand-in MariaDB, tests/fake_commands.py add_frappe) and a temp backup root."""

from __future__ import annotations

import gzip
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from age_keys import AGE_HEADER, GZIP_MAGIC, AgeKeys, decrypt, new_keys
from components.frappe.jobs import job_script
from components.frappe.processes import BACKUP_SCRIPT
from fake_commands import (
    BACKED_UP_DATABASES,
    IMAGE_BENCH,
    SCRIPTS,
    FakeBin,
    add_frappe,
    database_server,
    fake_boto3,
    s3_calls,
    sites_to_back_up,
)

SCRIPT = SCRIPTS / "backup-loop.sh"

# Fails for the site named in FAIL_RSYNC_SITE (the target's last path part); with FAKE_REMOTE,
# copies the directory into FAKE_REMOTE/<target's path>/, as rsync -a over SSH would.
FAKE_RSYNC = """
[[ -n ${FAIL_RSYNC_SITE:-} && ${@: -1} == */$FAIL_RSYNC_SITE/ ]] && exit 12
if [[ -n ${FAKE_REMOTE:-} ]]; then
  target=${@: -1}
  mkdir -p "$FAKE_REMOTE/${target#*:}" && cp -r "${@: -2:1}" "$FAKE_REMOTE/${target#*:}"
fi
exit 0
"""
SITES = tuple(BACKED_UP_DATABASES)
DATABASES = BACKED_UP_DATABASES
DB_PASSWORD = "site-db-password"
# Frappe 15's backup set (frappe/utils/backups.py set_backup_file_name), without --compress.
BACKUP_SET = re.compile(
    r"(\d{8}_\d{6})-(\w+)-(database\.sql\.gz|site_config_backup\.json|files\.tar|private-files\.tar)"
)


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _next_run_in(now: str, time: str) -> int:
    result = subprocess.run(
        ["bash", str(SCRIPT), "next-run-in", str(_epoch(now))],
        env={**os.environ, "BACKUP_TIME": time},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return int(result.stdout)


@pytest.mark.parametrize(
    ("now", "time", "seconds"),
    [
        ("2026-11-26T01:59:59", "02:00", 1),
        ("2026-11-26T02:00:00", "02:00", 86400),  # just ran: next is tomorrow, never zero
        ("2026-11-26T02:00:01", "02:00", 86399),
        ("2026-11-26T23:59:59", "00:00", 1),  # across midnight
        ("2026-12-31T23:30:00", "00:15", 45 * 60),  # across a year
        ("2026-03-29T00:30:00", "02:00", 90 * 60),  # a European DST night: UTC has none
        ("2026-11-26T10:00:00", "09:05", 23 * 3600 + 5 * 60),
    ],
)
def test_time_to_next_run(now: str, time: str, seconds: int) -> None:
    assert _next_run_in(now, time) == seconds


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    """The stand-in Frappe's `bench` and its `mysqldump` (fake_commands.add_frappe)."""
    fakes = FakeBin(tmp_path)
    add_frappe(fakes)
    return fakes


@pytest.fixture
def bench_env(tmp_path: Path, fakes: FakeBin) -> dict[str, str]:
    """Two sites as new-site leaves them (fake_commands.sites_to_back_up)."""
    return fakes.env(
        **sites_to_back_up(tmp_path, DATABASES, DB_PASSWORD),
        BACKUP_ROOT=str(tmp_path / "backups"),
        BACKUP_RETENTION_DAYS="7",
        BACKUP_ONCE="1",
    )


def _refuse_site_user(env: dict[str, str], site: str) -> None:
    """The site's database refuses its user (a password changed under it): Frappe's backup of it
    fails at the dump, as it would against MariaDB."""
    with database_server(Path(env["STANDIN_DB"])) as state:
        del state["users"][f"{DATABASES[site]}@%"]


def _backup_set(folder: Path, site: str) -> dict[str, Path]:
    """The dated folder's files, by part, after asserting they are one Frappe backup set of
    ``site``: one timestamp, the site's slug, each of the four parts once."""
    names = sorted(path.name for path in folder.iterdir())
    matches = [BACKUP_SET.fullmatch(name) for name in names]
    assert all(matches), names
    assert {(m[1], m[2]) for m in matches if m} == {(matches[0][1], site.replace(".", "_"))}
    return {m[3]: folder / m[0] for m in matches if m}


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _run_once(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )


def test_backs_up_every_site_into_a_dated_directory(
    bench_env: dict[str, str], fakes: FakeBin
) -> None:
    result = _run_once(bench_env)
    assert result.returncode == 0, result.stderr
    today = _today()
    root = Path(bench_env["BACKUP_ROOT"])
    for site in SITES:
        backup = _backup_set(root / site / today, site)
        assert len(backup) == 4  # with files
        dump = gzip.decompress(backup["database.sql.gz"].read_bytes()).decode()
        assert f"INSERT INTO `tabBrandclub Note` VALUES (1,'note of {site}');" in dump
        with tarfile.open(backup["private-files.tar"]) as tar:
            assert tar.getnames()[-1] == f"./{site}/private/files/private.txt"
        assert f"ok site={site}" in result.stdout
    # Each site's dump is taken as the site's own database user.
    assert [call[call.index("-u") + 1] for call in fakes.calls("mysqldump")] == list(
        DATABASES.values()
    )
    assert fakes.calls("bench") == [
        [
            "bench",
            "--site",
            site,
            "backup",
            "--with-files",
            "--backup-path",
            str(root / site / today),
        ]
        for site in SITES
    ]
    assert result.stdout.splitlines()[-1].endswith("backup: run finished: 2 ok, 0 failed")
    assert "offsite" not in result.stdout


def test_prunes_dated_directories_past_retention(bench_env: dict[str, str]) -> None:
    site_root = Path(bench_env["BACKUP_ROOT"]) / "brandclub.com"
    today = datetime.now(UTC).date()
    kept = [today - timedelta(days=n) for n in (1, 6, 7)]
    pruned = [today - timedelta(days=n) for n in (8, 30)]
    for day in kept + pruned:
        (site_root / day.isoformat()).mkdir(parents=True)
    (site_root / "notes").mkdir()  # not a dated directory: never touched

    result = _run_once(bench_env)
    assert result.returncode == 0, result.stderr
    for day in kept:
        assert (site_root / day.isoformat()).is_dir(), day
    for day in pruned:
        assert not (site_root / day.isoformat()).exists(), day
        assert f"pruned {site_root / day.isoformat()}" in result.stdout
    assert (site_root / "notes").is_dir()


def test_a_failing_site_is_logged_and_fails_the_run(bench_env: dict[str, str]) -> None:
    _refuse_site_user(bench_env, "shop.brandclub.com")
    result = _run_once(bench_env)
    assert result.returncode == 1
    assert "FAILED site=shop.brandclub.com" in result.stdout
    assert "mysqldump: Got error: 1045" in result.stderr
    assert "ok site=brandclub.com" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("backup: run finished: 1 ok, 1 failed")


def test_a_failed_backup_prunes_nothing(bench_env: dict[str, str]) -> None:
    old = Path(bench_env["BACKUP_ROOT"]) / "shop.brandclub.com" / "2020-01-01"
    old.mkdir(parents=True)
    _refuse_site_user(bench_env, "shop.brandclub.com")
    result = _run_once(bench_env)
    assert result.returncode == 1
    assert old.is_dir()  # failing runs must not use up the last good backups
    # Frappe removes what a failed step wrote: no partial dump passes for a backup.
    assert list((old.parent / _today()).iterdir()) == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BACKUP_TIME", "2:00", "BACKUP_TIME must be HH:MM in UTC (00:00 to 23:59), got '2:00'"),
        ("BACKUP_TIME", "24:00", "BACKUP_TIME must be HH:MM"),
        ("BACKUP_TIME", "02:60", "BACKUP_TIME must be HH:MM"),
        ("BACKUP_TIME", "02:00 ", "BACKUP_TIME must be HH:MM"),
        ("BACKUP_RETENTION_DAYS", "0", "BACKUP_RETENTION_DAYS must be a positive whole number"),
        ("BACKUP_RETENTION_DAYS", "-3", "BACKUP_RETENTION_DAYS must be a positive whole number"),
        ("BACKUP_RETENTION_DAYS", "7d", "BACKUP_RETENTION_DAYS must be a positive whole number"),
        ("OFFSITE_KIND", "ftp", "OFFSITE_KIND must be none, s3 or rsync, got 'ftp'"),
        ("OFFSITE_KIND", "s3", "OFFSITE_KIND=s3 needs OFFSITE_S3_ENDPOINT"),
        ("OFFSITE_KIND", "rsync", "OFFSITE_KIND=rsync needs OFFSITE_RSYNC_TARGET"),
    ],
)
def test_bad_settings_stop_the_service_at_start(
    bench_env: dict[str, str], fakes: FakeBin, variable: str, value: str, message: str
) -> None:
    result = _run_once({**bench_env, variable: value})
    assert result.returncode == 2
    assert message in result.stderr
    assert fakes.calls() == []


def test_the_loop_validates_before_it_sleeps(bench_env: dict[str, str]) -> None:
    env = {**bench_env, "BACKUP_ONCE": "0", "BACKUP_TIME": "25:00"}
    result = _run_once(env)
    assert result.returncode == 2
    assert "BACKUP_TIME must be HH:MM" in result.stderr


def test_the_service_runs_this_script_with_its_library_inlined() -> None:
    assert job_script("backup-loop.sh") == BACKUP_SCRIPT
    assert 'source "$SCRIPT_DIR' not in BACKUP_SCRIPT
    assert (SCRIPTS / "lib" / "loop-pause.sh").read_text().rstrip("\n") in BACKUP_SCRIPT


S3_SECRET = "s3-Secret-Key"
# Where the stand-in rsync's target lives on this machine: FAKE_REMOTE + the target's path.
REMOTE_PATH = "/srv/brandclub"


@pytest.fixture
def keys(tmp_path: Path) -> AgeKeys:
    """A real age key pair: the service gets the recipient, the test keeps the identity."""
    return new_keys(tmp_path / "keys")


@pytest.fixture
def s3_env(
    bench_env: dict[str, str], fakes: FakeBin, tmp_path: Path, keys: AgeKeys
) -> dict[str, str]:
    # The bench's Python, recorded, then the real interpreter with the stand-in boto3.
    fakes.add("bench-python", f'exec "{sys.executable}" "$@"')
    (tmp_path / "s3-secret").write_text(S3_SECRET)
    return {
        **bench_env,
        "OFFSITE_KIND": "s3",
        "OFFSITE_PYTHON": str(fakes.dir / "bench-python"),
        "OFFSITE_S3_ENDPOINT": "https://s3.example.net",
        "OFFSITE_S3_BUCKET": "brandclub-backups",
        "OFFSITE_S3_PREFIX": "/prod/",
        "OFFSITE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "OFFSITE_S3_SECRET_KEY_FILE": str(tmp_path / "s3-secret"),
        "OFFSITE_AGE_RECIPIENTS_FILE": str(keys.recipients),
        "PYTHONPATH": str(fake_boto3(tmp_path)),
        "FAKE_S3_CALLS": str(tmp_path / "s3-calls"),
        "FAKE_S3_STORE": str(tmp_path / "bucket"),
    }


def test_s3_copies_each_site_right_after_its_backup(
    s3_env: dict[str, str], fakes: FakeBin, tmp_path: Path
) -> None:
    result = _run_once(s3_env)

    assert result.returncode == 0, result.stderr
    today, root = _today(), Path(s3_env["BACKUP_ROOT"])
    # The encrypted copy is put together beside the sites' folders, and gone after the copy.
    sealed = root / ".offsite-sealed" / today
    assert [call[:3] for call in fakes.calls() if call[0] != "mysqldump"] == [
        ["bench", "--site", "brandclub.com"],
        ["bench-python", "-", str(sealed)],
        ["bench", "--site", "shop.brandclub.com"],
        ["bench-python", "-", str(sealed)],
    ]
    assert not sealed.parent.exists()
    assert [call[3:] for call in fakes.calls("bench-python")] == [
        [f"{site}/{today}"] for site in SITES
    ]
    uploads = [call["upload"][1:] for call in s3_calls(tmp_path / "s3-calls") if "upload" in call]
    assert uploads == [
        ["brandclub-backups", f"prod/{site}/{today}/{path.name}.age"]
        for site in SITES
        for path in sorted(_backup_set(root / site / today, site).values())
    ]
    for site in SITES:
        assert (
            f"offsite ok site={site} target=s3://brandclub-backups/prod/{site}/{today}/"
        ) in result.stdout
    assert S3_SECRET not in repr(fakes.calls()) + result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].endswith("run finished: 2 ok, 0 failed")


def test_a_failed_copy_fails_the_run_and_keeps_local_backups(s3_env: dict[str, str]) -> None:
    result = _run_once({**s3_env, "FAKE_S3_FAIL": "1"})

    assert result.returncode == 1
    today, root = _today(), Path(s3_env["BACKUP_ROOT"])
    for site in SITES:
        assert f"ok site={site} path={root / site / today}" in result.stdout
        assert (
            f"offsite FAILED site={site} target=s3://brandclub-backups/prod/{site}/{today}/"
        ) in result.stdout
        assert len(list((root / site / today).glob("*-database.sql.gz"))) == 1
    assert "Could not connect to the endpoint URL" in result.stderr
    assert result.stdout.splitlines()[-1].endswith("run finished: 0 ok, 2 failed")


def test_s3_needs_a_readable_secret_file(s3_env: dict[str, str], fakes: FakeBin) -> None:
    result = _run_once({**s3_env, "OFFSITE_S3_SECRET_KEY_FILE": "/run/secrets/missing"})

    assert result.returncode == 2
    assert "OFFSITE_S3_SECRET_KEY_FILE: cannot read /run/secrets/missing" in result.stderr
    assert fakes.calls() == []


@pytest.fixture
def rsync_env(
    bench_env: dict[str, str], fakes: FakeBin, tmp_path: Path, keys: AgeKeys
) -> dict[str, str]:
    fakes.add("rsync", FAKE_RSYNC)
    fakes.add("ssh", "exit 255")  # rsync runs it; the stand-in rsync never does
    (tmp_path / "ssh-key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    return {
        **bench_env,
        "OFFSITE_KIND": "rsync",
        "OFFSITE_RSYNC_TARGET": f"backup@vault.example.net:{REMOTE_PATH}",
        "OFFSITE_SSH_KEY_FILE": str(tmp_path / "ssh-key"),
        "OFFSITE_AGE_RECIPIENTS_FILE": str(keys.recipients),
        "FAKE_REMOTE": str(tmp_path / "vault"),
    }


def test_rsync_copies_the_dated_directory_into_the_site_folder(
    rsync_env: dict[str, str], fakes: FakeBin, tmp_path: Path
) -> None:
    result = _run_once(rsync_env)

    assert result.returncode == 0, result.stderr
    today, root = _today(), Path(rsync_env["BACKUP_ROOT"])
    ssh = f"ssh -i {tmp_path / 'ssh-key'} -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
    assert fakes.calls("rsync") == [
        [
            "rsync",
            "-a",
            "--protect-args",
            "-e",
            ssh,
            "--",
            str(root / ".offsite-sealed" / today),
            f"backup@vault.example.net:/srv/brandclub/{site}/",
        ]
        for site in SITES
    ]
    assert [call[0] for call in fakes.calls()] == ["bench", "mysqldump", "rsync"] * 2
    assert (
        "offsite ok site=shop.brandclub.com target=backup@vault.example.net:/srv/brandclub/"
        "shop.brandclub.com/"
    ) in result.stdout


def test_rsync_can_pin_the_host_key(
    rsync_env: dict[str, str], fakes: FakeBin, tmp_path: Path
) -> None:
    (tmp_path / "known-hosts").write_text("vault.example.net ssh-ed25519 AAAA\n")
    result = _run_once({**rsync_env, "OFFSITE_SSH_KNOWN_HOSTS_FILE": str(tmp_path / "known-hosts")})

    assert result.returncode == 0, result.stderr
    assert fakes.calls("rsync")[0][4] == (
        f"ssh -i {tmp_path / 'ssh-key'} -o BatchMode=yes -o StrictHostKeyChecking=yes"
        f" -o UserKnownHostsFile={tmp_path / 'known-hosts'}"
    )


@pytest.mark.parametrize(
    "target",
    [
        "u@-oProxyCommand=touch${IFS}x:/p",
        "-e@host:/p",
        "u@host:relative",
        "u@host:/p\nx",
    ],
)
def test_an_rsync_target_that_is_not_user_host_path_stops_the_service(
    rsync_env: dict[str, str], fakes: FakeBin, target: str
) -> None:
    result = _run_once({**rsync_env, "OFFSITE_RSYNC_TARGET": target})

    assert result.returncode == 2
    assert "OFFSITE_RSYNC_TARGET must be user@host:/absolute/path" in result.stderr
    assert fakes.calls() == []


def test_an_http_s3_endpoint_stops_the_service(s3_env: dict[str, str], fakes: FakeBin) -> None:
    result = _run_once({**s3_env, "OFFSITE_S3_ENDPOINT": "http://minio.internal:9000"})

    assert result.returncode == 2
    assert "OFFSITE_S3_ENDPOINT must be an https:// URL" in result.stderr
    assert fakes.calls() == []


def test_one_failed_rsync_is_its_own_outcome(rsync_env: dict[str, str]) -> None:
    result = _run_once({**rsync_env, "FAIL_RSYNC_SITE": "brandclub.com"})

    assert result.returncode == 1
    assert "offsite FAILED site=brandclub.com target=backup@vault" in result.stdout
    assert "offsite ok site=shop.brandclub.com" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("run finished: 1 ok, 1 failed")
    local = Path(rsync_env["BACKUP_ROOT"]) / "brandclub.com" / _today()
    assert len(list(local.glob("*-database.sql.gz"))) == 1


@pytest.mark.parametrize("missing", ["rsync", "ssh"])
def test_rsync_without_the_tools_fails_clearly(
    rsync_env: dict[str, str], fakes: FakeBin, tmp_path: Path, missing: str
) -> None:
    # Only the fakes, bash and `date` on PATH, so the machine's own rsync/ssh cannot be found.
    (fakes.dir / missing).unlink()
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "date"):
        (tools / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    result = _run_once({**rsync_env, "PATH": f"{fakes.dir}:{tools}"})

    assert result.returncode == 2
    assert (
        f"OFFSITE_KIND=rsync needs {missing}, which is not installed in this image"
    ) in result.stderr
    assert fakes.calls() == []


# --- what leaves the node is encrypted (age) ---------------------------------------------------


def _dump(root: Path, site: str) -> Path:
    return _backup_set(root / site / _today(), site)["database.sql.gz"]


@pytest.fixture
def other_keys(tmp_path: Path) -> AgeKeys:
    """Somebody else's key pair."""
    return new_keys(tmp_path / "other-keys", "other")


def _assert_sealed_copy_of(sealed: Path, local: Path, keys: AgeKeys, other: AgeKeys) -> None:
    """``sealed`` is age's encryption of ``local``: useless without the identity, the very bytes
    with it."""
    content = sealed.read_bytes()
    assert content.startswith(AGE_HEADER)
    # Neither a gzip file nor the text it holds: the dump's notes, the tars' files, the
    # config's database password.
    assert not content.startswith(GZIP_MAGIC)
    plain = local.read_bytes()
    plain = gzip.decompress(plain) if plain.startswith(GZIP_MAGIC) else plain
    [marker] = [text for text in (b"note of ", b"file of ", DB_PASSWORD.encode()) if text in plain]
    assert marker not in content
    assert keys.decrypt(sealed) == local.read_bytes()
    opened = decrypt(sealed, other.identity)
    assert opened.returncode != 0 and opened.stdout == b""
    assert b"no identity matched" in opened.stderr


def _assert_every_copy_sealed(root: Path, remote: Path, keys: AgeKeys, other: AgeKeys) -> None:
    """Today's off-site copy of each site, under ``remote/<site>/<day>/``, is the local set
    file for file, each sealed with age; the local set stays Frappe's own plain files."""
    today = _today()
    for site in SITES:
        # The local backup is Frappe's own gzip, so a local restore needs no key.
        assert _dump(root, site).read_bytes().startswith(GZIP_MAGIC)
        local = _backup_set(root / site / today, site).values()
        copies = remote / site / today
        assert sorted(path.name for path in copies.iterdir()) == sorted(
            f"{path.name}.age" for path in local
        )
        for path in local:
            _assert_sealed_copy_of(copies / f"{path.name}.age", path, keys, other)


def test_s3_objects_are_encrypted_and_the_local_backups_are_not(
    s3_env: dict[str, str], keys: AgeKeys, other_keys: AgeKeys, tmp_path: Path
) -> None:
    result = _run_once(s3_env)

    assert result.returncode == 0, result.stderr
    bucket = tmp_path / "bucket" / "brandclub-backups" / "prod"
    _assert_every_copy_sealed(Path(s3_env["BACKUP_ROOT"]), bucket, keys, other_keys)
    assert keys.secret not in result.stdout + result.stderr


def test_rsync_sends_the_encrypted_copy_and_keeps_the_local_one_plain(
    rsync_env: dict[str, str], keys: AgeKeys, other_keys: AgeKeys, tmp_path: Path
) -> None:
    result = _run_once(rsync_env)

    assert result.returncode == 0, result.stderr
    root = Path(rsync_env["BACKUP_ROOT"])
    vault = tmp_path / "vault" / REMOTE_PATH.lstrip("/")
    _assert_every_copy_sealed(root, vault, keys, other_keys)
    assert not (root / ".offsite-sealed").exists()


@pytest.mark.parametrize("kind", ["s3", "rsync"])
def test_without_recipients_nothing_starts(
    s3_env: dict[str, str], rsync_env: dict[str, str], fakes: FakeBin, kind: str
) -> None:
    env = {**(s3_env if kind == "s3" else rsync_env)}
    del env["OFFSITE_AGE_RECIPIENTS_FILE"]
    result = _run_once(env)

    assert result.returncode == 2
    assert f"OFFSITE_KIND={kind} needs OFFSITE_AGE_RECIPIENTS_FILE" in result.stderr
    assert fakes.calls() == []


def test_an_unreadable_recipients_file_stops_the_service(
    rsync_env: dict[str, str], fakes: FakeBin
) -> None:
    result = _run_once({**rsync_env, "OFFSITE_AGE_RECIPIENTS_FILE": "/run/secrets/missing"})

    assert result.returncode == 2
    assert "OFFSITE_AGE_RECIPIENTS_FILE: cannot read /run/secrets/missing" in result.stderr
    assert fakes.calls() == []


@pytest.mark.parametrize("content", ["identity", "age1notarecipient\n", ""])
def test_a_file_without_a_usable_recipient_stops_the_service(
    s3_env: dict[str, str], fakes: FakeBin, keys: AgeKeys, tmp_path: Path, content: str
) -> None:
    """The private identity by mistake, a malformed line, nothing: age refuses each, and the
    service stops before any backup, never saying the file's content."""
    bad = tmp_path / "bad-recipients"
    bad.write_text(keys.identity.read_text() if content == "identity" else content)
    result = _run_once({**s3_env, "OFFSITE_AGE_RECIPIENTS_FILE": str(bad)})

    assert result.returncode == 2
    assert "OFFSITE_AGE_RECIPIENTS_FILE must hold age public recipients" in result.stderr
    assert "age: error:" in result.stderr  # age's own reason, which names a line, not a key
    assert keys.secret not in result.stdout + result.stderr
    assert fakes.calls() == []
    assert s3_calls(tmp_path / "s3-calls") == []


def test_without_age_the_service_stops_at_start(
    rsync_env: dict[str, str], fakes: FakeBin, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "date"):
        (tools / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    result = _run_once({**rsync_env, "PATH": f"{fakes.dir}:{tools}"})

    assert result.returncode == 2
    assert "OFFSITE_KIND=rsync needs age, which is not installed in this image" in result.stderr
    assert fakes.calls() == []


@pytest.mark.parametrize("kind", ["s3", "rsync"])
def test_a_failed_encryption_sends_nothing(
    s3_env: dict[str, str],
    rsync_env: dict[str, str],
    fakes: FakeBin,
    tmp_path: Path,
    kind: str,
) -> None:
    """age accepts the recipients at start but fails on a file (a full disk, say): that site's
    copy fails, nothing of it is sent, in clear or otherwise, and the local backup stays."""
    real_age = shutil.which("age")
    fakes.add("age", f'[[ " $* " != *" --output "* ]] && exec "{real_age}" "$@"\nexit 1')
    env = s3_env if kind == "s3" else rsync_env
    result = _run_once(env)

    assert result.returncode == 1
    root = Path(env["BACKUP_ROOT"])
    for site in SITES:
        assert f"offsite FAILED site={site}" in result.stdout
        assert _dump(root, site).read_bytes().startswith(GZIP_MAGIC)
    assert "nothing was sent" in result.stderr
    sent = [call[0] for call in fakes.calls() if call[0] not in ("age", "bench", "mysqldump")]
    assert sent == []
    assert s3_calls(tmp_path / "s3-calls") == []
    assert not (tmp_path / "vault").exists()
    assert not (root / ".offsite-sealed").exists()


# --- Stopping: SIGTERM to the loop (the container's PID 1) -------------------------------------

# How long the loop may take to stop on SIGTERM while it sleeps: at once (tens of milliseconds
# when measured), not at the end of the hour-long stop grace period; the margin is for a
# machine busy with the rest of the unit tier.
PROMPT_STOP_SECONDS = 5
# A backup of one site takes this long with SLOW_BENCH: long enough to signal in the middle.
SLOW_BACKUP_SECONDS = 2
# The stand-in Frappe's bench, slowed down: each backup waits before it starts, and the trace
# records when each began and ended.
SLOW_BENCH = f"""
echo "started $2" >> "$BENCH_TRACE"
sleep {SLOW_BACKUP_SECONDS}
"{IMAGE_BENCH}" "$@"
status=$?
echo "finished $2" >> "$BENCH_TRACE"
exit $status
"""
# `date -u +%s` answers FAKE_NOW (so the next run is 1 s away); any other call is the real
# date's (REAL_DATE: by its path, as this fake comes first on PATH).
FAKE_DATE = """
if [[ $* == "-u +%s" ]]; then echo "$FAKE_NOW"; exit 0; fi
exec "$REAL_DATE" "$@"
"""


class Loop:
    """The loop as a process, its stdout read line by line in a thread, so a test waits for a
    line with a deadline (a blocking read of a loop that never prints it would hang the test)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", str(SCRIPT)],
            env={**env, "BACKUP_ONCE": "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return
        raise AssertionError(f"no line with {text!r} within {timeout} s: {self.seen}")

    def stop(self, timeout: float) -> tuple[int, float, str]:
        """Exit status, seconds it took and the rest of stdout after a SIGTERM now."""
        signalled = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=timeout)
        seconds = time.monotonic() - signalled
        rest = []
        while (line := self.lines.get(timeout=5)) is not None:
            rest.append(line)
        return status, seconds, "\n".join(rest)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def loops() -> Iterator[Callable[[dict[str, str]], Loop]]:
    """Starts loops; whatever still runs at the end of the test is killed."""
    started: list[Loop] = []

    def start(env: dict[str, str]) -> Loop:
        started.append(Loop(env))
        return started[-1]

    yield start
    for loop in started:
        loop.kill()


def test_sigterm_while_sleeping_stops_the_loop_at_once(
    bench_env: dict[str, str], fakes: FakeBin, loops: Callable[[dict[str, str]], Loop]
) -> None:
    loop = loops(bench_env)
    loop.wait_for_line("scheduled daily at")
    status, seconds, out = loop.stop(timeout=PROMPT_STOP_SECONDS + 5)
    assert status == 0
    assert seconds < PROMPT_STOP_SECONDS, f"took {seconds:.1f} s to stop"
    assert "SIGTERM: stopping" in out and out.splitlines()[-1].endswith("backup: stopped")
    assert fakes.calls("bench") == []


@pytest.fixture
def slow_env(bench_env: dict[str, str], fakes: FakeBin, tmp_path: Path) -> dict[str, str]:
    """The loop 1 s before its run (a fake clock), with a bench that takes a while per site."""
    # Not recorded here: the stand-in's bench records its own calls.
    fakes.add("bench", SLOW_BENCH, record=False)
    fakes.add("date", FAKE_DATE, record=False)
    now = datetime(2026, 11, 26, 1, 59, 59, tzinfo=UTC)
    return {
        **bench_env,
        "BACKUP_TIME": "02:00",
        "FAKE_NOW": str(int(now.timestamp())),
        "REAL_DATE": shutil.which("date") or "/bin/date",
        "BENCH_TRACE": str(tmp_path / "bench-trace"),
    }


@pytest.mark.parametrize("signals", [1, 2], ids=["one SIGTERM", "a second SIGTERM"])
def test_sigterm_during_a_backup_finishes_the_run_then_stops(
    slow_env: dict[str, str],
    fakes: FakeBin,
    loops: Callable[[dict[str, str]], Loop],
    signals: int,
) -> None:
    loop = loops(slow_env)
    loop.wait_for_line("scheduled daily at")
    trace = Path(slow_env["BENCH_TRACE"])
    deadline = time.monotonic() + 10
    while not trace.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert trace.read_text() == f"started {SITES[0]}\n"
    for _ in range(signals - 1):
        loop.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    # Both sites still to do: the run takes them one after the other to their end.
    status, seconds, out = loop.stop(timeout=len(SITES) * SLOW_BACKUP_SECONDS + 10)
    assert status == 0, out
    assert trace.read_text().splitlines() == [
        line for site in SITES for line in (f"started {site}", f"finished {site}")
    ]
    lines = out.splitlines()
    assert lines[-2].endswith("backup: run finished: 2 ok, 0 failed"), out
    assert lines[-1].endswith("backup: stopped")
    if signals == 2:
        assert "SIGTERM again: still finishing the backup in progress, then stopping" in out
    # Stopped right after the run: no second run although the fake clock says it is time.
    assert len(fakes.calls("bench")) == len(SITES)
    assert seconds < len(SITES) * SLOW_BACKUP_SECONDS + PROMPT_STOP_SECONDS


def test_a_second_loop_waits_for_the_first_to_stop(
    bench_env: dict[str, str], fakes: FakeBin, loops: Callable[[dict[str, str]], Loop]
) -> None:
    """A replacement task started while the old one still runs (Swarm waits at most a minute
    for it) schedules nothing until the old loop has stopped; stopped itself, it just ends."""
    first = loops(bench_env)
    first.wait_for_line("scheduled daily at")
    second, third = loops(bench_env), loops(bench_env)
    second.wait_for_line("another backup loop holds")
    third.wait_for_line("another backup loop holds")
    status, seconds, out = third.stop(timeout=PROMPT_STOP_SECONDS + 5)
    assert status == 0 and "stopped before the other loop let go of the lock" in out, out
    assert seconds < PROMPT_STOP_SECONDS
    assert first.stop(timeout=PROMPT_STOP_SECONDS + 5)[0] == 0
    second.wait_for_line("scheduled daily at", timeout=5)
    assert fakes.calls("bench") == []
