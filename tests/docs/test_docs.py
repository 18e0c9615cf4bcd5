"""README.md and docs/: a front page and pages that stay true to the repository.

Every link resolves (file and heading), every repository path and Python module they name exists,
nothing points outside the repository, and the commands that run the program's site jobs by hand
run exactly the jobs the program renders.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 220
PAGE_MAX_LINES = 600
# Paths the documentation names that exist only once a tool made them.
GENERATED = {"policy/venv"}
FENCE = re.compile(r"^\s*(```|~~~)")


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


def _prose_and_code(text: str) -> tuple[list[str], list[str]]:
    """The lines outside fenced code blocks, and those inside."""
    prose: list[str] = []
    code: list[str] = []
    inside = False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        (code if inside else prose).append(line)
    return prose, code


def code_blocks(text: str) -> Iterator[str]:
    block: list[str] | None = None
    for line in text.splitlines():
        if FENCE.match(line):
            if block is None:
                block = []
            else:
                yield "\n".join(block)
                block = None
        elif block is not None:
            block.append(line)


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as dashes, -1 for repeats."""
    prose, _ = _prose_and_code(page.read_text())
    found: set[str] = set()
    for line in prose:
        heading = re.match(r"#{1,6} (.+)", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-")
        candidate, count = slug, 0
        while candidate in found:
            count += 1
            candidate = f"{slug}-{count}"
        found.add(candidate)
    return found


def links(page: Path) -> list[str]:
    prose, _ = _prose_and_code(page.read_text())
    text = re.sub(r"`[^`]*`", "", "\n".join(prose))
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_link_resolves_and_stays_in_the_repository(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"https?://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if REPO not in resolved.parents and resolved != REPO:
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no such heading in {_name(resolved)}")
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_nothing_points_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    # The design used to live beside the repository; machine paths mean nothing elsewhere.
    for outside in ("../shared", "ARCHITECTURE.md", "/work/", "/root/"):
        assert outside not in text, outside


def _top_level() -> set[str]:
    ignored = {line.strip().strip("/") for line in (REPO / ".gitignore").read_text().splitlines()}
    return {p.name for p in REPO.iterdir()} - ignored - {".git"}


def repository_paths(text: str) -> set[str]:
    """Tokens that name something in the repository: they start with a top-level entry."""
    top = _top_level()
    prose, code = _prose_and_code(text)
    tokens = [span for line in prose for span in re.findall(r"`([^`]+)`", line)]
    tokens += [word for line in code for word in re.split(r"[\s\"'=(),;|]+", line)]
    found = set()
    for token in tokens:
        token = token.split()[0] if token.split() else ""
        token = token.rstrip(":,.")
        first = token.split("/")[0]
        if first in top and ("/" in token or "." in first) and not re.search(r"[<>{}…$]", token):
            found.add(token.rstrip("/"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_repository_path_it_names_exists(page: Path) -> None:
    missing = [
        path
        for path in sorted(repository_paths(page.read_text()) - GENERATED)
        if not (list(REPO.glob(path)) if "*" in path else (REPO / path).exists())
    ]
    assert missing == [], missing


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_python_module_and_name_it_runs_exists(page: Path) -> None:
    _, code = _prose_and_code(page.read_text())
    prose_and_code = page.read_text()
    modules = set(re.findall(r"python -m ([\w.]+)", prose_and_code))
    imports = re.findall(r"from ([\w.]+) import (\w+)", "\n".join(code))
    for module in sorted(modules):
        assert importlib.util.find_spec(module) is not None, module
    for module, name in imports:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_readme_is_a_front_page_that_links_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = {target.partition("#")[0] for target in links(README)}
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in linked, page.name
    # The two commands, on the first screen.
    first_screen = "\n".join(text.splitlines()[:80])
    assert "./deploy.sh" in first_screen and "./test.sh" in first_screen


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=_name)
def test_each_page_reads_on_its_own_and_stays_short(page: Path) -> None:
    lines = page.read_text().splitlines()
    assert lines[0].startswith("# "), "a page starts with its title"
    assert len(lines) <= PAGE_MAX_LINES, "split the page"


def test_nothing_points_at_a_readme_section() -> None:
    """The README is a front page: a pointer into the documentation names a docs/ page."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    pointers = [
        f"{name}: {match}"
        for name in tracked
        if Path(name).suffix in {".py", ".sh", ".yml", ".yaml"} and (REPO / name).is_file()
        for match in re.findall(r"README[,:] \"?[A-Za-z][^)\n]*", (REPO / name).read_text())
    ]
    assert pointers == []


def test_docs_pages_named_anywhere_in_the_repository_exist() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    missing = []
    for name in tracked:
        path = REPO / name
        if path.suffix not in {".py", ".sh", ".yml", ".yaml", ".md", ".toml"} or not path.is_file():
            continue
        for page, anchor in re.findall(r"\bdocs/([\w-]+\.md)(?:#([\w-]+))?", path.read_text()):
            target = DOCS / page
            if not target.exists() or (anchor and anchor not in anchors(target)):
                missing.append(f"{name}: docs/{page}#{anchor}")
    assert missing == [], missing


# --- site jobs run by hand are the program's site jobs ------------------------------------------

JOB_KEYS = ("JOB_NAME", "JOB_NETWORKS", "JOB_MOUNTS", "JOB_CONSTRAINTS", "JOB_USER")


def _section(page: Path, heading: str) -> str:
    text = page.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def run_documented_jobs(block: str, tmp_path: Path) -> list[dict[str, str]]:
    """Run a documented shell block with a stand-in job runner and docker; return each job's
    JOB_* environment, in the order the block ran them."""
    record = tmp_path / "jobs.jsonl"
    runner = tmp_path / "run-swarm-job.sh"
    runner.write_text(
        "#!/usr/bin/env bash\n"
        f"{sys.executable} -c 'import json, os, sys; "
        'print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("JOB_")}))'
        f"' >> {record}\n"
    )
    runner.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # docker secret ls --filter name=<prefix> --format ...: a secret of that name.
    (bin_dir / "docker").write_text(
        "#!/usr/bin/env bash\n"
        'for a in "$@"; do [[ $a == name=* ]] && echo "${a#name=}-0123456789"; done; exit 0\n'
    )
    (bin_dir / "docker").chmod(0o755)
    script = block.replace("components/scripts/run-swarm-job.sh", str(runner)).replace(
        ".venv/bin/python", sys.executable
    )
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    environment = {k: v for k, v in environment.items() if not k.startswith("JOB_")}
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in record.read_text().splitlines()]


def rendered_jobs(rendering: Any) -> list[dict[str, str]]:
    return [
        dict(command.inputs["environment"])
        for command in rendering.of_type("command:local:Command")
    ]


def assert_same_job(documented: dict[str, str], rendered: dict[str, str]) -> None:
    for key in JOB_KEYS:
        assert documented.get(key, "") == rendered.get(key, ""), (rendered["JOB_NAME"], key)
    # The same variables; their order does not matter to the job.
    assert sorted(documented.get("JOB_ENV", "").splitlines()) == sorted(
        rendered["JOB_ENV"].splitlines()
    ), rendered["JOB_NAME"]
    # The documentation deploys the branch tag; the program pins its digest.
    assert documented["JOB_IMAGE"] == rendered["JOB_IMAGE"].split("@")[0]
    # The bare script as `$(...)` gives it: trailing newlines dropped.
    assert documented["JOB_SCRIPT"] == rendered["JOB_SCRIPT"].rstrip("\n"), rendered["JOB_NAME"]
    # Secret names end in a fingerprint of a value the documentation cannot know.
    mine, theirs = (_secrets(job.get("JOB_SECRETS", "")) for job in (documented, rendered))
    assert [s["target"] for s in mine] == [s["target"] for s in theirs], rendered["JOB_NAME"]
    for documented_secret, rendered_secret in zip(mine, theirs, strict=True):
        assert (
            documented_secret["source"].rsplit("-", 1)[0]
            == rendered_secret["source"].rsplit("-", 1)[0]
        )


def _secrets(lines: str) -> list[dict[str, str]]:
    """``source=<name>,target=<path>`` per line, as ``--secret`` takes them."""
    return [dict(field.split("=", 1) for field in line.split(",")) for line in lines.splitlines()]


def test_local_swarm_runs_the_programs_site_jobs_in_its_order(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    section = _section(DOCS / "operations.md", "Bringing dev up on a local single-node swarm")
    [block] = [block for block in code_blocks(section) if "run_job configurator" in block]
    documented = run_documented_jobs(block, tmp_path)
    expected = rendered_jobs(rendered["dev"])
    assert [job["JOB_NAME"] for job in documented] == [job["JOB_NAME"] for job in expected]
    for mine, theirs in zip(documented, expected, strict=True):
        assert_same_job(mine, theirs)


def test_running_a_job_by_hand_runs_the_programs_migrate(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    section = _section(DOCS / "site-jobs.md", "Running a job by hand")
    block = next(code_blocks(section))
    [documented] = run_documented_jobs(block, tmp_path)
    [migrate] = [
        job for job in rendered_jobs(rendered["dev"]) if job["JOB_NAME"] == documented["JOB_NAME"]
    ]
    assert_same_job(documented, migrate)
