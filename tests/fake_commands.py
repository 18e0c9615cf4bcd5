"""Stand-in commands (`bench`, `docker`, `rsync`, ...) for running the shell scripts for real.

Every fake appends its name and argv to one shared log, so a test sees the exact arguments of
each call and the order of calls across commands; a fake's behaviour is the bash body given.

Frappe is stood in for by one implementation, the live image's (tests/live/images/bench/apps/
frappe, run by the image's own `bench`, tests/live/images/bin/bench): a bench directory from
``make_bench`` links that tree in as ``apps/frappe`` and has ``env/bin/python`` (the test
interpreter) with the apps and tests/stand_ins on its path. There the stand-in ``pymysql``
replaces the real driver, so Frappe's databases live on the stand-in MariaDB server kept in a
file (``new_database_server``, $STANDIN_DB), which ``add_frappe``'s ``mariadb`` client and
``mysqldump`` use too; the stand-in ``redis`` and ``rq`` replace the real client and RQ, so a
``bench worker`` registers in a Redis kept in a file ($STANDIN_REDIS).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "components" / "scripts"
STAND_INS = Path(__file__).resolve().parent / "stand_ins"
# The stand-in Frappe and its `bench`, as the live tier's app image has them.
IMAGES = Path(__file__).resolve().parent / "live" / "images"
FRAPPE_APPS = IMAGES / "bench" / "apps"
IMAGE_BENCH = IMAGES / "bin" / "bench"
sys.path.insert(0, str(STAND_INS))
from stand_in_support import (  # noqa: E402, F401
    as_sqlite,
    database_file,
    database_server,
    database_state,
    drop_database,
    new_database_server,
)

# ASCII unit/record separators: no argument the scripts pass contains them.
_UNIT, _RECORD = "\x1f", "\x1e"

_RECORDER = """#!/usr/bin/env bash
printf '%s\\x1f' {name} "$@" >> "$FAKE_CALLS"
printf '\\x1e' >> "$FAKE_CALLS"
"""


class FakeBin:
    """A directory of fake commands put first on PATH, and the log of their calls."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "fake-bin"
        self.dir.mkdir(parents=True)
        self.log = root / "fake-calls"
        self.log.write_text("")
        # Scripts call `python3`; pin it to the interpreter running the tests, started by its
        # own path: a symlink to it would start as the base interpreter outside the virtualenv
        # (Python looks for pyvenv.cfg beside the path it was started by), whose site-packages
        # may hold .pth files that cost each start tens of milliseconds.
        self.add("python3", f'exec "{sys.executable}" "$@"', record=False)

    def add(self, name: str, body: str = "", record: bool = True) -> None:
        """Create fake `name` that records its call (unless `record` is false: the body records
        it itself), then runs the bash `body`."""
        path = self.dir / name
        recorder = _RECORDER.format(name=name) if record else "#!/usr/bin/env bash\n"
        path.write_text(recorder + body + "\n")
        path.chmod(0o755)

    def calls(self, name: str | None = None) -> list[list[str]]:
        """Recorded calls in order, each as [command, *argv]; only `name`'s when given."""
        records = [record.split(_UNIT)[:-1] for record in self.log.read_text().split(_RECORD)[:-1]]
        return [record for record in records if name is None or record[0] == name]

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.dir}:{os.environ['PATH']}",
            "FAKE_CALLS": str(self.log),
            # The stand-in Frappe records its calls in the same log (stand_in_support).
            "STANDIN_CALLS": str(self.log),
            # Frappe's in-place config rewrite without the stand-in's widened window (0.2 s a
            # write, for the live tier's readers): no script test needs it.
            "STANDIN_CONFIG_WRITE_SECONDS": "0",
            **extra,
        }


