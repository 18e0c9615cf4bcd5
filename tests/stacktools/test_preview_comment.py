"""stacktools.preview_comment: a failed preview reaches the pull request too."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacktools import preview_comment


def test_a_failed_preview_says_so_and_keeps_the_policy_violations() -> None:
    text = preview_comment.body(
        "Policies:\n    mandatory: data services private\n", stack="prod", status=255
    )
    assert text.startswith(preview_comment.MARKER + "\n")
    assert "`prod`: failed (exit status 255)" in text
    assert "mandatory: data services private" in text


def test_a_passed_preview_names_the_commit() -> None:
    text = preview_comment.body("Resources: 3 to update\n", stack="dev", status=0, commit="a" * 40)
    assert "`dev` at `aaaaaaaaaaaa`: passed" in text


def test_long_output_keeps_its_end() -> None:
    output = "x" * (preview_comment.LIMIT * 2) + "\nPolicy violations at the end\n"
    text = preview_comment.body(output, stack="staging", status=1)
    assert len(text) < 65_536
    assert "Policy violations at the end" in text and "the beginning is cut" in text


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").write_text("error: boom\n")
    assert preview_comment.main([str(tmp_path / "out"), "--stack", "dev", "--status", "2"]) == 0
    assert "error: boom" in capsys.readouterr().out
    assert preview_comment.main([str(tmp_path / "none"), "--stack", "dev", "--status", "2"]) == 0
    assert "(no output)" in capsys.readouterr().out
