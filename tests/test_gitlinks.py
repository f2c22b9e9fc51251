"""Gitlinks (submodule links) of a pin: verification of an archive or directory tree adds them
where the path is absent or an empty directory. A tiny synthetic repository, no lws: fast."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lwsbuild.errors import TreeIdMismatch
from lwsbuild.source import fetch as sources
from lwsbuild.source.releases import Release
from lwsbuild.source.treeid import isolated_git_env, tree_id, tree_id_with_gitlinks

LINK = "examples/api-tests/qpack/qifs"
COMMIT = "da52cd936b3e34dac7ac12aa8066fc57676af106"


def git(repo: Path, *args: str) -> str:
    env = isolated_git_env({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t"})
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose tree holds files around a gitlink at LINK; (work tree, its tree id)."""
    root = tmp_path / "repo"
    (root / "examples" / "api-tests" / "qpack").mkdir(parents=True)
    (root / "CMakeLists.txt").write_text("project(x)\n")
    (root / "examples" / "api-tests" / "qpack" / "main.c").write_text("int main(void) { return 0; }\n")
    (root / "examples" / "api-tests" / "qpack-zzz.c").write_text("/* sorts after the directory */\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{COMMIT},{LINK}")
    tree = git(root, "write-tree")
    assert git(root, "ls-tree", "-r", tree, LINK).startswith(f"160000 commit {COMMIT}")
    shutil.rmtree(root / ".git")
    return root, tree


def test_absent_link_path_is_added(repo: tuple[Path, str]) -> None:
    root, tree = repo
    assert tree_id(root) != tree  # without the pin's gitlinks the tree cannot match
    assert tree_id_with_gitlinks(root, [(LINK, COMMIT)]) == tree


def test_empty_directory_at_the_link_is_the_link(repo: tuple[Path, str]) -> None:
    root, tree = repo
    (root / LINK).mkdir()
    (root / LINK / "nested-empty").mkdir()  # still no file: what an uninitialised submodule leaves
    assert tree_id_with_gitlinks(root, [(LINK, COMMIT)]) == tree


def test_absent_parent_directories_are_made_for_the_link(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{COMMIT},deep/er/link")
    tree = git(root, "write-tree")
    shutil.rmtree(root / ".git")
    assert tree_id_with_gitlinks(root, [("deep/er/link", COMMIT)]) == tree


def test_a_filled_directory_or_another_commit_does_not_match(repo: tuple[Path, str]) -> None:
    root, tree = repo
    assert tree_id_with_gitlinks(root, [(LINK, "0" * 40)]) != tree
    (root / LINK).mkdir()
    (root / LINK / "vendored.c").write_text("/* a checked-out submodule is a plain directory */\n")
    assert tree_id_with_gitlinks(root, [(LINK, COMMIT)]) != tree
    assert tree_id_with_gitlinks(root, []) == tree_id(root)


def test_fetch_verifies_a_dir_source_against_a_pin_with_gitlinks(repo: tuple[Path, str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root, tree = repo
    monkeypatch.setenv("LWSBUILD_CACHE", str(tmp_path / "cache"))
    pin = Release("9.0.0", "v9.0.0", "2026-01-01", "c" * 40, tree, (f"dir:{root}",), gitlinks=((LINK, COMMIT),))
    source = sources.fetch(pin)
    assert (source.tree_id, source.unpinned) == (tree, False)
    # The same bytes against a pin that lists no gitlinks (and a cache that does not hold the tree yet).
    monkeypatch.setenv("LWSBUILD_CACHE", str(tmp_path / "cache2"))
    unlinked = Release("9.0.0", "v9.0.0", "2026-01-01", "c" * 40, tree, (f"dir:{root}",))
    with pytest.raises(TreeIdMismatch):
        sources.fetch(unlinked, [f"dir:{root}"], allow_unpinned=False)
