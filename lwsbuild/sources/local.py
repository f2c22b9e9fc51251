"""`dir:PATH` mirrors: a local tree, copied (the user's tree is never patched in place)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import MirrorFailed
from ..releases import Release


@dataclass(frozen=True)
class DirMirror:
    spec: str
    path: Path

    @classmethod
    def parse(cls, spec: str) -> DirMirror:
        return cls(spec, Path(spec.removeprefix("dir:")).expanduser())

    def materialize(self, release: Release, dest: Path) -> None:
        if not (self.path / "CMakeLists.txt").is_file():
            raise MirrorFailed(f"{self.path} is not a libwebsockets source tree (no CMakeLists.txt)")
        # A checkout's .git is metadata, not source: it is not part of the release's tree.
        shutil.copytree(self.path, dest, symlinks=True, ignore=lambda d, names:
                        [".git"] if Path(d) == self.path and ".git" in names else [])
