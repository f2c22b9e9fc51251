"""Release → Source: the first mirror that answers, verified by git tree id, cached by tree id."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lwsbuild.common import cache, progress
from lwsbuild.errors import (
    AllMirrorsFailed,
    LwsbuildError,
    MirrorFailed,
    MirrorUnusable,
    TreeIdMismatch,
    UnsafeArchive,
    UnsafeSource,
    UsageError,
)
from lwsbuild.source.admission import audit, shown
from lwsbuild.source.releases import Release
from lwsbuild.source.treeid import tree_id_with_gitlinks

MAX_SPEC_BYTES = 4096  # PATH_MAX: no longer path or URL can name a source


class Mirror(Protocol):
    @property
    def spec(self) -> str:
        """The source spec the user (or releases.toml) wrote: git+URL, archive:…, dir:… or debian."""

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

    def to_json(self) -> dict[str, object]:
        return {"version": self.release.version, "tree_id": self.tree_id, "mirror": self.mirror,
                "path": str(self.path), "unpinned": self.unpinned, "cached": self.cached,
                "from_cache": self.cached}


def parse_spec(spec: str) -> Mirror:
    from lwsbuild.source.archive import ArchiveMirror
    from lwsbuild.source.debian import DebianMirror
    from lwsbuild.source.git import GitMirror
    from lwsbuild.source.local import DirMirror

    kinds: dict[str, Callable[[str], Mirror]] = {"git+": GitMirror.parse, "archive:": ArchiveMirror.parse,
                                                 "dir:": DirMirror.parse}
    hint = "use git+URL[@REF], archive:URL|PATH[#sha256=HEX], dir:PATH or debian"
    if len(os.fsencode(spec)) > MAX_SPEC_BYTES:
        raise UsageError(f"--source {shown(spec)} is longer than any path or URL can be ({MAX_SPEC_BYTES} bytes)",
                         hint=hint)
    if spec == "debian":
        return DebianMirror.parse(spec)
    for prefix, parse in kinds.items():
        # An empty location would silently mean "the current directory".
        if spec.startswith(prefix) and spec.removeprefix(prefix).strip():
            mirror = parse(spec)
            sha256 = getattr(mirror, "sha256", None)
            if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
                raise UsageError(f"--source {shown(spec)} has a malformed sha256 (64 lowercase hex digits)", hint=hint)
            return mirror
    raise UsageError(f"--source {shown(spec)} is not a source spec", hint=hint)


def _tree_entry(tree: str) -> Path:
    return cache.area(cache.TREES) / tree


def _staging_dir() -> Path:
    """A scratch directory for one extraction, beside the trees it is renamed into (one file system)."""
    return cache.scratch_dir("staging", cache.TREES)


# trees/<tree id>.json records, per tree, which mirror first delivered it as the pinned release
# ("pinned") and which first delivered it otherwise ("unpinned": --allow-unpinned, another commit or
# version): a tree some mirror gave only as unpinned is never served, or reported, as the pin.
def _record(tree: str) -> dict[str, dict[str, str]]:
    meta = cache.read_json(_tree_entry(tree).with_suffix(".json")) or {}
    record = {kind: meta[kind] for kind in ("pinned", "unpinned") if isinstance(meta.get(kind), dict)}
    legacy = meta.get("mirror")
    if isinstance(legacy, str) and not record:
        # Before the split only a git mirror could deliver a pinned tree id unpinned (another commit).
        record["unpinned" if legacy.startswith("git+") else "pinned"] = {"mirror": legacy}
    return record


def _from_cache(release: Release, full: bool) -> Source | None:
    """The pinned tree from the cache, once checked: its files against its manifest (sizes and times;
    `full`: every file's hash and the tree id again, against the pin). A tree that changed since it
    was verified is discarded, saying so, and fetched again."""
    tree = release.tree_id  # None: the release has no pin
    if tree is None or not _tree_entry(tree).is_dir():
        return None
    pinned = _record(tree).get("pinned")
    if pinned is None:
        return None
    entry = _tree_entry(tree)
    if not cache.intact(entry, full, what="cached tree", redo="fetching libwebsockets again",
                        identity=(lambda: tree_id_with_gitlinks(entry, release.gitlinks), tree)):
        return None
    return Source(release, tree, pinned.get("mirror", "cache"), entry, unpinned=False, cached=True)


def _publish(staged: Path, tree: str, mirror: str, unpinned: bool) -> Path:
    entry = _tree_entry(tree)
    kind = "unpinned" if unpinned else "pinned"
    with cache.publishing(entry) as tmp:  # holds the entry's lock: the record is updated under it
        record = {} if tmp is not None else _record(tree)
        if kind not in record:
            record[kind] = {"mirror": mirror}
            cache.write_json_atomic(entry.with_suffix(".json"), record)
        if tmp is not None:
            os.replace(staged, tmp)
    return entry


def _try(mirror: Mirror, release: Release, allow_unpinned: bool) -> Source:
    scratch = _staging_dir()
    try:
        staged = scratch / "tree"
        with progress.step(f"fetching libwebsockets {release.version} from {mirror.spec}"):
            try:
                objection = mirror.materialize(release, staged)
            except OSError as exc:  # a path too long, unreadable, a full disk: one line, next mirror
                raise MirrorUnusable(f"{shown(mirror.spec, quote=False)}: {exc.strerror or exc}") from None
        with progress.step("verifying the git tree id"):
            # Every mirror kind wrote through admission's checks; this re-check makes sure of it.
            audit(staged, shown(mirror.spec, quote=False))
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
        return Source(release, actual, mirror.spec, _publish(staged, actual, mirror.spec, unpinned), unpinned, False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch(release: Release, specs: list[str] | None = None, allow_unpinned: bool = False,
          refresh: bool = False) -> Source:
    """The verified source tree of `release`, from the cache or the first mirror that delivers.

    `refresh` asks the mirrors even when the pinned tree is cached: a mirror is verified, not trusted
    because some other mirror delivered the right bytes once; and the cached tree's id is computed
    again (a tree that no longer matches is replaced by the mirror's).
    """
    # The user's specs are checked before anything else; the pin's own (data) only when asked, so a
    # build served from the cache imports no downloader.
    named = [parse_spec(spec) for spec in specs or ()]
    # Checked (in full under --refresh) and discarded when it changed, whether or not it is served.
    cached = _from_cache(release, full=refresh)
    # Without --allow-unpinned a mirror can only ever deliver the pinned tree, which the cache holds.
    # Sources the user names under --allow-unpinned may deliver other bytes: they are always asked.
    if refresh or (specs and allow_unpinned):
        cached = None
    if cached is not None:
        if specs:  # the user named mirrors that were not asked: say so, and how to ask them
            progress.note(f"libwebsockets {release.version} (tree {cached.tree_id[:12]}) is served from the cache, "
                          f"first delivered by {cached.mirror}; --source was not asked (pass --refresh to verify it)")
        return cached
    mirrors = named or [parse_spec(spec) for spec in release.mirrors]
    failures: list[LwsbuildError] = []
    for mirror in mirrors:
        try:
            return _try(mirror, release, allow_unpinned)
        except (MirrorFailed, TreeIdMismatch, UnsafeSource, UnsafeArchive) as exc:
            failures.append(exc)
            if len(mirrors) > 1:  # a lone mirror's failure is the error line itself
                progress.note(f"mirror {shown(mirror.spec, quote=False)} failed: {exc.one_line()}")
    refusals = [f for f in failures if isinstance(f, (TreeIdMismatch, UnsafeSource, UnsafeArchive))]
    if refusals:
        raise refusals[0]
    if len(failures) == 1:
        raise failures[0]
    raise AllMirrorsFailed(f"no mirror delivered libwebsockets {release.version}: "
                           + "; ".join(str(f) for f in failures))
