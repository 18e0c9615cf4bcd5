"""Stand-in commands (`bench`, `docker`, `rsync`, ...) for running the shell scripts for real.

Every fake appends its name and argv to one shared log, so a test sees the exact arguments of
each call and the order of calls across commands; a fake's behaviour is the bash body given.

The site jobs talk to Frappe and MariaDB through Python stand-ins (tests/stand_ins): a bench
directory from ``make_bench`` has ``env/bin/python`` (the test interpreter, with the stand-in
``frappe.utils.bench_helper`` importable), and ``add_frappe`` puts a ``bench`` that runs it the
way real bench does, and a ``mariadb`` client, on the fake PATH. Both act on one fake MariaDB
server kept in a file (``new_database_server``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "components" / "scripts"
STAND_INS = Path(__file__).resolve().parent / "stand_ins"
sys.path.insert(0, str(STAND_INS))
from stand_in_support import database_state, new_database_server  # noqa: E402, F401

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


# Bench as the site jobs use it: `--site S set-config -p KEY VALUE` updates the site's config
# (relative to the working directory, so the job must run from the bench directory); a call
# whose arguments contain the words in BENCH_FAIL exits with BENCH_FAIL_STATUS (1).
FAKE_BENCH = """
if [[ -n ${BENCH_FAIL:-} && " $* " == *" $BENCH_FAIL "* ]]; then
  echo "bench: simulated failure" >&2
  exit "${BENCH_FAIL_STATUS:-1}"
fi
if [[ $1 == --site && $3 == set-config && $4 == -p ]]; then
  python3 - "sites/$2/site_config.json" "$5" "$6" <<'PY'
import json, sys
path, key, value = sys.argv[1:]
with open(path) as config_file:
    config = json.load(config_file)
config[key] = json.loads(value)
with open(path, "w") as config_file:
    json.dump(config, config_file)
PY
fi
"""


def make_bench(root: Path, sites: dict[str, dict[str, object]]) -> Path:
    """A bench directory with `sites` (name -> site_config), a non-site `assets` folder and the
    bench's Python, `env/bin/python`, that imports the stand-in Frappe (bench_virtualenv)."""
    bench = root / "frappe-bench"
    (bench / "sites" / "assets").mkdir(parents=True)
    for site, config in sites.items():
        (bench / "sites" / site).mkdir()
        (bench / "sites" / site / "site_config.json").write_text(json.dumps(config))
    bench_virtualenv(bench / "env", STAND_INS)
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


# bench as the real one runs Frappe's commands; the stand-in module records each call.
BENCH_CLI = 'cd sites && exec ../env/bin/python -m frappe.utils.bench_helper frappe "$@"'


def add_frappe(fakes: FakeBin) -> None:
    """`bench` and the `mariadb` client, as stand-ins for the real ones (tests/stand_ins)."""
    fakes.add("bench", BENCH_CLI, record=False)
    fakes.add("mariadb", f'exec "{sys.executable}" "{STAND_INS / "mariadb.py"}" "$@"')


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
