"""The identity of a source: its git tree id, whatever mirror delivered the bytes."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

# Fixed settings so the id depends on the files alone, never on the user's git configuration.
_GIT_CONFIG = ("-c", "core.autocrlf=false", "-c", "core.filemode=true", "-c", "core.symlinks=true",
               "-c", "core.safecrlf=false", "-c", "core.excludesFile=/dev/null")


def isolated_git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which git sees no user/system config and no enclosing repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_TERMINAL_PROMPT="0")
    env.update(extra or {})
    return env


def tree_id(path: Path) -> str:
    """What `git add -A -f && git write-tree` gives over every file of `path` (.gitignore ignored)."""
    with tempfile.TemporaryDirectory(prefix="lwsbuild-treeid-") as scratch:
        git_dir = Path(scratch) / "git"
        env = isolated_git_env({"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(path),
                                "GIT_INDEX_FILE": str(Path(scratch) / "index")})
        subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], env=isolated_git_env(), check=True)
        subprocess.run(["git", *_GIT_CONFIG, "add", "-A", "-f", "."], cwd=path, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        result = subprocess.run(["git", *_GIT_CONFIG, "write-tree"], cwd=path, env=env, check=True,
                                capture_output=True, text=True)
        return result.stdout.strip()
