"""``./deploy.sh local``: every step a newcomer's first deploy takes, with stand-in ``pulumi`` and
``docker`` on PATH that record their calls (tests/fake_commands.py).

The stand-ins follow what the real CLIs do with the files deploy.sh relies on (Pulumi's
pkg/cmd/pulumi): only the commands that declare ``--config-file`` take it (``up``, ``preview``,
``destroy``, ``refresh``, ``config …``), every other one stops at ``unknown flag``;
``pulumi stack select --create`` creates the stack in the file backend (``PULUMI_BACKEND_URL``)
and writes the passphrase's salt into the stack file it detects, ``./Pulumi.local.yaml``,
rewriting it; ``pulumi config set --secret KEY`` with no value reads it from STDIN, drops one
trailing newline and stores it encrypted in the ``--config-file``; each refuses to run without
the passphrase file. ``docker info`` reports the swarm state the stand-in ``docker swarm
init``/``leave`` set.
"""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fake_commands import FakeBin
from harness import REPO

# Pulumi's passphrase provider, as far as these tests need it: a salt on stack creation, and a
# "ciphertext" the test can read back (base64, never the value itself).
FAKE_PULUMI = r"""
arg() {
  local want=$1; shift
  while (($#)); do [[ $1 == "$want" ]] && { echo "$2"; return; }; shift; done
}
[[ -s ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]] || { echo "pulumi: passphrase required" >&2; exit 1; }
backend=${PULUMI_BACKEND_URL#file://}
config=$(arg --config-file "$@")
case "$1 $2" in
up\ * | preview\ * | destroy\ * | refresh\ * | "config "*) ;;
*) [[ -z $config ]] || { echo "Error: unknown flag: --config-file" >&2; exit 255; } ;;
esac
case "$1 $2" in
"stack select")
  if [[ ! -e $backend/stack-local ]]; then
    touch "$backend/stack-local"
    # The salt goes into the stack file Pulumi detects beside Pulumi.yaml, re-serialised.
    python3 - Pulumi.local.yaml <<'EOF'
import sys, yaml
path = sys.argv[1]
document = yaml.safe_load(open(path)) or {}
document["encryptionsalt"] = "v1:fake-salt"
yaml.safe_dump(document, open(path, "w"))
EOF
  fi ;;
"config set")
  [[ -e $backend/stack-local ]] || { echo "pulumi: no stack named 'local' found" >&2; exit 1; }
  python3 -c '
import base64, sys, yaml
path, key = sys.argv[1:]
value = sys.stdin.read().removesuffix("\n")
document = yaml.safe_load(open(path)) or {}
secure = "v1:" + base64.b64encode(value.encode()).decode()
document.setdefault("config", {})[key] = {"secure": secure}
yaml.safe_dump(document, open(path, "w"))
' "$config" "$4"
  ;;
"stack output") echo "https://brandclub.localhost" ;;
"stack rm")
  rm -f "$backend/stack-local"
  # Pulumi removes the stack's file where it detects it, whatever --config-file says.
  [[ " $* " == *" --preserve-config "* ]] || rm -f "Pulumi.local.yaml" ;;
esac
"""
FAKE_DOCKER = r"""
state=$FAKE_STATE/swarm
case "$1 $2" in
"info --format") cat "$state" ;;
"swarm init") echo active > "$state" ;;
"swarm leave") echo inactive > "$state" ;;
"service ls") cat "$FAKE_STATE/services" 2>/dev/null || true ;;
"ps --all") printf '%s\n' "c1 brandclub-local-job-migrate" "c2 brandclub-dev-job-migrate" ;;
esac
"""
SECRET_KEYS = ("brandclub:adminPassword", "brandclub:dbRootPassword", "brandclub:secretNameKey")


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, FakeBin]:
    """deploy.sh in a checkout of its own, its .venv's python the test interpreter, with the
    stand-ins; the swarm starts inactive."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy(REPO / "deploy.sh", root / "deploy.sh")
    shutil.copy(REPO / "Pulumi.local.yaml", root / "Pulumi.local.yaml")
    (root / "setup.sh").write_text("#!/usr/bin/env bash\necho setup\n")
    (root / "setup.sh").chmod(0o755)
    (root / ".venv" / "bin").mkdir(parents=True)
    python = root / ".venv" / "bin" / "python"
    python.write_text(f'#!/usr/bin/env bash\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    fakes = FakeBin(tmp_path)
    fakes.add("pulumi", FAKE_PULUMI)
    fakes.add("docker", FAKE_DOCKER)
    (tmp_path / "swarm").write_text("inactive\n")
    return root, fakes


def deploy(checkout: tuple[Path, FakeBin], *args: str) -> subprocess.CompletedProcess[str]:
    root, fakes = checkout
    env = fakes.env(PYTHONPATH=str(REPO), FAKE_STATE=str(fakes.log.parent))
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    return subprocess.run(
        ["bash", str(root / "deploy.sh"), "local", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def secrets_stored(root: Path) -> dict[str, str]:
    """The values the stand-in pulumi stored, decrypted."""
    document = yaml.safe_load((root / ".pulumi-local" / "Pulumi.local.yaml").read_text())
    return {
        key: base64.b64decode(value["secure"].removeprefix("v1:")).decode()
        for key, value in document["config"].items()
        if isinstance(value, dict) and "secure" in value
    }


def steps(fakes: FakeBin) -> list[str]:
    """Each call as ``command subcommand``."""
    return [" ".join(call[:3]) for call in fakes.calls()]


def test_first_deploy_takes_every_step_in_order_and_says_each(checkout) -> None:
    root, fakes = checkout
    result = deploy(checkout)
    assert result.returncode == 0, result.stderr
    state = root / ".pulumi-local"
    config = str(state / "Pulumi.local.yaml")
    assert steps(fakes) == [
        "pulumi stack select",
        *["pulumi config set"] * len(SECRET_KEYS),
        "docker info --format",
        "docker swarm init",
        "pulumi up --yes",
        "pulumi stack output",
    ]
    calls = fakes.calls()
    assert calls[0][1:] == ["stack", "select", "--create", "local", "--non-interactive"]
    assert sorted(call[4] for call in calls[1:4]) == list(SECRET_KEYS)
    assert calls[5][1:] == ["swarm", "init", "--advertise-addr", "127.0.0.1"]
    assert calls[6][1:] == ["up", "--yes", "--policy-pack", "policy", "--stack", "local",
                            "--config-file", config]  # fmt: skip
    said = result.stdout
    order = [
        "setting up the virtualenv",
        "\nsetup\n",
        "state of the local stack",
        "generating the passphrase",
        "selecting the stack",
        "generating the secret brandclub:dbRootPassword",
        "not in swarm mode (inactive)",
        "pulumi up",
        "open https://brandclub.localhost",
        "log in as Administrator",
        "config get brandclub:adminPassword --show-secrets",
        "./deploy.sh local destroy",
    ]
    positions = [said.find(text) for text in order]
    assert -1 not in positions, [t for t, p in zip(order, positions, strict=True) if p < 0]
    assert positions == sorted(positions), said
    # The state is this user's alone: the backend's directory and the passphrase.
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "passphrase").stat().st_mode) == 0o600


def test_the_secrets_are_strong_never_echoed_nor_passed_as_arguments(checkout) -> None:
    root, fakes = checkout
    result = deploy(checkout)
    assert result.returncode == 0, result.stderr
    stored = secrets_stored(root)
    assert sorted(stored) == list(SECRET_KEYS)
    passphrase = (root / ".pulumi-local" / "passphrase").read_text()
    values = [*stored.values(), passphrase]
    assert len(set(values)) == len(values)
    for value in values:
        assert len(value) >= 32
        assert value not in result.stdout + result.stderr
        assert value not in fakes.log.read_text()
    # Never in the tracked stack file: only the out-of-tree config file holds them, and the salt
    # Pulumi wrote into the tracked file when it created the stack moved there too.
    assert (root / "Pulumi.local.yaml").read_bytes() == (REPO / "Pulumi.local.yaml").read_bytes()
    config = yaml.safe_load((root / ".pulumi-local" / "Pulumi.local.yaml").read_text())
    assert config["encryptionsalt"] == "v1:fake-salt"


def test_a_second_deploy_reuses_the_secrets_and_the_running_swarm(checkout) -> None:
    root, fakes = checkout
    assert deploy(checkout).returncode == 0
    first = secrets_stored(root)
    passphrase = (root / ".pulumi-local" / "passphrase").read_text()
    fakes.log.write_text("")
    result = deploy(checkout)
    assert result.returncode == 0, result.stderr
    assert secrets_stored(root) == first
    assert (root / ".pulumi-local" / "passphrase").read_text() == passphrase
    assert steps(fakes) == [
        "pulumi stack select",
        "docker info --format",
        "pulumi up --yes",
        "pulumi stack output",
    ]
    assert "generating" not in result.stdout
    assert "swarm mode" not in result.stdout


def test_an_active_swarm_is_used_as_it_is(checkout) -> None:
    root, fakes = checkout
    (fakes.log.parent / "swarm").write_text("active\n")
    result = deploy(checkout)
    assert result.returncode == 0, result.stderr
    assert ["docker", "swarm", "init"] not in [call[:3] for call in fakes.calls()]
    assert not (root / ".pulumi-local" / "swarm-initialised").exists()


@pytest.mark.parametrize("others", [False, True], ids=["alone", "other-services"])
def test_destroy_removes_the_stack_its_state_and_the_swarm_it_made(checkout, others) -> None:
    root, fakes = checkout
    assert deploy(checkout).returncode == 0
    if others:
        (fakes.log.parent / "services").write_text("someone-elses-service-id\n")
    fakes.log.write_text("")
    result = deploy(checkout, "destroy", "--yes")
    assert result.returncode == 0, result.stderr
    config = str(root / ".pulumi-local" / "Pulumi.local.yaml")
    expected = [
        # The site jobs' exited containers of this stack only (they hold its volumes).
        [
            "docker",
            "ps",
            "--all",
            "--filter",
            "status=exited",
            "--filter",
            "label=com.docker.swarm.service.name",
            "--format",
            '{{.ID}} {{.Label "com.docker.swarm.service.name"}}',
        ],
        ["docker", "rm", "c1"],
        ["pulumi", "destroy", "--yes", "--stack", "local", "--config-file", config],
        ["pulumi", "stack", "rm", "local", "--yes", "--preserve-config", "--non-interactive"],
        ["docker", "service", "ls", "--quiet"],
    ]
    if not others:
        expected.append(["docker", "swarm", "leave", "--force"])
    assert fakes.calls() == expected
    assert not (root / ".pulumi-local").exists()
    # The tracked settings stay.
    assert (root / "Pulumi.local.yaml").read_bytes() == (REPO / "Pulumi.local.yaml").read_bytes()
    assert (fakes.log.parent / "swarm").read_text().strip() == ("active" if others else "inactive")
    assert ("keeping the swarm" in result.stdout) == others


def test_destroy_without_a_local_stack_does_nothing(checkout) -> None:
    _, fakes = checkout
    result = deploy(checkout, "destroy")
    assert result.returncode == 0, result.stderr
    assert "nothing to destroy" in result.stdout
    assert fakes.calls() == []


def test_without_the_pulumi_cli_it_prints_the_install_command_and_stops(checkout) -> None:
    root, fakes = checkout
    (fakes.dir / "pulumi").unlink()
    tools = root.parent / "tools"
    tools.mkdir()
    for tool in ("bash", "env", "dirname"):
        (tools / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        ["bash", str(root / "deploy.sh"), "local"],
        cwd=root,
        env={"PATH": f"{fakes.dir}:{tools}", "FAKE_CALLS": str(fakes.log)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "curl -fsSL https://get.pulumi.com | sh" in result.stderr
    assert fakes.calls() == []
    assert not (root / ".pulumi-local").exists()
    assert result.stdout.splitlines()[-1] == "setup"  # the virtualenv first, all the same


def test_pulumi_passthrough_gives_the_config_file_only_to_commands_that_take_it(checkout) -> None:
    root, fakes = checkout
    assert deploy(checkout).returncode == 0
    fakes.log.write_text("")
    config = str(root / ".pulumi-local" / "Pulumi.local.yaml")
    get = ["config", "get", "brandclub:adminPassword", "--show-secrets", "--stack", "local"]
    assert deploy(checkout, "pulumi", *get).returncode == 0
    output = deploy(checkout, "pulumi", "stack", "output", "--stack", "local")
    assert output.returncode == 0, output.stderr
    assert fakes.calls() == [["pulumi", *get, "--config-file", config],
                             ["pulumi", "stack", "output", "--stack", "local"]]  # fmt: skip
