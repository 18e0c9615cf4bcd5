"""Unit tests (no swarm, part of the fast tier) for the live tier's stand-in images: the bench
as the job scripts call it, the realtime server's authentication, sessions and cookies, the
nginx template, and what the image build hashes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fake_commands import STAND_INS, bench_virtualenv, new_database_server
from harness import render
from tests.live.images import build

# --- the stand-in bench, as the real job scripts call it (no database needed) ----------------

IMAGES = Path(build.IMAGES_DIR)
SCRIPTS = IMAGES.parents[2] / "components" / "scripts"


@pytest.fixture
def standin_bench(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """A bench laid out as in the image (apps/frappe with the stand-in package, apps/erpnext,
    sites, env/bin/python) with the image's ``bench`` first on PATH. env is a virtualenv of the
    test interpreter with every app on its path, as the bench's own has it."""
    bench_dir = tmp_path / "frappe-bench"
    shutil.copytree(IMAGES / "bench", bench_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (bench_dir / "sites").mkdir()
    # The unit tier's stand-in PyMySQL (tests/stand_ins) in place of the real driver: the
    # bench's databases live on the stand-in server, whose root password is NEW_SITE's.
    bench_virtualenv(
        bench_dir / "env", bench_dir / "apps" / "frappe", bench_dir / "apps" / "erpnext", STAND_INS
    )
    database = new_database_server(tmp_path / "db.json", "-root-pw")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(IMAGES / "bin" / "bench", bin_dir / "bench")

    def run(*command: str, cwd: Path = bench_dir, **env: str) -> subprocess.CompletedProcess:
        # The stand-in finds its bench from its own files; a BENCH_DIR set by the caller is
        # for the job scripts (they cd there).
        inherited = {k: v for k, v in os.environ.items() if k != "BENCH_DIR"}
        # Frappe's in-place config rewrite, without the stand-in's widened window: only the test
        # of that window asks for it.
        inherited.setdefault("STANDIN_CONFIG_WRITE_SECONDS", "0")
        environment = {
            **inherited,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STANDIN_DB": str(database),
            **env,
        }
        return subprocess.run(
            command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=30
        )

    run.bench_dir = bench_dir  # type: ignore[attr-defined]
    return run


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _configure(bench_dir: Path, **extra: object) -> None:
    config = {"db_host": "mariadb", "redis_queue": "redis://redis-queue:6379", **extra}
    (bench_dir / "sites" / "common_site_config.json").write_text(json.dumps(config))
    (bench_dir / "sites" / "apps.txt").write_text("frappe\nerpnext\n")


def test_bench_runs_frappe_commands_from_the_sites_folder(standin_bench, tmp_path) -> None:
    """``bench`` finds its bench from any folder inside it and runs the command from sites/
    through env/bin/python -m frappe.utils.bench_helper; outside a bench it refuses."""
    sites = standin_bench.bench_dir / "sites"
    inside = standin_bench("bench", "set-config", "-g", "x", "1", cwd=sites)
    assert inside.returncode == 0, inside.stderr
    assert _json(sites / "common_site_config.json") == {"x": "1"}
    outside = standin_bench("bench", "set-config", "-g", "x", "2", cwd=tmp_path)
    assert outside.returncode == 1 and "not in a bench directory" in outside.stderr
    unknown = standin_bench("bench", "no-such-command")
    assert unknown.returncode == 2 and "No such command" in unknown.stderr


def test_bench_helper_in_process_as_the_job_library_calls_it(standin_bench) -> None:
    """Design D1: the jobs run bench_helper in process (runpy, sys.argv set by the caller)."""
    code = (
        "import runpy, sys; "
        "sys.argv = ['bench_helper', 'frappe', 'set-config', '-gp', 'db_port', '3306']; "
        "runpy.run_module('frappe.utils.bench_helper', run_name='__main__')"
    )
    sites = standin_bench.bench_dir / "sites"
    result = standin_bench("../env/bin/python", "-c", code, cwd=sites)
    assert result.returncode == 0, result.stderr
    assert _json(sites / "common_site_config.json") == {"db_port": 3306}


def test_set_config_writes_common_and_site_configs(standin_bench) -> None:
    sites = standin_bench.bench_dir / "sites"
    assert standin_bench("bench", "set-config", "-g", "db_host", "mariadb").returncode == 0
    assert standin_bench("bench", "set-config", "-gp", "db_port", "3306").returncode == 0
    assert _json(sites / "common_site_config.json") == {"db_host": "mariadb", "db_port": 3306}
    (sites / "a.test").mkdir()
    (sites / "a.test" / "site_config.json").write_text('{"db_name": "_a"}')
    site_set = ("bench", "--site", "a.test", "set-config", "-p", "maintenance_mode", "1")
    assert standin_bench(*site_set).returncode == 0
    assert _json(sites / "a.test" / "site_config.json") == {"db_name": "_a", "maintenance_mode": 1}
    missing = standin_bench("bench", "--site", "b.test", "set-config", "-p", "x", "1")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_the_configurator_script_configures_the_standin_bench(standin_bench) -> None:
    """The real configurator.sh against the stand-in, with what the program hands it."""
    configurator = render("dev").named("jobs-configurator").inputs["environment"]
    env = dict(line.split("=", 1) for line in configurator["JOB_ENV"].splitlines())
    env["BENCH_DIR"] = str(standin_bench.bench_dir)
    result = standin_bench("bash", str(SCRIPTS / "configurator.sh"), **env)
    assert result.returncode == 0, result.stderr
    sites = standin_bench.bench_dir / "sites"
    assert (sites / "apps.txt").read_text().split() == ["erpnext", "frappe"]
    common = _json(sites / "common_site_config.json")
    assert common["db_port"] == 3306 and common["socketio_port"] == 9000
    assert common["redis_cache"] == env["REDIS_CACHE"]


def _read_while(sites: Path, action: Callable[[], None]) -> tuple[int, int]:
    """Reads common_site_config.json as a backend does on every request, in a loop, while
    ``action`` runs: (reads that parsed, reads that found the file empty or cut)."""
    stop, counts = threading.Event(), [0, 0]

    def reader() -> None:
        while not stop.is_set():
            try:
                json.loads((sites / "common_site_config.json").read_text())
                counts[0] += 1
            except ValueError:
                counts[1] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        action()
    finally:
        stop.set()
        thread.join()
    return counts[0], counts[1]


def test_set_config_empties_the_config_while_it_writes_as_frappe_does(standin_bench) -> None:
    """Frappe's _update_config_file rewrites in place (open "w", then write): a reader in
    between finds an empty file, and get_site_config says the file is invalid."""
    _configure(standin_bench.bench_dir)
    sites = standin_bench.bench_dir / "sites"

    def set_config() -> None:
        result = standin_bench(
            "bench",
            "set-config",
            *("-g", "host_name", "https://a.test"),
            STANDIN_CONFIG_WRITE_SECONDS="0.2",
        )
        assert result.returncode == 0, result.stderr

    parsed, cut = _read_while(sites, set_config)
    assert cut > 0 and parsed > 0
    (sites / "common_site_config.json").write_text("")
    reported = _python(standin_bench, "import frappe; print(frappe.common_config())")
    assert reported.splitlines()[0] == "common_site_config.json is invalid"
    assert reported.splitlines()[-1] == "{}"


def test_a_reader_never_finds_the_config_cut_while_the_configurator_runs(standin_bench) -> None:
    """The configurator writes the config whole and renames it into place: across runs that
    change values, a reader polling as the backends do always parses it."""
    configurator = render("dev").named("jobs-configurator").inputs["environment"]
    env = dict(line.split("=", 1) for line in configurator["JOB_ENV"].splitlines())
    env["BENCH_DIR"] = str(standin_bench.bench_dir)
    _configure(standin_bench.bench_dir)

    def run_configurator() -> None:
        for host in ("https://a.test", "https://b.test", "https://a.test"):
            # The window as wide as in the live image: an in-place rewrite would show.
            result = standin_bench(
                "bash",
                str(SCRIPTS / "configurator.sh"),
                **{**env, "HOST_NAME": host, "STANDIN_CONFIG_WRITE_SECONDS": "0.2"},
            )
            assert result.returncode == 0, result.stderr

    parsed, cut = _read_while(standin_bench.bench_dir / "sites", run_configurator)
    assert (cut, parsed > 0) == (0, True)


# A root password that starts with a dash is still the option's value, as with bench (click).
NEW_SITE = (
    *("bench", "new-site", "a.test", "--mariadb-user-host-login-scope=%"),
    *("--admin-password", "pw", "--db-root-username=root", "--db-root-password", "-root-pw"),
    *("--install-app", "erpnext", "--set-default"),
)


def test_new_site_refuses_an_unconfigured_bench_and_a_missing_password(standin_bench) -> None:
    sites = standin_bench.bench_dir / "sites"
    unconfigured = standin_bench(*NEW_SITE)
    assert unconfigured.returncode == 1 and "db_host missing" in unconfigured.stderr
    assert not (sites / "a.test").exists()
    _configure(standin_bench.bench_dir)
    no_password = standin_bench(*NEW_SITE[:4], "--db-root-password", "-root-pw")
    assert no_password.returncode == 1 and "Administrator password" in no_password.stderr
    bad_option = standin_bench(*NEW_SITE, "--no-such-option")
    assert bad_option.returncode == 2 and "No such option: --no-such-option" in bad_option.stderr


def test_a_failed_new_site_leaves_its_config_behind_as_v15_does(standin_bench) -> None:
    """Frappe writes site_config.json before the database user exists and, without a terminal,
    does not roll back: the rerun finds a site folder and refuses."""
    _configure(standin_bench.bench_dir)
    config = standin_bench.bench_dir / "sites" / "a.test" / "site_config.json"
    failed = standin_bench(*NEW_SITE, STANDIN_FAIL_NEW_SITE="create-user")
    assert failed.returncode == 1 and "Traceback (most recent call last)" in failed.stderr
    assert "OperationalError: (1396, \"Operation CREATE USER failed for '_" in failed.stderr
    written = _json(config)
    assert written["db_name"].startswith("_") and len(written["db_name"]) == 17
    assert written["db_password"] and written["db_type"] == "mariadb"
    again = standin_bench(*NEW_SITE)
    assert again.returncode == 1
    assert "Site a.test already exists, use `--force` to proceed anyway" in again.stdout
    assert _json(config) == written


def test_migrate_fails_for_a_missing_site_and_on_request(standin_bench) -> None:
    assert standin_bench("bench", "--site", "a.test", "migrate").returncode == 1
    sites = standin_bench.bench_dir / "sites"
    (sites / "a.test").mkdir()
    (sites / "a.test" / "site_config.json").write_text('{"db_name": "_a"}')
    failed = standin_bench("bench", "--site", "all", "migrate", STANDIN_FAIL_MIGRATE="yes")
    assert failed.returncode == 1 and "simulated failure" in failed.stderr
    assert failed.stdout == "Migrating a.test\n"


# The stand-in's database connection replaced in process: MariaDB refuses the user of the
# site named _half (never created), and takes every statement of the others.
REFUSING_DATABASE = """
import runpy
import sys

import frappe


class Cursor:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, args=None):
        print(f"  {sql.split()[0]}", flush=True)

    def fetchall(self):
        return []


class Connection:
    def cursor(self):
        return Cursor()

    def close(self):
        pass


class OperationalError(Exception):
    pass


def connect(site):
    user = frappe.get_conf(site)["db_name"]
    if user == "_half":
        raise OperationalError(1045, f"Access denied for user '{user}'@'10.0.9.7'")
    return Connection()


frappe.connect = connect
sys.argv = ["bench_helper", "frappe", *sys.argv[1:]]
runpy.run_module("frappe.utils.bench_helper", run_name="__main__", alter_sys=True)
"""


def test_migrate_of_all_sites_stops_at_a_half_made_one_as_frappe_does(standin_bench) -> None:
    """Frappe v15's migrate (frappe/commands/site.py) loops over context.sites, `--site all`
    being every folder holding a site_config.json (frappe.utils.get_sites), so a half-made site
    (config written, database user never created) is among them; each site is migrated logged
    in as its own user, and the first error ends the command: the sites after it are not
    migrated. One site named alone is migrated on its own (issue 19 item 3)."""
    sites = standin_bench.bench_dir / "sites"
    _configure(standin_bench.bench_dir)
    for site, database in (("a.test", "_a"), ("b.test", "_half"), ("c.test", "_c")):
        (sites / site).mkdir()
        config = {"db_name": database, "db_password": "pw", "db_type": "mariadb"}
        (sites / site / "site_config.json").write_text(json.dumps(config))

    def migrate(site: str) -> subprocess.CompletedProcess:
        command = ("--site", site, "migrate")
        return standin_bench("../env/bin/python", "-c", REFUSING_DATABASE, *command, cwd=sites)

    def migrated(site: str, database: str) -> list[str]:
        # The migrations row, then the patches tabPatch Log lacks (here: all of the image's).
        patch = "frappe.patches.v15_0.standin_initial"
        return [
            f"Migrating {site}",
            *("  CREATE", "  INSERT", "  CREATE", "  SELECT"),
            f"Executing {patch} in {site} ({database})",
            "  INSERT",
        ]

    every = migrate("all")
    assert every.returncode == 1
    assert every.stdout.splitlines() == [*migrated("a.test", "_a"), "Migrating b.test"]
    assert "OperationalError: (1045, \"Access denied for user '_half'" in every.stderr
    alone = migrate("c.test")
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.splitlines() == migrated("c.test", "_c")


def _python(standin_bench, code: str, **env: str) -> str:
    sites = standin_bench.bench_dir / "sites"
    result = standin_bench("../env/bin/python", "-c", code, cwd=sites, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_worker_and_queue_names_are_frappes(standin_bench) -> None:
    """v15: queues are <bench id>:<queue>, the bench id being the bench's path with slashes as
    dashes (or bench_id from the config)."""
    bench_id = str(standin_bench.bench_dir.resolve()).strip("/").replace("/", "-")
    code = (
        "import json; from frappe.utils import background_jobs as b; "
        "print(json.dumps(b.get_queue_list(['short', 'default'], build_queue_name=True)))"
    )
    assert json.loads(_python(standin_bench, code)) == [f"{bench_id}:short", f"{bench_id}:default"]
    _configure(standin_bench.bench_dir, bench_id="bench-x")
    assert json.loads(_python(standin_bench, code)) == ["bench-x:short", "bench-x:default"]


def test_the_worker_gets_no_name_as_frappes_start_worker_creates_it(standin_bench) -> None:
    """Frappe v15's start_worker creates ``Worker(queues, connection=...)`` without a name, so
    RQ names it uuid4().hex and the name holds no hostname (the real image's workers do): the
    stand-in hands RQ's Worker the same arguments. RQ and redis are replaced by recorders."""
    _configure(standin_bench.bench_dir, bench_id="bench-x")
    code = """
import json, sys, types
made = {}
class Worker:
    def __init__(self, queues, **options):
        made.update(queues=queues, options=sorted(options))
    def work(self, **options):
        made["work"] = sorted(options)
class Redis:
    @classmethod
    def from_url(cls, url, **options):
        return cls()
sys.modules["rq"] = types.SimpleNamespace(Worker=Worker)
sys.modules["redis"] = types.SimpleNamespace(Redis=Redis)
from frappe.utils import background_jobs
background_jobs.start_worker("short,default")
print(json.dumps(made))
"""
    made = json.loads(_python(standin_bench, code))
    assert made["queues"] == ["bench-x:short", "bench-x:default"]
    assert made["options"] == ["connection"], "no name: RQ names the worker with a bare uuid"


def test_a_queue_of_the_platforms_own_is_known_only_through_workers(standin_bench) -> None:
    """Frappe v15's get_queues_timeout and validate_queue: a queue outside the built-ins is
    refused ("Queue should be one of ...") until common_site_config.json's `workers` names it,
    then a worker may consume it and its jobs get its timeout."""
    code = (
        "import json; from frappe.utils import background_jobs as b; "
        "print(json.dumps([b.get_queues_timeout(), b.get_queue_list(['reports'])]))"
    )
    _configure(standin_bench.bench_dir)
    refused = standin_bench("../env/bin/python", "-c", code, cwd=standin_bench.bench_dir / "sites")
    assert refused.returncode == 1
    assert "Queue should be one of short, default, long" in refused.stderr
    _configure(standin_bench.bench_dir, workers={"reports": {"timeout": 3000}, "bulk": {}})
    timeouts, queues = json.loads(_python(standin_bench, code))
    assert timeouts == {"short": 300, "default": 300, "long": 1500, "reports": 3000, "bulk": 300}
    assert queues == ["reports"]


def test_backup_names_files_after_the_site_and_honours_backup_path(
    standin_bench, tmp_path: Path
) -> None:
    """bench backup with a stand-in mysqldump: Frappe v15's file names (dots as underscores),
    the site's config copied with its encryption key, file tars of ./<site>/... members,
    everything in --backup-path, and the summary bench prints."""
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "mysqldump").write_text('#!/bin/sh\necho "-- dump of $*"\n')
    (fakes / "mysqldump").chmod(0o755)
    _configure(standin_bench.bench_dir)
    site = standin_bench.bench_dir / "sites" / "a.test"
    (site / "public" / "files").mkdir(parents=True)
    (site / "private" / "files").mkdir(parents=True)
    (site / "public" / "files" / "logo.txt").write_text("logo")
    config = {"db_name": "_a", "db_password": "p", "encryption_key": "k" * 44}
    (site / "site_config.json").write_text(json.dumps(config))
    target = tmp_path / "backups"
    path = f"{fakes}{os.pathsep}{os.environ['PATH']}"
    command = ("bench", "--site", "a.test", "backup", "--with-files", "--backup-path", str(target))
    result = standin_bench(*command, PATH=f"{standin_bench.bench_dir.parent / 'bin'}:{path}")
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in target.iterdir())
    stamp = files[0].split("-", 1)[0]
    assert len(stamp) == 15 and stamp[8] == "_"
    assert files == [
        f"{stamp}-a_test-database.sql.gz",
        f"{stamp}-a_test-files.tar",
        f"{stamp}-a_test-private-files.tar",
        f"{stamp}-a_test-site_config_backup.json",
    ]
    assert _json(target / f"{stamp}-a_test-site_config_backup.json") == config
    members = subprocess.run(
        ["tar", "tf", str(target / f"{stamp}-a_test-files.tar")], capture_output=True, text=True
    ).stdout.split()
    assert "./a.test/public/files/logo.txt" in members
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Backup Summary for a.test at ")
    assert [line.split(":", 1)[0] for line in lines[1:5]] == [
        "Config  ",
        "Database",
        "Public  ",
        "Private ",
    ]
    assert lines[-1] == "Backup for Site a.test has been successfully completed with files"
    assert not (site / "private" / "backups").exists() or not any(
        (site / "private" / "backups").iterdir()
    )


