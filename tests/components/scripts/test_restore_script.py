"""restore.sh: one site from the newest backup set of a day of its own or another site's backups,
with the stand-in Frappe (issue 9 items 2, 3 and 16)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import fake_commands
from age_keys import AgeKeys, new_keys
from fake_commands import FakeBin, make_bench, new_database_server, run_script

SITE = "brandclub.com"
STAGING = "staging.brandclub.com"
ROOT_PASSWORD = "root-Pa55-word"
DAY = "2026-02-20"
NEWEST = "20260220_020000-brandclub_com"
OLDER = "20260220_010000-brandclub_com"
BACKUP_KEY = "bAcKuP-kEy-0123456789abcdefghijklmnopqrstu="
SITE_KEY = "sItE-kEy-0123456789abcdefghijklmnopqrstuvw="


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    """prod's (brandclub.com's) backups, as the backup service lays them out."""
    root = tmp_path / "backups"
    for day, sets in ((DAY, (OLDER, NEWEST)), ("2026-02-19", ("20260219_020000-brandclub_com",))):
        folder = root / SITE / day
        folder.mkdir(parents=True)
        for backup_set in sets:
            fake_commands.write_backup_set(folder, backup_set, SITE)
            config = {"db_name": "_prod", "encryption_key": f"{BACKUP_KEY}{backup_set[:15]}"}
            (folder / f"{backup_set}-site_config_backup.json").write_text(json.dumps(config))
    # Other sites' sets in the same place, newer, must never be picked.
    for other in ("shop_brandclub_com", "my-brandclub_com"):
        (root / SITE / DAY / f"20260220_030000-{other}-database.sql.gz").write_text("x")
    return root


def _env(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path, site: str = SITE, **extra: str
) -> dict[str, str]:
    (tmp_path / "db-root").write_text(ROOT_PASSWORD + "\n")
    target = {
        "db_name": "_a1",
        "db_password": "pa",
        "pause_scheduler": 1,
        "encryption_key": SITE_KEY,
    }
    bench = make_bench(tmp_path, {site: target})
    db = new_database_server(
        tmp_path / "db.json",
        ROOT_PASSWORD,
        users={"_a1@%": "pa"},
        databases={"_a1": {"apps": ["frappe"], "enable_scheduler": 1}},
    )
    defaults = dict(
        BENCH_DIR=str(bench),
        STANDIN_DB=str(db),
        SITE_NAME=site,
        SOURCE_SITE=SITE,
        BACKUP_DATE=DAY,
        BACKUP_ROOT=str(backups),
        DB_ROOT_PASSWORD_FILE=str(tmp_path / "db-root"),
    )
    return frappe_fakes.env(**{**defaults, **extra})


# The site's modes are written into its config file by the job itself (lib/config-files.sh),
# not with bench set-config: the tests read the file.
MIGRATE = ["bench", "--site", SITE, "migrate"]
LOAD_DUMP = ["mariadb", "-u", "_a1", "-h", "mariadb", "-P", "3306", "_a1"]


def _restore(folder: Path, *files: str, site: str = SITE) -> list[str]:
    return [
        "bench",
        "--site",
        site,
        "restore",
        str(folder / f"{NEWEST}-database.sql.gz"),
        *files,
        "--db-root-username",
        "root",
        "--db-root-password",
        ROOT_PASSWORD,
        "--force",
    ]


def _with_files(folder: Path) -> list[str]:
    return [
        "--with-public-files",
        str(folder / f"{NEWEST}-files.tar"),
        "--with-private-files",
        str(folder / f"{NEWEST}-private-files.tar"),
    ]


def _key(env: dict[str, str], site: str = SITE) -> object:
    return fake_commands.site_config(Path(env["BENCH_DIR"]), site)["encryption_key"]


def _mark_created_for(env: dict[str, str], site: str, request: str) -> None:
    markers = Path(env["BENCH_DIR"]) / "sites" / ".brandclub" / "sites"
    markers.mkdir(parents=True)
    marker = {"site": site, "state": "created", "restoreRequest": request}
    (markers / f"{site}.json").write_text(json.dumps(marker))


def test_restores_the_newest_set_of_the_day_then_migrates(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, backups)
    result = run_script("restore.sh", env)

    assert result.returncode == 0, result.stderr
    folder = backups / SITE / DAY
    assert frappe_fakes.calls("bench") == [_restore(folder, *_with_files(folder)), MIGRATE]
    # Frappe's restore loads the dump with the client, as the site's own user.
    assert frappe_fakes.calls("mariadb") == [LOAD_DUMP]
    config = fake_commands.site_config(Path(env["BENCH_DIR"]), SITE)
    assert (config["maintenance_mode"], config["pause_scheduler"]) == (0, 1)
    # The newest set's dump is the database now, its files the site's.
    restored = fake_commands.database_state(Path(env["STANDIN_DB"]))["databases"]["_a1"]
    assert restored["notes"] == [NEWEST]
    site_dir = Path(env["BENCH_DIR"]) / "sites" / SITE
    for where in ("public", "private"):
        assert (site_dir / where / "files" / f"{NEWEST}.txt").read_text() == NEWEST
    assert ROOT_PASSWORD not in result.stdout + result.stderr
    # the site's own key stays: no request says otherwise (auto, site not made for it)
    assert _key(env) == SITE_KEY
    assert "keeps its own encryption key, which is not the backup's" in result.stderr


def test_restores_another_sites_backups(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    """staging from prod's backups: the files are named after prod (issue 9 item 2)."""
    env = _env(frappe_fakes, tmp_path, backups, site=STAGING)
    result = run_script("restore.sh", env)

    assert result.returncode == 0, result.stderr
    folder = backups / SITE / DAY
    restore = _restore(folder, *_with_files(folder), site=STAGING)
    assert frappe_fakes.calls() == [restore, LOAD_DUMP, ["bench", "--site", STAGING, "migrate"]]
    assert f"restored {STAGING} from {SITE}'s backups of {DAY}" in result.stdout


