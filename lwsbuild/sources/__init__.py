"""Release → Source: the first mirror that answers, verified by git tree id, cached by tree id."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .. import cache, progress
from ..errors import AllMirrorsFailed, LwsbuildError, MirrorFailed, TreeIdMismatch, UsageError
from ..releases import Release
from .treeid import tree_id_with_gitlinks


class Mirror(Protocol):
    spec: str

    def materialize(self, release: Release, dest: Path) -> str | None:
        """Create `dest` holding the release's source tree, or raise MirrorFailed.

        `dest.parent` is this attempt's scratch directory (removed afterwards) for any temporary files.

        Returns why the delivery is not the pinned release even if its tree id matches (a git
        commit other than the pin), or None: identity is the tree id plus what the mirror vouches for.
        """


@dataclass(frozen=True)
class Source:
    release: Release
    tree_id: str
    mirror: str  # the spec of the mirror that first delivered these bytes
    path: Path  # the verified pristine tree in the cache (read-only by convention)
    unpinned: bool  # the tree is not the pinned release's (or the release has no pin)
    cached: bool  # served from the cache without touching any mirror

    def to_json(self) -> dict:
        return {"version": self.release.version, "tree_id": self.tree_id, "mirror": self.mirror,
                "path": str(self.path), "unpinned": self.unpinned, "cached": self.cached}


def parse_spec(spec: str) -> Mirror:
    from .archive import ArchiveMirror
    from .debian import DebianMirror
    from .git import GitMirror
    from .local import DirMirror

    kinds = {"git+": GitMirror, "archive:": ArchiveMirror, "dir:": DirMirror}
    hint = "use git+URL[@REF], archive:URL|PATH[#sha256=HEX], dir:PATH or debian"
    if spec == "debian":
        return DebianMirror.parse(spec)
    for prefix, kind in kinds.items():
        # An empty location would silently mean "the current directory".
        if spec.startswith(prefix) and spec.removeprefix(prefix).strip():
            mirror = kind.parse(spec)
            sha256 = getattr(mirror, "sha256", None)
            if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
                raise UsageError(f"--source {spec!r} has a malformed sha256 (64 lowercase hex digits)", hint=hint)
            return mirror
    raise UsageError(f"--source {spec!r} is not a source spec", hint=hint)


def _tree_entry(tree: str) -> Path:
    return cache.area("trees") / tree


def _staging_dir() -> Path:
    """A scratch directory for one extraction, named by pid so stale ones can be swept."""
    trees = cache.area("trees")
    for stale in trees.glob(".staging-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=trees))


def _from_cache(release: Release) -> Source | None:
    if not release.pinned or not _tree_entry(release.tree_id).is_dir():
        return None
    meta = cache.read_json(_tree_entry(release.tree_id).with_suffix(".json")) or {}
    return Source(release, release.tree_id, meta.get("mirror", "cache"), _tree_entry(release.tree_id),
                  unpinned=False, cached=True)


def _publish(staged: Path, tree: str, mirror: str) -> Path:
    entry = _tree_entry(tree)
    with cache.publishing(entry) as tmp:
        if tmp is not None:
            os.replace(staged, tmp)
            cache.write_json_atomic(entry.with_suffix(".json"), {"mirror": mirror})
    return entry


def _try(mirror: Mirror, release: Release, allow_unpinned: bool) -> Source:
    scratch = _staging_dir()
    try:
        staged = scratch / "tree"
        with progress.step(f"fetching libwebsockets {release.version} from {mirror.spec}"):
            objection = mirror.materialize(release, staged)
        with progress.step("verifying the git tree id"):
            # The pin's submodule links count as present: no archive or directory can carry them.
            actual = tree_id_with_gitlinks(staged, release.gitlinks)
        if release.pinned and actual != release.tree_id:
            objection = (f"{mirror.spec} delivered tree {actual}, "
                         f"but libwebsockets {release.version} is pinned to tree {release.tree_id}")
        if objection is not None and not allow_unpinned:
            raise TreeIdMismatch(objection)
        unpinned = objection is not None or not release.pinned
        if unpinned:
            progress.note(f"UNPINNED: libwebsockets {release.version} from {mirror.spec} is tree {actual}"
                          + (f" ({objection})" if objection else ""))
        return Source(release, actual, mirror.spec, _publish(staged, actual, mirror.spec), unpinned, False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch(release: Release, specs: list[str] | None = None, allow_unpinned: bool = False) -> Source:
    """The verified source tree of `release`, from the cache or the first mirror that delivers."""
    mirrors = [parse_spec(spec) for spec in (specs or release.mirrors)]
    # Without --allow-unpinned a mirror can only ever deliver the pinned tree, which the cache holds.
    # Sources the user names under --allow-unpinned may deliver other bytes: they are always asked.
    cached = None if specs and allow_unpinned else _from_cache(release)
    if cached is not None:
        return cached
    failures: list[LwsbuildError] = []
    for mirror in mirrors:
        try:
            return _try(mirror, release, allow_unpinned)
        except (MirrorFailed, TreeIdMismatch) as exc:
            failures.append(exc)
            if len(mirrors) > 1:  # a lone mirror's failure is the error line itself
                progress.note(f"mirror {mirror.spec} failed: {exc.one_line()}")
    mismatches = [f for f in failures if isinstance(f, TreeIdMismatch)]
    if mismatches:
        raise mismatches[0]
    if len(failures) == 1:
        raise failures[0]
    raise AllMirrorsFailed(f"no mirror delivered libwebsockets {release.version}: "
                           + "; ".join(str(f) for f in failures))