# --- sessions and cookies, as frappe/auth.py and gunicorn hand them out -----------------------


def test_sid_cookie_is_secure_only_for_https_from_a_trusted_proxy(standin_bench) -> None:
    code = """
import importlib.util
import json
from frappe import auth
h = {"X-Forwarded-Proto": "https"}
print(json.dumps([
    auth.url_scheme(h, "10.0.1.5", "127.0.0.1,::1"),
    auth.url_scheme(h, "10.0.1.5", "*"),
    auth.url_scheme(h, "10.0.1.5", "10.0.1.5"),
    auth.url_scheme({}, "10.0.1.5", "*"),
    auth.url_scheme(h, "127.0.0.1", "127.0.0.1,::1"),
    auth.cookie("sid", "s1", secure=True, httponly=True, max_age=864000),
    auth.cookie("sid", "s1", secure=False, httponly=True, max_age=864000),
]))
"""
    found = json.loads(_python(standin_bench, code))
    assert found[:5] == ["http", "https", "https", "http", "https"]
    # gunicorn 23 takes addresses only: a network is a configuration error.
    network = "from frappe import auth; auth.forwarded_allow_ips('10.0.0.0/8')"
    refused = standin_bench(
        "../env/bin/python", "-c", network, cwd=standin_bench.bench_dir / "sites"
    )
    assert (
        refused.returncode == 1
        and "does not appear to be an IPv4 or IPv6 address" in refused.stderr
    )
    secure, plain = found[5:]
    assert (
        secure.startswith("sid=s1; Expires=") and "; Max-Age=864000; Secure; HttpOnly; " in secure
    )
    assert secure.endswith("Path=/; SameSite=Lax")
    assert "Secure" not in plain and "HttpOnly" in plain


