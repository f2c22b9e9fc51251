"""The README is for a newcomer's first minutes; the rest is under docs/, and the tables there that
mirror code are generated (lwsbuild/cli/tables.py): a stale one fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from lwsbuild.cli import tables

DOCS = sorted((REPO / "docs").glob("*.md"))


def test_the_readme_is_short_and_has_the_two_setup_commands_and_the_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 10 * 1024
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", readme, re.DOTALL)
    assert block and len(block.group(1).strip().splitlines()) == 2, "two set-up commands"
    assert "python3 -m pytest\n" in readme
    assert "python3 -m pytest -ra" in (REPO / ".ci" / "run").read_text()  # CI runs the README's command


@pytest.mark.parametrize("path", [REPO / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_generated_table_is_fresh(path: Path) -> None:
    text = path.read_text()
    assert tables.refresh(text) == text, f"stale: python -m lwsbuild.cli.tables write {path.relative_to(REPO)}"


def test_every_table_that_mirrors_code_is_generated_somewhere() -> None:
    marked = {name for path in [REPO / "README.md", *DOCS]
              for name in re.findall(r"<!-- generated: ([a-z-]+) -->", path.read_text())}
    assert marked == set(tables.TABLES)


def test_the_check_names_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "stale.md"
    stale.write_text("<!-- generated: exit-codes -->\n| old |\n<!-- end: exit-codes -->\n")
    result = subprocess.run([sys.executable, "-m", "lwsbuild.cli.tables", "check", str(stale)], capture_output=True,
                            text=True, cwd=REPO, check=False)
    assert result.returncode == 1 and str(stale) in result.stderr
    subprocess.run([sys.executable, "-m", "lwsbuild.cli.tables", "write", str(stale)], cwd=REPO, check=True)
    assert "| 9 | cache |" in stale.read_text()


def test_every_link_between_the_documents_resolves() -> None:
    for path in [REPO / "README.md", *DOCS]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"