def test_the_backups_encryption_key_is_carried_on_request(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, backups, site=STAGING, USE_BACKUP_ENCRYPTION_KEY="true")
    result = run_script("restore.sh", env)

    assert result.returncode == 0, result.stderr
    assert _key(env, STAGING) == f"{BACKUP_KEY}{NEWEST[:15]}"
    assert "encryption key: the backup's, written into" in result.stdout
    assert BACKUP_KEY not in result.stdout + result.stderr


def test_auto_carries_the_key_into_a_site_made_for_this_restore(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    """Disaster recovery: create-site made the site in the same deploy for this request."""
    env = _env(frappe_fakes, tmp_path, backups, RESTORE_REQUEST=f"{SITE}@{DAY}")
    _mark_created_for(env, SITE, f"{SITE}@{DAY}")
    result = run_script("restore.sh", env)

    assert result.returncode == 0, result.stderr
    assert _key(env) == f"{BACKUP_KEY}{NEWEST[:15]}"
    assert f"{SITE} was created for this restore" in result.stdout


@pytest.mark.parametrize(
    ("marker_request", "setting"),
    [("brandclub.com@2026-01-01", "auto"), (f"{SITE}@{DAY}", "false")],
    ids=["made-for-another-request", "switched-off"],
)
def test_the_site_keeps_its_key_otherwise(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path, marker_request: str, setting: str
) -> None:
    env = _env(
        frappe_fakes,
        tmp_path,
        backups,
        RESTORE_REQUEST=f"{SITE}@{DAY}",
        USE_BACKUP_ENCRYPTION_KEY=setting,
    )
    _mark_created_for(env, SITE, marker_request)
    result = run_script("restore.sh", env)

    assert result.returncode == 0, result.stderr
    assert _key(env) == SITE_KEY
    assert "useBackupEncryptionKey to true" in result.stderr


def test_carrying_needs_the_sets_site_config_backup(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    (backups / SITE / DAY / f"{NEWEST}-site_config_backup.json").unlink()
    env = _env(frappe_fakes, tmp_path, backups, USE_BACKUP_ENCRYPTION_KEY="true")
    result = run_script("restore.sh", env)

    assert result.returncode == 1
    assert f"has no {NEWEST}-site_config_backup.json" in result.stderr
    assert frappe_fakes.calls() == []


def test_file_archives_are_optional(frappe_fakes: FakeBin, tmp_path: Path, backups: Path) -> None:
    folder = backups / SITE / DAY
    (folder / f"{NEWEST}-files.tar").unlink()
    (folder / f"{NEWEST}-private-files.tar").unlink()
    result = run_script("restore.sh", _env(frappe_fakes, tmp_path, backups))

    assert result.returncode == 0, result.stderr
    # the older set's archives belong to another backup: never mixed in
    assert frappe_fakes.calls()[0] == _restore(folder)


def test_an_encrypted_set_is_refused(frappe_fakes: FakeBin, tmp_path: Path, backups: Path) -> None:
    (backups / SITE / DAY / "20260220_040000-brandclub_com-database-enc.sql.gz").write_text("x")
    result = run_script("restore.sh", _env(frappe_fakes, tmp_path, backups))

    assert result.returncode == 1
    assert "(20260220_040000) is encrypted" in result.stderr
    assert frappe_fakes.calls() == []


def test_a_missing_day_lists_the_days_there_are(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    result = run_script(
        "restore.sh", _env(frappe_fakes, tmp_path, backups, BACKUP_DATE="2026-02-21")
    )

    assert result.returncode == 1
    assert "no backups of brandclub.com for 2026-02-21" in result.stderr
    assert "dates available: 2026-02-19 2026-02-20" in result.stderr
    assert frappe_fakes.calls() == []


def test_a_day_without_the_sources_database_backup_says_what_is_there(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    for dump in (backups / SITE / DAY).glob("????????_??????-brandclub_com-database.sql.gz"):
        dump.unlink()
    result = run_script("restore.sh", _env(frappe_fakes, tmp_path, backups))

    assert result.returncode == 1
    assert "no database backup <YYYYMMDD_HHMMSS>-brandclub_com-database.sql.gz" in result.stderr
    assert (
        "database backups there: 20260220_030000-my-brandclub_com-database.sql.gz "
        "20260220_030000-shop_brandclub_com-database.sql.gz"
    ) in result.stderr
    assert frappe_fakes.calls() == []


@pytest.mark.parametrize(
    ("failing", "calls_after_hold"),
    [("restore", 1), ("migrate", 2)],
)
def test_a_failure_keeps_the_site_in_maintenance(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path, failing: str, calls_after_hold: int
) -> None:
    """A partly restored database must not be served: the site stays held, its previous
    modes recorded for the next successful run (issue 9 item 16)."""
    env = _env(frappe_fakes, tmp_path, backups, STANDIN_FAIL=f"{SITE} {failing}")
    result = run_script("restore.sh", env)

    assert result.returncode == 1
    calls = frappe_fakes.calls("bench")
    assert [call[3] for call in calls] == ["restore", "migrate"][:calls_after_hold]
    assert f"bench {failing} of brandclub.com failed" in result.stderr
    assert f"site(s) {SITE} stay in maintenance mode" in result.stderr
    config = fake_commands.site_config(Path(env["BENCH_DIR"]), SITE)
    assert (config["maintenance_mode"], config["pause_scheduler"]) == (1, 1)


def test_a_wrong_root_password_fails_the_restore(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path
) -> None:
    env = _env(frappe_fakes, tmp_path, backups)
    (tmp_path / "db-root").write_text("not-the-root-password")
    result = run_script("restore.sh", env)

    assert result.returncode == 1
    assert "Access denied for user 'root'" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"BACKUP_DATE": "20.02.2026"}, "BACKUP_DATE must be YYYY-MM-DD, got '20.02.2026'"),
        ({"SITE_NAME": "shop.brandclub.com"}, "site shop.brandclub.com does not exist"),
        ({"DB_ROOT_PASSWORD_FILE": "/nonexistent"}, "cannot read secret file /nonexistent"),
        ({"BACKUP_DATE": ""}, "missing required environment variable(s): BACKUP_DATE"),
        ({"USE_BACKUP_ENCRYPTION_KEY": "yes"}, "must be true, false or auto, got 'yes'"),
    ],
)
def test_bad_input_fails_before_touching_the_site(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path, extra: dict[str, str], message: str
) -> None:
    result = run_script("restore.sh", _env(frappe_fakes, tmp_path, backups, **extra))

    assert result.returncode == 1
    assert message in result.stderr
    assert frappe_fakes.calls() == []


