"""The S3 uploader inside backup-loop.sh (OFFSITE_KIND=s3), run alone with a stand-in boto3."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fake_commands import SCRIPTS, fake_boto3, s3_calls

SECRET = "s3-Secret-Key"
KEY = "brandclub.com/2026-02-20"
UPLOADER = re.search(r"<<'PY'\n(.*?\n)PY\n", (SCRIPTS / "backup-loop.sh").read_text(), re.S).group(
    1
)  # type: ignore[union-attr]


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "backups" / KEY
    folder.mkdir(parents=True)
    for name in ("b-files.tar", "a-database.sql.gz", "c-private-files.tar"):
        (folder / name).write_text(name)
    (folder / "not-a-file").mkdir()
    return folder


def _upload(tmp_path: Path, folder: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "s3-secret").write_text(SECRET + "\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(fake_boto3(tmp_path)),
        "FAKE_S3_CALLS": str(tmp_path / "s3-calls"),
        "OFFSITE_S3_ENDPOINT": "https://s3.eu-central-1.example.net",
        "OFFSITE_S3_BUCKET": "brandclub-backups",
        "OFFSITE_S3_PREFIX": "/prod/",
        "OFFSITE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "OFFSITE_S3_SECRET_KEY_FILE": str(tmp_path / "s3-secret"),
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-", str(folder), KEY],
        input=UPLOADER,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_uploads_every_file_under_prefix_and_key(tmp_path: Path, backup_dir: Path) -> None:
    result = _upload(tmp_path, backup_dir)

    assert result.returncode == 0, result.stderr
    assert s3_calls(tmp_path / "s3-calls") == [
        {
            "client": "s3",
            "endpoint_url": "https://s3.eu-central-1.example.net",
            "aws_access_key_id": "AKIAEXAMPLE",
            "aws_secret_access_key": SECRET,
            "region_name": None,
        },
        *(
            {"upload": [name, "brandclub-backups", f"prod/{KEY}/{name}"]}
            for name in ("a-database.sql.gz", "b-files.tar", "c-private-files.tar")
        ),
    ]
    assert result.stdout.splitlines()[0] == (
        f"uploaded s3://brandclub-backups/prod/{KEY}/a-database.sql.gz"
    )
    assert SECRET not in result.stdout + result.stderr


def test_without_a_prefix_keys_start_at_the_site(tmp_path: Path, backup_dir: Path) -> None:
    result = _upload(tmp_path, backup_dir, OFFSITE_S3_PREFIX="", OFFSITE_S3_REGION="eu-central-1")

    assert result.returncode == 0, result.stderr
    calls = s3_calls(tmp_path / "s3-calls")
    assert calls[0]["region_name"] == "eu-central-1"
    assert calls[1] == {
        "upload": ["a-database.sql.gz", "brandclub-backups", f"{KEY}/a-database.sql.gz"]
    }


def test_a_failed_upload_is_one_line_and_exit_1(tmp_path: Path, backup_dir: Path) -> None:
    result = _upload(tmp_path, backup_dir, FAKE_S3_FAIL="1")

    assert result.returncode == 1
    assert result.stderr == (
        "s3 upload to s3://brandclub-backups failed: Could not connect to the endpoint URL\n"
    )


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _upload(tmp_path, tmp_path / "empty")

    assert result.returncode == 1
    assert "no files to upload" in result.stderr
    assert s3_calls(tmp_path / "s3-calls") == []
