"""run-swarm-job.sh: a site job as a Swarm one-shot service, against a stand-in `docker`."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from fake_commands import SCRIPTS, FakeBin, run_script

# A tiny swarm: one service at most (a file), task states read one line per `service ps` from
# FAKE_TASK_STATES (the last line repeats), logs from FAKE_JOB_LOG.
FAKE_DOCKER = """
state=$FAKE_STATE_DIR
case "$1 $2" in
"service inspect") [[ -e $state/service ]] ;;
"service rm") rm "$state/service" ;;
"service create")
  if [[ -n ${FAKE_CREATE_ERROR:-} ]]; then echo "$FAKE_CREATE_ERROR" >&2; exit 1; fi
  touch "$state/service"; echo k2v0x9 ;;
"service ps")
  polls=$(( $(cat "$state/polls" 2>/dev/null || echo 0) + 1 )); echo $polls > "$state/polls"
  line=$(sed -n "${polls}p" "$FAKE_TASK_STATES")
  echo "${line:-$(tail -n 1 "$FAKE_TASK_STATES")}" ;;
"service logs") printf '%s\\n' "$FAKE_JOB_LOG"; echo "stderr of the job" >&2 ;;
*) exit 64 ;;
esac
"""

JOB_SCRIPT = 'set -e\necho "migrating $(hostname)"\nbench --site all migrate'
MOUNTS = (
    "type=volume,source=brandclub-dev-sites,target=/home/frappe/frappe-bench/sites",
    "type=volume,source=brandclub-dev-logs,target=/home/frappe/frappe-bench/logs",
)


@pytest.fixture
def swarm(tmp_path: Path) -> FakeBin:
    fakes = FakeBin(tmp_path)
    fakes.add("docker", FAKE_DOCKER)
    (tmp_path / "state").mkdir()
    return fakes


def _env(swarm: FakeBin, tmp_path: Path, states: list[str], **extra: str) -> dict[str, str]:
    (tmp_path / "states").write_text("\n".join(states) + "\n")
    defaults = dict(
        FAKE_STATE_DIR=str(tmp_path / "state"),
        FAKE_TASK_STATES=str(tmp_path / "states"),
        FAKE_JOB_LOG="Migrating brandclub.com\nDone",
        JOB_NAME="brandclub-dev-job-migrate",
        JOB_IMAGE="ghcr.io/brand-club/brandclub@sha256:abc",
        JOB_NETWORKS="brandclub-dev_internal brandclub-dev-mariadb",
        JOB_MOUNTS="\n".join(MOUNTS) + "\n",
        JOB_SECRETS="source=brandclub-dev-db-root,target=/run/secrets/db-root",
        JOB_ENV="DB_HOST=mariadb\nDB_PORT=3306",
        JOB_SCRIPT=JOB_SCRIPT,
        JOB_POLL_INTERVAL="0.01",
    )
    return swarm.env(**{**defaults, **extra})


def _subcommands(swarm: FakeBin) -> list[str]:
    return [" ".join(call[1:3]) for call in swarm.calls("docker")]


# Every job service: one-shot, never restarted, named and labelled for clean-up.
CREATE_HEAD = [
    "--detach",
    "--mode",
    "replicated-job",
    "--restart-condition",
    "none",
    "--name",
    "brandclub-dev-job-migrate",
    "--container-label",
    "brandclub.site-job=brandclub-dev-job-migrate",
]
CREATE_TAIL = [
    "--with-registry-auth",
    "--",
    "ghcr.io/brand-club/brandclub@sha256:abc",
    "bash",
    "-c",
    JOB_SCRIPT,
]
EXPECTED_CREATE = [
    "docker",
    "service",
    "create",
    *CREATE_HEAD,
    "--network",
    "brandclub-dev_internal",
    "--network",
    "brandclub-dev-mariadb",
    "--mount",
    MOUNTS[0],
    "--mount",
    MOUNTS[1],
    "--secret",
    "source=brandclub-dev-db-root,target=/run/secrets/db-root",
    "--env",
    "DB_HOST=mariadb",
    "--env",
    "DB_PORT=3306",
    *CREATE_TAIL,
]


def test_a_completed_job_prints_its_log_and_is_removed(swarm: FakeBin, tmp_path: Path) -> None:
    states = ["Preparing 1 second ago|", "Running 2 seconds ago|", "Complete 1 second ago|"]
    result = run_script("run-swarm-job.sh", _env(swarm, tmp_path, states))

    assert result.returncode == 0, result.stderr
    assert swarm.calls("docker")[1] == EXPECTED_CREATE
    assert _subcommands(swarm) == [
        "service inspect",  # no leftover
        "service create",
        "service ps",
        "service ps",
        "service ps",
        "service logs",
        "service inspect",
        "service rm",
    ]
    assert swarm.calls("docker")[5] == [
        "docker",
        "service",
        "logs",
        "--raw",
        "--no-task-ids",
        "--tail",
        "100",
        "brandclub-dev-job-migrate",
    ]
    assert swarm.calls("docker")[2][3:] == [
        "--no-trunc",
        "--format",
        "{{.CurrentState}}|{{.Error}}",
        "brandclub-dev-job-migrate",
    ]
    assert "Migrating brandclub.com\nDone\nstderr of the job\n" in result.stdout
    assert "failed" not in result.stdout + result.stderr
    assert not (tmp_path / "state" / "service").exists()


def test_a_leftover_service_is_removed_before_the_job_starts(
    swarm: FakeBin, tmp_path: Path
) -> None:
    (tmp_path / "state" / "service").touch()
    result = run_script("run-swarm-job.sh", _env(swarm, tmp_path, ["Complete now|"]))

    assert result.returncode == 0, result.stderr
    assert _subcommands(swarm)[:3] == ["service inspect", "service rm", "service create"]
    assert "removing leftover service brandclub-dev-job-migrate" in result.stdout


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("Failed 2 seconds ago", "task: non-zero exit (1)"),
        ("Rejected 1 second ago", "No such image: ghcr.io/brand-club/brandclub@sha256:abc"),
        ("Shutdown 1 second ago", ""),
    ],
)
def test_a_failed_job_shows_its_log_and_why_on_stderr(
    swarm: FakeBin, tmp_path: Path, state: str, error: str
) -> None:
    result = run_script(
        "run-swarm-job.sh", _env(swarm, tmp_path, ["Running now|", f"{state}|{error}"])
    )

    assert result.returncode == 1
    word = state.split()[0]
    last_line = result.stderr.splitlines()[-1]
    assert last_line == f"job brandclub-dev-job-migrate failed: {word} {error}".rstrip()
    assert "Migrating brandclub.com\nDone\n" in result.stderr
    assert "Migrating" not in result.stdout
    assert _subcommands(swarm)[-3:] == ["service logs", "service inspect", "service rm"]


@pytest.mark.waits
def test_a_job_past_its_timeout_fails_and_is_removed(swarm: FakeBin, tmp_path: Path) -> None:
    env = _env(swarm, tmp_path, ["Running 5 seconds ago|"], JOB_TIMEOUT="1", JOB_LOG_TAIL="20")
    started = time.monotonic()
    result = run_script("run-swarm-job.sh", env)

    assert result.returncode == 1
    assert 1 <= time.monotonic() - started < 5
    assert result.stderr.splitlines()[-1] == (
        "job brandclub-dev-job-migrate failed: timed out after 1s (last state: Running)"
    )
    assert swarm.calls("docker")[-3][5:7] == ["--tail", "20"]
    assert _subcommands(swarm)[-2:] == ["service inspect", "service rm"]


def test_a_service_that_cannot_be_created_fails_clearly(swarm: FakeBin, tmp_path: Path) -> None:
    env = _env(
        swarm, tmp_path, ["Complete now|"], FAKE_CREATE_ERROR="secret not found: brandclub-dev"
    )
    result = run_script("run-swarm-job.sh", env)

    assert result.returncode == 1
    assert "secret not found: brandclub-dev" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "job brandclub-dev-job-migrate failed: could not create the service"
    )
    assert "service ps" not in _subcommands(swarm)


def test_optional_lists_may_be_empty_and_constraints_are_passed(
    swarm: FakeBin, tmp_path: Path
) -> None:
    env = _env(
        swarm,
        tmp_path,
        ["Complete now|"],
        JOB_NETWORKS="",
        JOB_MOUNTS="",
        JOB_SECRETS="",
        JOB_ENV="",
        JOB_CONSTRAINTS="node.role == manager\nnode.labels.db == true\n",
    )
    result = run_script("run-swarm-job.sh", env)

    assert result.returncode == 0, result.stderr
    assert swarm.calls("docker")[1][3:] == [
        *CREATE_HEAD,
        "--constraint",
        "node.role == manager",
        "--constraint",
        "node.labels.db == true",
        *CREATE_TAIL,
    ]


def test_a_job_can_run_as_another_user(swarm: FakeBin, tmp_path: Path) -> None:
    """prepare-backup-dir runs as root (JOB_USER=0:0); the others as the image's user."""
    env = _env(swarm, tmp_path, ["Complete now|"], JOB_USER="0:0")
    result = run_script("run-swarm-job.sh", env)

    assert result.returncode == 0, result.stderr
    assert swarm.calls("docker")[1] == [
        *EXPECTED_CREATE[: -len(CREATE_TAIL)],
        "--user",
        "0:0",
        *CREATE_TAIL,
    ]
    assert "--user" not in EXPECTED_CREATE


