"""The rsync kind of the off-site copy against a real SSH server (live tier, no swarm needed).

Issue 23 item 2: what leaves the data node is encrypted first. The real backup-loop.sh
(BACKUP_ONCE=1, the stand-in Frappe's ``bench backup`` writing Frappe's files) sends its copy
with the real rsync over the real ssh to Debian's OpenSSH server, and the test reads what
arrived on the server: only ``<file>.age`` files, neither gzip nor tar nor the dump's text,
which Debian's age opens with the identity to the very bytes of the local backup, and with no
other identity.

The server runs in a network namespace of its own on its 127.0.0.1:22 (so no sshd of this
machine is in the way), as an unprivileged login made for the test; the loop runs in the same
namespace. Needs root (namespaces, a user, apt-get): openssh-server, rsync and age are
installed from Debian when missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from age_keys import AGE_HEADER, GZIP_MAGIC, AgeKeys, decrypt, new_keys
from fake_commands import BACKED_UP_DATABASES, SCRIPTS, FakeBin, add_frappe, sites_to_back_up
from tests.live.images.build import apt_install

pytestmark = pytest.mark.live

# Found again by name: a run that died leaves them, and the next one removes them first.
NETNS = "bcoffsite"
LOGIN = "bcoffsite"
SSHD = "/usr/sbin/sshd"
SITES = tuple(BACKED_UP_DATABASES)
TAR_MAGIC = b"ustar"


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)


def _in_netns(*command: str) -> tuple[str, ...]:
    # nsenter rather than `ip netns exec`, as tests/multinode/cluster.py does: the network only.
    return ("nsenter", f"--net=/var/run/netns/{NETNS}", *command)


def _remove_leftovers() -> None:
    for pid_file in Path(tempfile.gettempdir()).glob("brandclub-offsite-*/sshd.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
    if Path(f"/var/run/netns/{NETNS}").exists():
        _run("ip", "netns", "del", NETNS, check=False)
    _run("userdel", LOGIN, check=False)


@dataclass(frozen=True)
class SshServer:
    # user@127.0.0.1:/path as the backup service takes it; the path is the vault's.
    target: str
    vault: Path
    client_key: Path
    known_hosts: Path
    log: Path


@pytest.fixture(scope="module")
def ssh_server() -> Iterator[SshServer]:
    if os.geteuid() != 0:
        pytest.fail("the off-site SSH test needs root (a network namespace, a login, apt-get)")
    missing = [
        package
        for package, binary in (("openssh-server", SSHD), ("rsync", "rsync"), ("age", "age"))
        if not (Path(binary).exists() if binary.startswith("/") else shutil.which(binary))
    ]
    if missing:
        apt_install(*missing)
    _remove_leftovers()
    # Traversable by the login (pytest's own tmp folders are root's alone).
    folder = Path(tempfile.mkdtemp(prefix="brandclub-offsite-"))
    folder.chmod(0o755)
    # '*' as password: no password login, yet not a locked account, which sshd without PAM
    # refuses even for a key.
    _run("useradd", "--no-create-home", "--shell", "/bin/bash", "--password", "*", LOGIN)
    login = pwd.getpwnam(LOGIN)
    vault = folder / "vault"
    vault.mkdir()
    os.chown(vault, login.pw_uid, login.pw_gid)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key"))
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "client_key"))
    authorized = folder / "authorized_keys"
    shutil.copy(folder / "client_key.pub", authorized)
    authorized.chmod(0o644)
    host_key = (folder / "host_key.pub").read_text().split()
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"127.0.0.1 {host_key[0]} {host_key[1]}\n")
    _run("ip", "netns", "add", NETNS)
    _run("ip", "-n", NETNS, "link", "set", "lo", "up")
    # sshd's privilege separation directory (the package's service unit makes it at boot).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            _in_netns(
                SSHD,
                "-D",
                "-e",
                # No system configuration: only what is said here.
                "-f",
                "/dev/null",
                "-o",
                "ListenAddress=127.0.0.1:22",
                "-o",
                f"HostKey={folder / 'host_key'}",
                "-o",
                f"AuthorizedKeysFile={authorized}",
                "-o",
                f"PidFile={folder / 'sshd.pid'}",
                "-o",
                "StrictModes=no",
                "-o",
                "UsePAM=no",
                "-o",
                "PasswordAuthentication=no",
                "-o",
                f"AllowUsers={LOGIN}",
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while _run(*_in_netns("bash", "-c", "</dev/tcp/127.0.0.1/22"), check=False).returncode:
            assert server.poll() is None, f"sshd exited {server.returncode}: {log.read_text()}"
            assert time.monotonic() < deadline, f"sshd never listened: {log.read_text()}"
            time.sleep(0.2)
        yield SshServer(
            target=f"{LOGIN}@127.0.0.1:{vault}",
            vault=vault,
            client_key=folder / "client_key",
            known_hosts=known_hosts,
            log=log,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        _run("ip", "netns", "del", NETNS, check=False)
        _run("userdel", LOGIN, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def keys(tmp_path: Path) -> AgeKeys:
    return new_keys(tmp_path / "keys")


def _backup_once(
    tmp_path: Path, server: SshServer, recipients: Path
) -> subprocess.CompletedProcess:
    # The one stand-in Frappe's `bench backup`, over the stand-in MariaDB.
    fakes = FakeBin(tmp_path)
    add_frappe(fakes)
    env = fakes.env(
        **sites_to_back_up(tmp_path, BACKED_UP_DATABASES, "site-db-password"),
        BACKUP_ROOT=str(tmp_path / "backups"),
        BACKUP_ONCE="1",
        OFFSITE_KIND="rsync",
        OFFSITE_RSYNC_TARGET=server.target,
        OFFSITE_SSH_KEY_FILE=str(server.client_key),
        OFFSITE_SSH_KNOWN_HOSTS_FILE=str(server.known_hosts),
        OFFSITE_AGE_RECIPIENTS_FILE=str(recipients),
    )
    return subprocess.run(
        _in_netns("bash", str(SCRIPTS / "backup-loop.sh")),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_copy_on_the_ssh_server_opens_only_with_the_identity(
    ssh_server: SshServer, keys: AgeKeys, tmp_path: Path
) -> None:
    result = _backup_once(tmp_path, ssh_server, keys.recipients)
    assert result.returncode == 0, (
        f"{result.stdout}{result.stderr}\nsshd: {ssh_server.log.read_text()}"
    )

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    other = new_keys(tmp_path / "other-keys", "other")
    for site in SITES:
        local = tmp_path / "backups" / site / day
        remote = ssh_server.vault / site / day
        plain = sorted(path.name for path in local.iterdir())
        assert len(plain) == 4, plain
        # Only encrypted files reached the server, one per file of the local set.
        assert sorted(path.name for path in remote.iterdir()) == [f"{name}.age" for name in plain]
        for name in plain:
            sealed = (remote / f"{name}.age").read_bytes()
            assert sealed.startswith(AGE_HEADER)
            assert not sealed.startswith(GZIP_MAGIC) and TAR_MAGIC not in sealed[:1024]
            # What the files tar and the config hold in the clear (sites_to_back_up).
            assert b"file of" not in sealed and b"db_name" not in sealed
            assert keys.decrypt(remote / f"{name}.age") == (local / name).read_bytes()
            assert decrypt(remote / f"{name}.age", other.identity).returncode != 0
        # The local set stays as bench wrote it: a local restore needs no key.
        dump = next(local.glob("*-database.sql.gz")).read_bytes()
        assert dump.startswith(GZIP_MAGIC)
        assert f"offsite ok site={site} target={ssh_server.target}/{site}/" in result.stdout
    assert not (tmp_path / "backups" / ".offsite-sealed").exists()
    assert keys.secret not in result.stdout + result.stderr


def test_without_a_usable_recipient_nothing_reaches_the_server(
    ssh_server: SshServer, keys: AgeKeys, tmp_path: Path
) -> None:
    before = sorted(ssh_server.vault.rglob("*"))
    result = _backup_once(tmp_path, ssh_server, keys.identity)

    assert result.returncode == 2
    assert "OFFSITE_AGE_RECIPIENTS_FILE must hold age public recipients" in result.stderr
    assert keys.secret not in result.stdout + result.stderr
    assert sorted(ssh_server.vault.rglob("*")) == before