def test_nginx_template_renders_every_setting_and_keeps_nginx_variables(tmp_path: Path) -> None:
    """The entrypoint's envsubst list covers every ${...} of the baked template, and nginx's
    own variables ($host, $uri, ...) survive the rendering."""
    entrypoint = (IMAGES / "nginx" / "nginx-entrypoint.sh").read_text()
    template = (IMAGES / "nginx" / "frappe.conf.template").read_text()
    listed = set(re.findall(r"\$\{(\w+)\}", entrypoint.split("envsubst", 1)[1].split("<")[0]))
    used = set(re.findall(r"\$\{(\w+)\}", template))
    assert used == listed
    defaults = set(re.findall(r"^default (\w+) ", entrypoint, re.M))
    assert defaults == listed
    env = {name: f"<{name}>" for name in listed}
    rendered = subprocess.run(
        ["envsubst", " ".join(f"${{{name}}}" for name in sorted(listed))],
        input=template,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout
    assert "${" not in rendered
    assert "server <BACKEND> fail_timeout=0;" in rendered
    assert (
        "proxy_set_header Origin $proxy_x_forwarded_proto://<FRAPPE_SITE_NAME_HEADER>;" in rendered
    )
    assert "try_files $uri =404;" in rendered


def test_build_inputs_cover_the_bench_and_file_modes(tmp_path: Path) -> None:
    """A change anywhere under a copied folder, or of an executable bit, rebuilds the images;
    a Python cache does not."""
    root = tmp_path / "images"
    shutil.copytree(IMAGES, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = build.context_digest(root)
    cache = root / "bench" / "apps" / "frappe" / "frappe" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "x.cpython-311.pyc").write_bytes(b"cache")
    assert build.context_digest(root) == before
    nested = root / "bench" / "apps" / "frappe" / "frappe" / "app.py"
    nested.write_text(nested.read_text() + "\n# changed\n")
    changed = build.context_digest(root)
    assert changed != before
    (root / "bin" / "bench").chmod(0o644)
    assert build.context_digest(root) != changed


def test_encrypted_fields_need_the_key_they_were_written_with(standin_bench) -> None:
    """What the restore job's encryption-key handling is about: another site's key cannot read
    a field, and the error is Frappe's."""
    site = standin_bench.bench_dir / "sites" / "a.test"
    site.mkdir()
    (site / "site_config.json").write_text('{"db_name": "_a"}')
    code = """
import json
from frappe import CommandError, read_json, site_config_path, write_json
from frappe.utils.password import decrypt, encrypt, generate_key
token = encrypt("a.test", "s3cret")
key = read_json(site_config_path("a.test"))["encryption_key"]
same = decrypt("a.test", token)
write_json(site_config_path("a.test"), {"db_name": "_a", "encryption_key": generate_key()})
try:
    decrypt("a.test", token)
    other = None
except CommandError as error:
    other = str(error)
print(json.dumps([len(key), same, other]))
"""
    length, same, other = json.loads(_python(standin_bench, code))
    assert length == 44 and same == "s3cret"
    assert other.startswith("Encryption key is invalid! Please check site_config.json")


def test_node_runs_the_realtime_server_for_socketio_js_by_any_path(standin_bench) -> None:
    """As the service (absolute path) and the boot-check job (relative to the bench) call it."""
    node = str(IMAGES / "bin" / "node")
    script = standin_bench.bench_dir / "apps" / "frappe" / "socketio.js"
    script.write_text("// stand-in\n")
    for path in ("apps/frappe/socketio.js", str(script)):
        started = standin_bench(node, path)
        # Past the path check, the bench's Python imports the server (no socket.io here).
        assert "only apps/frappe/socketio.js" not in started.stderr, started.stderr
    refused = standin_bench(node, "other.js")
    assert refused.returncode == 2 and "only apps/frappe/socketio.js" in refused.stderr
