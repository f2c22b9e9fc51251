"""What an lwsbuild cache holds, as the tests judge it.

A *complete entry* is any name without a leading dot directly in downloads/, trees/, prepared/ or
builds/ (lwsbuild makes everything under a dot-prefixed temporary name and renames it into place),
but an entry's manifest (`<entry>.manifest.json`, written with it: `manifests`).
*Leftovers* are dot-prefixed names other than lock files: temporaries and staging directories of
an unfinished run, which a later run must sweep (scratch/ holds only such names, while a run lives).
The apt/ area is apt's own state, not entries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .archives import copy_tree

AREAS = ("downloads", "trees", "prepared", "builds", "scratch")


def _names(cache: Path) -> list[str]:
    return [f"{area}/{p.name}" for area in AREAS if (cache / area).is_dir() for p in (cache / area).iterdir()]


MANIFEST = ".manifest.json"


def entries(cache: Path) -> set[str]:
    return {n for n in _names(cache) if not n.split("/", 1)[1].startswith(".") and not n.endswith(MANIFEST)}


def manifests(cache: Path) -> set[str]:
    """The entries that have a manifest beside them (every published one should)."""
    return {n.removesuffix(MANIFEST) for n in _names(cache) if n.endswith(MANIFEST)}


def leftovers(cache: Path) -> set[str]:
    return {n for n in _names(cache) if n.split("/", 1)[1].startswith(".") and not n.endswith(".lock")}


def seed(cache: Path, tree: Path, mirror: str = "debian") -> Path:
    """A cache already holding the verified `tree` (hard-linked: lwsbuild never edits trees/)."""
    trees = cache / "trees"
    trees.mkdir(parents=True, exist_ok=True)
    copy_tree(tree, trees / tree.name, link=True)
    (trees / f"{tree.name}.json").write_text(json.dumps({"mirror": mirror}))
    return cache


def snapshot(path: Path) -> dict[str, tuple[int, int, int]]:
    """relative path → (mode, size, mtime_ns) of everything under `path`: any change shows."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            st = full.lstat()
            found[str(full.relative_to(path))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found
