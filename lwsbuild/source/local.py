"""`dir:PATH` mirrors: a local tree, copied (the user's tree is never patched in place)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lwsbuild.common.paths import expand_user
from lwsbuild.errors import SourceNotFound
from lwsbuild.source.admission import TreeWriter, copy_in, shown
from lwsbuild.source.archive import download_deadline_s
from lwsbuild.source.releases import Release


@dataclass(frozen=True)
class DirMirror:
    spec: str
    path: Path

    @classmethod
    def parse(cls, spec: str) -> DirMirror:
        return cls(spec, expand_user(spec.removeprefix("dir:"), "the source directory"))

    def materialize(self, release: Release, dest: Path) -> None:
        if not (self.path / "CMakeLists.txt").is_file():
            raise SourceNotFound(f"{shown(str(self.path))} is not a libwebsockets source tree (no CMakeLists.txt)")
        # Copied through the same checks as an archive's members (no .git, fifo, device or link
        # out), except that a checkout's own top-level .git is metadata, not source: it is left out.
        copy_in(self.path, TreeWriter(dest, f"dir:{shown(str(self.path))}", seconds=download_deadline_s()),
                skip_top_git=True)
