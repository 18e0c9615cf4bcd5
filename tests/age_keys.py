"""A real age key pair for the off-site encryption tests, made with the real age-keygen.

The scripts encrypt with Debian's ``age`` (installed by setup.sh, as in the app image); the tests
use the same binary to prove what was sent opens with the identity, and with nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The first line of every age file (age-encryption.org/v1).
AGE_HEADER = b"age-encryption.org/v1\n"
# What gzip files (a Frappe database dump) start with.
GZIP_MAGIC = b"\x1f\x8b"


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: ./setup.sh installs Debian's age")
    return found


@dataclass(frozen=True)
class AgeKeys:
    """identity: the private key file age-keygen wrote; recipients: its public recipient."""

    identity: Path
    recipients: Path

    @property
    def recipient(self) -> str:
        return self.recipients.read_text().strip()

    @property
    def secret(self) -> str:
        """The identity's AGE-SECRET-KEY-1 line, which no output may show."""
        return next(
            line for line in self.identity.read_text().splitlines() if line.startswith("AGE-")
        )

    def decrypt(self, sealed: Path) -> bytes:
        return decrypt(sealed, self.identity).stdout


def new_keys(folder: Path, name: str = "offsite") -> AgeKeys:
    folder.mkdir(parents=True, exist_ok=True)
    identity, recipients = folder / f"{name}-identity.txt", folder / f"{name}-recipients.txt"
    subprocess.run(
        [_binary("age-keygen"), "-o", str(identity)], check=True, capture_output=True, timeout=10
    )
    public = subprocess.run(
        [_binary("age-keygen"), "-y", str(identity)],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    )
    recipients.write_text(public.stdout)
    return AgeKeys(identity, recipients)


def decrypt(sealed: Path, identity: Path) -> subprocess.CompletedProcess[bytes]:
    """``age --decrypt`` of one file; the caller checks the outcome."""
    return subprocess.run(
        [_binary("age"), "--decrypt", "--identity", str(identity), str(sealed)],
        capture_output=True,
        timeout=30,
    )