def run_script(
    name: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run components/scripts/`name` with bash, as the jobs do, bounded in time."""
    return subprocess.run(
        ["bash", str(SCRIPTS / name)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# The apps of make_bench's benches (sites/apps.txt, as the configurator writes it): the stand-in
# installs only apps the bench has, as Frappe does.
BENCH_APPS = ("frappe", "erpnext", "hrms", "brandclub")
COMMON_CONFIG = {"db_host": "mariadb", "db_port": 3306}


def make_bench(root: Path, sites: dict[str, dict[str, object]], configured: bool = True) -> Path:
    """A bench directory with `sites` (name -> site_config), a non-site `assets` folder, the
    stand-in Frappe and ERPNext linked in as apps/frappe and apps/erpnext, unless not
    `configured`: sites/apps.txt and the database in common_site_config.json (COMMON_CONFIG);
    and the bench's Python, `env/bin/python` (bench_virtualenv), which imports them and, in place of
    PyMySQL, the stand-in of tests/stand_ins."""
    bench = root / "frappe-bench"
    (bench / "sites" / "assets").mkdir(parents=True)
    (bench / "apps").mkdir()
    for app in ("frappe", "erpnext"):
        # Linked, not copied: the tree's compiled modules are shared by every test's bench.
        (bench / "apps" / app).symlink_to(FRAPPE_APPS / app)
    if configured:
        # What the configurator writes: the bench's apps, and the database it points the bench
        # at (new-site and restore refuse a bench without one; the stand-in driver reaches the
        # stand-in server whatever its name).
        (bench / "sites" / "apps.txt").write_text("".join(f"{app}\n" for app in BENCH_APPS))
        (bench / "sites" / "common_site_config.json").write_text(json.dumps(COMMON_CONFIG))
    for site, config in sites.items():
        (bench / "sites" / site).mkdir()
        (bench / "sites" / site / "site_config.json").write_text(json.dumps(config))
    bench_virtualenv(
        bench / "env", bench / "apps" / "frappe", bench / "apps" / "erpnext", STAND_INS
    )
    return bench


def bench_virtualenv(env: Path, *paths: Path) -> Path:
    """``env`` laid out as the virtualenv a bench runs Frappe with: ``bin/python`` (the test
    interpreter's base) finds ``pyvenv.cfg`` beside its folder and imports from ``paths`` as from
    the apps installed in it (a .pth file). Started straight, without a wrapper script: the site
    jobs start it a few hundred times per test run. Returns ``bin/python``."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = env / "lib" / version / "site-packages"
    site_packages.mkdir(parents=True)
    (site_packages / "apps.pth").write_text("".join(f"{path}\n" for path in paths))
    (env / "pyvenv.cfg").write_text(
        f"home = {base / 'bin'}\ninclude-system-site-packages = false\n"
        f"version = {'.'.join(map(str, sys.version_info[:3]))}\n"
    )
    python = env / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to(Path(sys.executable).resolve())
    return python


# bench as the image has it: it finds the bench from the working directory and runs Frappe's
# command line from sites/ with the bench's Python (tests/live/images/bin/bench).
BENCH_CLI = f'exec "{IMAGE_BENCH}" "$@"'


def add_frappe(fakes: FakeBin) -> None:
    """The image's `bench`, and the stand-in `mariadb` client and `mysqldump` (tests/stand_ins)
    that Frappe's restore and backup start."""
    fakes.add("bench", BENCH_CLI, record=False)
    for tool in ("mariadb", "mysqldump"):
        fakes.add(tool, f'exec "{sys.executable}" "{STAND_INS / f"{tool}.py"}" "$@"')


def write_backup_set(folder: Path, prefix: str, site: str, files: bool = True) -> None:
    """A backup set as Frappe's BackupGenerator (frappe/utils/backups.py) names and packs it:
    ``<prefix>-database.sql.gz``, a gzip'ed dump that makes the stand-in's notes table with one
    note titled ``prefix``, and (``files``) ``<prefix>-files.tar`` and
    ``<prefix>-private-files.tar``, tars of ``./<site>/public|private/files/<prefix>.txt`` as
    taken from the sites folder. The set's site_config_backup.json is the test's to write."""
    folder.mkdir(parents=True, exist_ok=True)
    dump = (
        "CREATE TABLE `tabBrandclub Note` (name INT AUTO_INCREMENT PRIMARY KEY, "
        "title VARCHAR(140) NOT NULL);\n"
        f"INSERT INTO `tabBrandclub Note` (title) VALUES ('{prefix}');\n"
    )
    (folder / f"{prefix}-database.sql.gz").write_bytes(gzip.compress(dump.encode()))
    if not files:
        return
    for part, where in (("files", "public"), ("private-files", "private")):
        with tarfile.open(folder / f"{prefix}-{part}.tar", "w") as tar:
            member = tarfile.TarInfo(f"./{site}/{where}/files/{prefix}.txt")
            member.size = len(prefix)
            tar.addfile(member, io.BytesIO(prefix.encode()))


# Two sites to back up, and each one's database (Frappe names it, and its user, alike).
BACKED_UP_DATABASES = {"brandclub.com": "_1b2c", "shop.brandclub.com": "_3d4e"}
NOTES_TABLE = (
    "CREATE TABLE `tabBrandclub Note` (name INT AUTO_INCREMENT PRIMARY KEY, "
    "title VARCHAR(140) NOT NULL)"
)


def sites_to_back_up(root: Path, databases: dict[str, str], db_password: str) -> dict[str, str]:
    """Sites as new-site leaves them, for ``bench backup``: a bench under ``root``, a database
    per site on a stand-in MariaDB that the site's user logs in to, a note titled
    ``note of <site>`` in it, and a file in each of the site's public and private files. The
    environment the stand-in needs (BENCH_DIR, STANDIN_DB)."""
    import sqlite3

    bench_dir = make_bench(
        root,
        {site: {"db_name": db, "db_password": db_password} for site, db in databases.items()},
    )
    db = new_database_server(
        root / "db.json",
        "db-root-password",
        users={f"{name}@%": db_password for name in databases.values()},
        databases={name: {"apps": ["frappe", "erpnext"]} for name in databases.values()},
    )
    for site, name in databases.items():
        with sqlite3.connect(database_file(name, db)) as database:
            database.execute(as_sqlite(NOTES_TABLE))
            database.execute(f"INSERT INTO `tabBrandclub Note` (title) VALUES ('note of {site}')")
        database.close()
        for part in ("public", "private"):
            files = bench_dir / "sites" / site / part / "files"
            files.mkdir(parents=True)
            (files / f"{part}.txt").write_text(f"{part} file of {site}")
    return {"BENCH_DIR": str(bench_dir), "STANDIN_DB": str(db)}


def site_config(bench: Path, site: str) -> dict[str, object]:
    return json.loads((bench / "sites" / site / "site_config.json").read_text())


# boto3 as backup-loop.sh's S3 uploader uses it: records the client's settings and each upload
# as JSON lines in FAKE_S3_CALLS; uploads fail when FAKE_S3_FAIL is set.
FAKE_BOTO3 = """
import json
import os
from pathlib import Path


def _record(entry):
    with open(os.environ["FAKE_S3_CALLS"], "a") as calls:
        calls.write(json.dumps(entry) + "\\n")


class _Client:
    def upload_file(self, filename, bucket, key):
        if os.environ.get("FAKE_S3_FAIL"):
            raise ConnectionError("Could not connect to the endpoint URL")
        content = Path(filename).read_bytes()
        # The bucket's objects, byte for byte, where a test looks at what was sent.
        if os.environ.get("FAKE_S3_STORE"):
            stored = Path(os.environ["FAKE_S3_STORE"], bucket, key)
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_bytes(content)
        _record({"upload": [content.decode(errors="replace"), bucket, key]})


def client(service, **settings):
    _record({"client": service, **settings})
    return _Client()
"""


def fake_boto3(root: Path) -> Path:
    """A directory to put on PYTHONPATH that holds the stand-in boto3."""
    modules = root / "fake-modules"
    (modules / "boto3").mkdir(parents=True)
    (modules / "boto3" / "__init__.py").write_text(FAKE_BOTO3)
    return modules


def s3_calls(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
