"""Copies one dated backup directory to S3-compatible storage (backup-loop.sh, OFFSITE_KIND=s3).

usage: offsite-s3.py DIRECTORY KEY

Uploads every file in DIRECTORY to s3://$OFFSITE_S3_BUCKET/[$OFFSITE_S3_PREFIX/]KEY/<file>.
Environment: OFFSITE_S3_ENDPOINT, OFFSITE_S3_BUCKET, OFFSITE_S3_PREFIX (optional),
OFFSITE_S3_ACCESS_KEY_ID, OFFSITE_S3_SECRET_KEY_FILE, OFFSITE_S3_REGION (optional).
The secret key is read from its file, so it never shows in a process list or a log.
Runs with the bench's Python, where boto3 ships with Frappe.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REQUIRED = (
    "OFFSITE_S3_ENDPOINT",
    "OFFSITE_S3_BUCKET",
    "OFFSITE_S3_ACCESS_KEY_ID",
    "OFFSITE_S3_SECRET_KEY_FILE",
)


def object_key(*parts: str) -> str:
    """Joins key parts with single slashes, skipping empty ones (an unset prefix)."""
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def upload(directory: Path, key: str) -> int:
    """Uploads the files of `directory` under `key`; returns the process exit status."""
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        print(f"offsite-s3: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    files = sorted(path for path in directory.glob("*") if path.is_file())
    if not files:
        print(f"offsite-s3: no files to upload in {directory}", file=sys.stderr)
        return 1
    secret = Path(os.environ["OFFSITE_S3_SECRET_KEY_FILE"]).read_text().strip()
    bucket = os.environ["OFFSITE_S3_BUCKET"]
    prefix = os.environ.get("OFFSITE_S3_PREFIX", "")

    # Imported here: only the bench's Python has boto3, and usage errors need none.
    import boto3

    try:
        client = boto3.client(
            "s3",
            endpoint_url=os.environ["OFFSITE_S3_ENDPOINT"],
            aws_access_key_id=os.environ["OFFSITE_S3_ACCESS_KEY_ID"],
            aws_secret_access_key=secret,
            region_name=os.environ.get("OFFSITE_S3_REGION") or None,
        )
        for path in files:
            target = object_key(prefix, key, path.name)
            client.upload_file(str(path), bucket, target)
            print(f"uploaded s3://{bucket}/{target}")
    except Exception as error:  # any boto3/botocore failure: one line for the backup log
        print(f"offsite-s3: upload to s3://{bucket} failed: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: offsite-s3.py DIRECTORY KEY", file=sys.stderr)
        return 2
    return upload(Path(argv[1]), argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
