"""prepare-backup-dir.sh: the backup service's host directory exists and the frappe user can
write to it (issue 9 item 4). A temporary directory stands for the node's `/` (HOST_ROOT); a
recording `chown` stands in for the real one, which only root may run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fake_commands import FakeBin, run_script

BACKUPS = "/opt/brand-club/backups"
# Not the test's own uid: the directory the test makes is never this user's.
OWNER = "4242:4343"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    root.mkdir()
    return root


@pytest.fixture
def fakes(tmp_path: Path) -> FakeBin:
    fakes = FakeBin(tmp_path)
    fakes.add("chown")
    return fakes


def _env(fakes: FakeBin, host: Path, **extra: str) -> dict[str, str]:
    defaults = dict(HOST_ROOT=str(host), BACKUP_DIR=BACKUPS, BACKUP_DIR_OWNER=OWNER)
    return fakes.env(**{**defaults, **extra})


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_directory_is_created_for_the_frappe_user(fakes: FakeBin, host: Path) -> None:
    result = run_script("prepare-backup-dir.sh", _env(fakes, host))

    assert result.returncode == 0, result.stderr
    directory = host / "opt" / "brand-club" / "backups"
    assert directory.is_dir()
    assert _mode(directory) == 0o750
    assert fakes.calls("chown") == [["chown", OWNER, "--", str(directory)]]
    assert f"created {BACKUPS}, owned {OWNER}, mode 0750" in result.stdout


ME, MY_GROUP = os.getuid(), os.getgid()


@pytest.mark.parametrize(
    ("wanted", "mode"),
    [
        (f"{ME}:{MY_GROUP}", 0o750),  # through the owner bits
        (f"4242:{MY_GROUP}", 0o770),  # through the group bits
        ("4242:4343", 0o1777),  # through the other bits, like /tmp
    ],
    ids=["owner", "group", "other"],
)
def test_a_writable_directory_is_left_alone(
    fakes: FakeBin, host: Path, wanted: str, mode: int
) -> None:
    directory = host / "opt" / "brand-club" / "backups"
    directory.mkdir(parents=True)
    directory.chmod(mode)
    result = run_script("prepare-backup-dir.sh", _env(fakes, host, BACKUP_DIR_OWNER=wanted))

    assert result.returncode == 0, result.stderr
    assert fakes.calls("chown") == []
    assert _mode(directory) == mode
    assert f"{BACKUPS} exists and {wanted} can write to it, nothing to do" in result.stdout


def test_a_directory_the_frappe_user_cannot_write_to_is_given_to_it(
    fakes: FakeBin, host: Path
) -> None:
    """Root-owned, 0755: the directory itself changes owner, its content does not."""
    directory = host / "opt" / "brand-club" / "backups"
    (directory / "brandclub.com").mkdir(parents=True)
    directory.chmod(0o755)
    result = run_script("prepare-backup-dir.sh", _env(fakes, host))

    assert result.returncode == 0, result.stderr
    assert fakes.calls("chown") == [["chown", OWNER, "--", str(directory)]]
    assert f"{BACKUPS} exists but {OWNER} cannot write to it" in result.stdout
    assert _mode(directory) & 0o700 == 0o700


def test_a_file_in_the_way_fails_the_job(fakes: FakeBin, host: Path) -> None:
    (host / "opt" / "brand-club").mkdir(parents=True)
    (host / "opt" / "brand-club" / "backups").write_text("")
    result = run_script("prepare-backup-dir.sh", _env(fakes, host))

    assert result.returncode == 1
    assert "is not a directory" in result.stderr
    assert fakes.calls("chown") == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BACKUP_DIR", "/", "absolute, normalised path other than /"),
        ("BACKUP_DIR", "/opt/../etc", "absolute, normalised path"),
        ("BACKUP_DIR", "backups", "absolute, normalised path"),
        ("BACKUP_DIR_OWNER", "frappe", "BACKUP_DIR_OWNER must be uid:gid"),
        ("HOST_ROOT", "/nonexistent-host-root", "not mounted at /nonexistent-host-root"),
    ],
)
def test_bad_input_fails_before_changing_anything(
    fakes: FakeBin, host: Path, variable: str, value: str, message: str
) -> None:
    result = run_script("prepare-backup-dir.sh", _env(fakes, host, **{variable: value}))

    assert result.returncode == 1
    assert message in result.stderr
    assert fakes.calls("chown") == []
    assert list(host.iterdir()) == []


def test_the_restore_drills_state_folder_is_made_after_the_backups(
    fakes: FakeBin, host: Path
) -> None:
    state = f"{BACKUPS}/.restore-drill"
    result = run_script("prepare-backup-dir.sh", _env(fakes, host, DRILL_STATE_DIR=state))

    assert result.returncode == 0, result.stderr
    backups = host / "opt" / "brand-club" / "backups"
    assert _mode(backups / ".restore-drill") == 0o750
    assert fakes.calls("chown") == [
        ["chown", OWNER, "--", str(backups)],
        ["chown", OWNER, "--", str(backups / ".restore-drill")],
    ]
    assert f"created {state}, owned {OWNER}, mode 0750" in result.stdout


def test_a_drill_state_folder_that_is_not_normalised_is_refused(fakes: FakeBin, host: Path) -> None:
    result = run_script(
        "prepare-backup-dir.sh", _env(fakes, host, DRILL_STATE_DIR=f"{BACKUPS}/../etc")
    )
    assert result.returncode == 1
    assert "DRILL_STATE_DIR must be an absolute, normalised path" in result.stderr
    # Refused before anything was made.
    assert not (host / "opt").exists()