# --- an off-site copy (restore.fromOffsite): encrypted with age, decrypted by the job ----------


@pytest.fixture
def keys(tmp_path: Path) -> AgeKeys:
    return new_keys(tmp_path / "keys")


@pytest.fixture
def fetched(backups: Path, keys: AgeKeys, tmp_path: Path) -> Path:
    """The day's backups as fetched back from off site: each file <file>.age, encrypted to the
    recipient by the real age, as the backup service sends them."""
    root = tmp_path / "fetched"
    folder = root / SITE / DAY
    folder.mkdir(parents=True)
    for plain in (backups / SITE / DAY).iterdir():
        sealed = folder / f"{plain.name}.age"
        subprocess.run(
            ["age", "--encrypt", "--recipients-file", str(keys.recipients), "-o", str(sealed)],
            input=plain.read_bytes(),
            check=True,
            timeout=10,
        )
    return root


def _offsite_env(
    frappe_fakes: FakeBin, tmp_path: Path, fetched: Path, identity: Path
) -> dict[str, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    # The job's own temporary folder (its container's /tmp).
    return _env(
        frappe_fakes, tmp_path, fetched, OFFSITE_IDENTITY_FILE=str(identity), TMPDIR=str(scratch)
    )


def test_an_off_site_copy_is_decrypted_then_restored(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path, fetched: Path, keys: AgeKeys
) -> None:
    env = _offsite_env(frappe_fakes, tmp_path, fetched, keys.identity)
    result = run_script("restore.sh", env)

    assert result.returncode == 0, result.stderr
    [opened] = (tmp_path / "scratch").iterdir()
    assert frappe_fakes.calls("bench") == [_restore(opened, *_with_files(opened)), MIGRATE]
    # The very files the backup service encrypted, the fetched copy left as it was.
    original = backups / SITE / DAY
    assert sorted(path.name for path in opened.iterdir()) == sorted(
        path.name for path in original.iterdir()
    )
    for path in opened.iterdir():
        assert path.read_bytes() == (original / path.name).read_bytes()
    assert all(path.name.endswith(".age") for path in (fetched / SITE / DAY).iterdir())
    assert f"decrypted the off-site copy in {fetched / SITE / DAY}" in result.stdout
    assert keys.secret not in result.stdout + result.stderr


def test_the_wrong_identity_restores_nothing(
    frappe_fakes: FakeBin, tmp_path: Path, fetched: Path
) -> None:
    other = new_keys(tmp_path / "other-keys", "other")
    env = _offsite_env(frappe_fakes, tmp_path, fetched, other.identity)
    result = run_script("restore.sh", env)

    assert result.returncode == 1
    assert "could not decrypt" in result.stderr
    assert "must be the identity whose public recipient" in result.stderr
    assert frappe_fakes.calls() == []
    assert other.secret not in result.stdout + result.stderr


def test_from_offsite_needs_an_off_site_copy_there(
    frappe_fakes: FakeBin, tmp_path: Path, backups: Path, keys: AgeKeys
) -> None:
    env = _offsite_env(frappe_fakes, tmp_path, backups, keys.identity)
    result = run_script("restore.sh", env)

    assert result.returncode == 1
    assert "restore.fromOffsite is set, but" in result.stderr
    assert "holds no off-site copy (<file>.age): fetch it there first" in result.stderr
    assert frappe_fakes.calls() == []


def test_an_off_site_copy_without_the_identity_says_what_to_set(
    frappe_fakes: FakeBin, tmp_path: Path, fetched: Path
) -> None:
    result = run_script("restore.sh", _env(frappe_fakes, tmp_path, fetched))

    assert result.returncode == 1
    assert "holds an encrypted off-site copy (<file>.age): set restore.fromOffsite" in (
        result.stderr
    )
    assert frappe_fakes.calls() == []
