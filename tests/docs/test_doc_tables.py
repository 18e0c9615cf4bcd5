"""The docs' generated tables (stacktools/doc_tables.py) are what the catalogue and the stack
files say now: a stack file or catalogue change without ``python -m stacktools.doc_tables`` fails
here, and so does a hand edit inside a generated region."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.platform import catalogue
from stacktools import doc_tables
from stacktools.doc_tables import COMMAND, REPO, regenerate, regions, stale


def _copy(tmp_path: Path) -> Path:
    """The pages and stack files of the repository, in a folder of their own."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    for path in [REPO / "README.md", *REPO.glob("Pulumi.*.yaml")]:
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_the_generated_tables_are_current() -> None:
    outdated = [str(page.relative_to(REPO)) for page in stale()]
    assert outdated == [], f"stale generated tables in {outdated}: run {COMMAND}"


def test_every_generator_fills_a_region_of_the_docs() -> None:
    used = {name for page in doc_tables.pages() for name in regions(page.read_text())}
    assert used == set(doc_tables.GENERATORS)


def test_a_stack_file_change_makes_the_tables_stale(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    prod = repo / "Pulumi.prod.yaml"
    text = prod.read_text()
    assert "bufferPoolSize: 1G" in text
    prod.write_text(text.replace("bufferPoolSize: 1G", "bufferPoolSize: 1200M"))
    changed = {page.name for page in stale(repo)}
    # The values table and the services table both show prod's buffer pool.
    assert changed == {"configuration.md", "architecture.md"}
    configuration = regenerate((repo / "docs" / "configuration.md").read_text(), repo)
    assert "| 1200M / 2G |" in configuration


def test_the_readme_follows_each_environments_domains_and_replicas(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    staging = repo / "Pulumi.staging.yaml"
    text = staging.read_text()
    assert "- staging.brandclub.com" in text
    staging.write_text(
        text.replace(
            "- staging.brandclub.com", "- stage.brandclub.com\n    - staging.brandclub.com"
        )
    )
    assert {page.name for page in stale(repo)} >= {"README.md"}
    readme = regenerate((repo / "README.md").read_text(), repo)
    assert "| staging | `staging` | `stage.brandclub.com` | `staging.brandclub.com` |" in readme


def test_a_hand_edit_inside_a_region_is_stale(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    page = repo / "docs" / "architecture.md"
    page.write_text(page.read_text().replace("| `backend` |", "| `backend2` |", 1))
    assert [path.name for path in stale(repo)] == ["architecture.md"]


def test_a_new_worker_row_is_in_every_table(monkeypatch: pytest.MonkeyPatch) -> None:
    row = catalogue.worker("queue-extra", "long")
    monkeypatch.setattr(catalogue, "APP_SERVICES", (*catalogue.APP_SERVICES, row))
    assert "| queue-extra | app |" in catalogue.markdown()
    # Not in the stack files: every environment shows it as not set, not as a crash.
    assert "| `services.queue-extra` replicas / limits / reservations | — | — | — | — |" in (
        doc_tables.values_table()
    )
    assert "| `queue-extra` | Frappe worker: queues long | — | — | — | — |" in (
        doc_tables.services_table()
    )


def test_an_unknown_region_is_an_error() -> None:
    with pytest.raises(KeyError, match="no generator for the region 'catalog'"):
        regenerate("<!-- generated:catalog -->\n<!-- /generated:catalog -->\n")


def test_the_command_rewrites_only_the_regions(tmp_path: Path) -> None:
    text = "before\n<!-- generated:catalogue -->\nold\n<!-- /generated:catalogue -->\nafter\n"
    assert regenerate(text) == (
        "before\n<!-- generated:catalogue -->\n"
        + catalogue.markdown()
        + "<!-- /generated:catalogue -->\nafter\n"
    )
