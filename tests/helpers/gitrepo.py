"""Local git repositories holding a source tree as one commit, tagged like upstream."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lwsbuild.source.treeid import isolated_git_env

# The same settings lwsbuild's tree id uses, and an identity for the commit.
_CONFIG = ("-c", "core.autocrlf=false", "-c", "core.filemode=true", "-c", "core.symlinks=true",
           "-c", "user.name=lwsbuild tests", "-c", "user.email=tests@localhost")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *_CONFIG, *args], cwd=cwd, env=isolated_git_env(), check=True,
                          capture_output=True, text=True).stdout.strip()


def make_repo(worktree: Path, tag: str) -> Path:
    """Turn `worktree` (a copy of a source tree) into a repo with one commit of it, tagged `tag`."""
    git("init", "-q", cwd=worktree)
    git("add", "-A", "-f", ".", cwd=worktree)
    git("commit", "-q", "-m", f"libwebsockets {tag}, re-made locally", cwd=worktree)
    git("tag", "-a", tag, "-m", tag, cwd=worktree)
    return worktree


def clone_bare(repo: Path, dest: Path) -> Path:
    git("clone", "-q", "--bare", str(repo), str(dest), cwd=repo.parent)
    return dest