def test_an_interrupted_run_removes_its_service(swarm: FakeBin, tmp_path: Path) -> None:
    env = _env(swarm, tmp_path, ["Running now|"], JOB_POLL_INTERVAL="0.05")
    process = subprocess.Popen(
        ["bash", str(SCRIPTS / "run-swarm-job.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while "service ps" not in _subcommands(swarm) and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 143
    assert _subcommands(swarm)[-2:] == ["service inspect", "service rm"]
    assert not (tmp_path / "state" / "service").exists()


@pytest.mark.parametrize(
    ("unset", "value", "message"),
    [
        ("JOB_NAME", "", "JOB_NAME is required"),
        ("JOB_SCRIPT", "", "JOB_SCRIPT is required"),
        ("JOB_TIMEOUT", "soon", "JOB_TIMEOUT must be a positive number of seconds"),
        ("JOB_USER", "0:0 --publish 80:80", "JOB_USER must be user[:group]"),
        ("JOB_NAME", "--publish=80:80", "JOB_NAME must be a service name"),
        ("JOB_NAME", "job x", "JOB_NAME must be a service name"),
        ("JOB_IMAGE", "--privileged", "JOB_IMAGE must be an image reference"),
        ("JOB_IMAGE", "alpine --privileged", "JOB_IMAGE must be an image reference"),
    ],
)
def test_bad_input_fails_before_touching_the_swarm(
    swarm: FakeBin, tmp_path: Path, unset: str, value: str, message: str
) -> None:
    env = _env(swarm, tmp_path, ["Complete now|"])
    env[unset] = value
    result = run_script("run-swarm-job.sh", env)

    assert result.returncode == 2
    assert message in result.stderr
    assert swarm.calls() == []
