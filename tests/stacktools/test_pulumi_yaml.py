"""Stack config read as the Pulumi CLI reads it (stacktools/pulumi_yaml.py), by the test harness and
by ``python -m stacktools render --set/--config`` (issue 10 item 6)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import REPO, STACKS
from stacktools import engine, pulumi_yaml
from stacktools.__main__ import main

# go-yaml v3's resolve() for plain scalars, as Pulumi's stack-file loader applies it.
PLAIN_SCALARS = [
    ("true", True),
    ("True", True),
    ("FALSE", False),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("~", None),
    ("null", None),
    ("12:30", "12:30"),  # no sexagesimal numbers
    ("02:00", "02:00"),
    ("2026-11-20", "2026-11-20"),  # timestamps decode into text
    ("1.10", 1.1),
    ("10.11", 10.11),
    ("0755", 493),  # go-yaml keeps YAML 1.1's leading-zero octal
    ("0o755", 493),
    ("0x1F", 31),
    ("0b101", 5),
    ("-0x10", -16),
    ("+7", 7),
    ("1_000", 1000),
    ("08", 8.0),  # not octal, so Go's ParseFloat reads it
    ("1e3", 1000.0),
    (".5", 0.5),
    ("18446744073709551615", 2**64 - 1),
    ("develop", "develop"),
    ("sha256:ab", "sha256:ab"),
]


@pytest.mark.parametrize(("text", "value"), PLAIN_SCALARS, ids=[t for t, _ in PLAIN_SCALARS])
def test_plain_scalars_resolve_as_go_yaml_v3_does(text: str, value: Any) -> None:
    resolved = pulumi_yaml.resolve_plain(text)
    assert resolved == value and type(resolved) is type(value)


def test_quoted_and_tagged_scalars_stay_text() -> None:
    document = pulumi_yaml.load("a: '0755'\nb: \"1.10\"\nc: !!str yes\nd: 1.10\ne: [no, 0x1F]\n")
    assert document == {"a": "0755", "b": "1.10", "c": "yes", "d": 1.1, "e": ["no", 31]}
    assert math.isnan(pulumi_yaml.load("x: .nan")["x"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.1, "1.1"),
        (493, "493"),
        (True, "true"),
        (2.0, "2"),
        (1e-7, "1e-7"),
        (1.5e-5, "0.000015"),
        (1e21, "1e+21"),
        ({"cpus": 2.0, "memory": "1G"}, '{"cpus":2,"memory":"1G"}'),
        (["a", 1.5], '["a",1.5]'),
    ],
)
def test_what_the_program_receives_is_gos_spelling(value: Any, text: str) -> None:
    assert pulumi_yaml.engine_text(value) == text


def test_nan_is_no_config_value_but_tests_may_send_it() -> None:
    with pytest.raises(pulumi_yaml.PulumiYamlError):
        pulumi_yaml.engine_text({"cpus": math.nan})
    assert "NaN" in pulumi_yaml.engine_text({"cpus": math.nan}, allow_nan=True)


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stack_files_reach_the_program_as_written(stack: str) -> None:
    text = (REPO / f"Pulumi.{stack}.yaml").read_text()
    assert pulumi_yaml.top_level_rewrites(text) == []
    # Every top-level text value is spelt in the file as the program receives it.
    for key, value in engine.stack_file_config(stack).items():
        assert pulumi_yaml.engine_text(value) == (
            value if isinstance(value, str) else pulumi_yaml.engine_text(value)
        ), key


def test_the_harness_reads_stack_files_as_pulumi_does(tmp_path: Path, monkeypatch) -> None:
    """PyYAML (YAML 1.1) would read `yes` as true and `12:30` as 750: the harness would then
    test a configuration that `pulumi up` never sees."""
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n"
        "  brandclub:imageTag: 1.10\n"
        "  brandclub:ingress: {noindex: yes}\n"
        "  brandclub:backup: {time: 12:30, retentionDays: 07}\n"
    )
    monkeypatch.setattr(engine, "REPO", tmp_path)
    config = engine.stack_file_config("dev")
    assert yaml.safe_load("a: 12:30")["a"] == 750  # what the old harness read
    assert config["brandclub:ingress"] == {"noindex": "yes"}
    assert config["brandclub:backup"] == {"time": "12:30", "retentionDays": 7}
    assert engine._as_engine_value(config["brandclub:imageTag"]) == "1.1"


# --- render --set / --config --------------------------------------------------------------


def _render(tmp_path: Path, capsys, *arguments: str) -> tuple[int, str, Path]:
    out = tmp_path / "out"
    code = main(["render", "--out", str(out), *arguments])
    return code, capsys.readouterr().err, out


def _service(out: Path, stack: str, swarm_stack: str, service: str) -> dict[str, Any]:
    document = yaml.safe_load((out / stack / f"{swarm_stack}.yml").read_text())
    return document["services"][service]


@pytest.mark.parametrize("tag", ["1.10", "0755", "1_000", "true"])
def test_set_keeps_a_top_level_value_as_typed(tmp_path: Path, capsys, tag: str) -> None:
    """As `pulumi config set brandclub:imageTag 1.10` stores it: text, exactly."""
    code, err, out = _render(
        tmp_path, capsys, "--stack", "dev", "--set", f"brandclub:imageTag={tag}"
    )
    assert code == 0, err
    image = _service(out, "dev", "brandclub-dev", "backend")["image"]
    assert image == f"ghcr.io/brand-club/brandclub:{tag}"


def test_set_reads_a_nested_value_as_the_stack_file_would(tmp_path: Path, capsys) -> None:
    code, err, out = _render(
        tmp_path,
        capsys,
        "--stack", "prod",
        "--set", "brandclub:backup.time=12:30",
        "--set", "brandclub:services.backend.replicas=3",
        "--set", "brandclub:services.backend.limits.cpus=1.5",
    )  # fmt: skip
    assert code == 0, err
    backup = _service(out, "prod", "brandclub-prod", "backup")
    assert backup["environment"]["BACKUP_TIME"] == "12:30"
    backend = _service(out, "prod", "brandclub-prod", "backend")
    assert backend["deploy"]["replicas"] == 3
    assert backend["deploy"]["resources"]["limits"]["cpus"] == "1.5"


@pytest.mark.parametrize("word", ["no", "yes", "off"])
def test_set_yes_no_is_text_and_refused_for_a_boolean(tmp_path: Path, capsys, word: str) -> None:
    code, err, out = _render(
        tmp_path, capsys, "--stack", "dev", "--set", f"brandclub:ingress.noindex={word}"
    )
    assert code == 1
    assert f"brandclub:ingress.noindex: found '{word}'; expected a valid boolean" in err
    assert not out.exists()


def test_set_refuses_nan(tmp_path: Path, capsys) -> None:
    code, err, _ = _render(
        tmp_path, capsys, "--stack", "dev", "--set", "brandclub:services.backend.limits.cpus=.nan"
    )
    assert code == 2
    assert "brandclub:services.backend.limits.cpus" in err


def test_config_file_is_read_as_a_stack_file(tmp_path: Path, capsys) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        "config:\n"
        "  brandclub:imageTag: 1.10\n"
        "  brandclub:backup: {time: 03:30}\n"
        "  brandclub:services:\n"
        "    backend: {replicas: 2.0}\n"
    )
    code, err, out = _render(tmp_path, capsys, "--stack", "prod", "--config", str(overlay))
    assert code == 0, err
    # As `pulumi up` would deploy this very text in Pulumi.prod.yaml, with a note saying so.
    backend = _service(out, "prod", "brandclub-prod", "backend")
    assert backend["image"] == "ghcr.io/brand-club/brandclub:1.1"
    assert "brandclub:imageTag: 1.10 reaches the program as '1.1'" in err
    assert backend["deploy"]["replicas"] == 2
    assert (
        _service(out, "prod", "brandclub-prod", "backup")["environment"]["BACKUP_TIME"] == "03:30"
    )


def test_config_file_yes_is_text(tmp_path: Path, capsys) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("brandclub:ingress:\n  noindex: yes\n")
    code, err, _ = _render(tmp_path, capsys, "--stack", "dev", "--config", str(overlay))
    assert code == 1
    assert "brandclub:ingress.noindex: found 'yes'; expected a valid boolean" in err
