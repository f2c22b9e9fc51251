"""Wheel reproducibility: byte comparison that names the differing members, and build-path scans.

`rebuilt` runs the same `lwsbuild wheel` (or `build`) again in a fresh cache and a fresh working
directory: what `lwsbuild wheel --check-reproducible` (`check`) and `lwsbuild verify` compare with.
It may be seeded with a pristine source tree only (its identity is its git tree id, checked again
before use, so refetching it would test the mirror, not the build): patching, configuring,
compiling and packaging all happen again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwsbuild.common import bounded, cache, progress, settings
from lwsbuild.common.paths import sha256_file, with_checkout_on_path
from lwsbuild.errors import UnreadableInput

if TYPE_CHECKING:
    from lwsbuild.request import BuildRequest

_DIFFOSCOPE_TIMEOUT_S = 300
_DIFFOSCOPE_MAX_CHARS = 20_000


@dataclass(frozen=True)
class MemberDiff:
    member: str
    what: str  # "content", "only in first", "only in second", "zip metadata" or "zip layout"
    first: str  # sha256 of the member's bytes ("" if absent)
    second: str

    def to_json(self) -> dict[str, Any]:
        return {"member": self.member, "what": self.what, "first_sha256": self.first, "second_sha256": self.second}

    def describe(self) -> str:
        if self.what == "content":
            return f"{self.member}: content differs (sha256 {self.first[:12]} vs {self.second[:12]})"
        return f"{self.member}: {self.what}"


@dataclass(frozen=True)
class Comparison:
    first: Path
    second: Path  # may be gone (a temporary rebuild): everything below was read while it existed
    first_sha256: str
    second_sha256: str
    differences: tuple[MemberDiff, ...]
    diffoscope: str | None  # diffoscope's text report when it is installed and the wheels differ

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"identical": self.identical, "first": str(self.first), "second": str(self.second),
                "first_sha256": self.first_sha256, "second_sha256": self.second_sha256,
                "differences": [d.to_json() for d in self.differences], "diffoscope": self.diffoscope}

    def describe(self) -> str:
        if self.identical:
            return f"identical: sha256 {self.first_sha256}"
        lines = [f"{len(self.differences)} difference(s) between {self.first} and {self.second}:"]
        lines += [f"  {d.describe()}" for d in self.differences]
        if self.diffoscope:
            lines += ["diffoscope:", self.diffoscope]
        return "\n".join(lines)


def _members(archive: bounded.Zip) -> dict[str, tuple[str, tuple[object, ...]]]:
    """name → (sha256 of the bytes, the zip entry's own metadata); members streamed, each bounded."""
    members: dict[str, tuple[str, tuple[object, ...]]] = {}
    for info in archive.infos():
        digest = hashlib.sha256()
        for chunk in archive.chunks(info):
            digest.update(chunk)
        members[info.filename] = (digest.hexdigest(), (info.date_time, info.external_attr, info.compress_type, info.extra))
    return members


def _diffoscope(first: Path, second: Path) -> str | None:
    tool = shutil.which("diffoscope")
    if tool is None:
        return None
    try:
        result = subprocess.run([tool, "--text", "-", str(first), str(second)], capture_output=True, text=True,
                                timeout=_DIFFOSCOPE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"(diffoscope did not finish within {_DIFFOSCOPE_TIMEOUT_S} s)"
    return result.stdout[:_DIFFOSCOPE_MAX_CHARS] or result.stderr[:_DIFFOSCOPE_MAX_CHARS]


def compare(first: Path, second: Path) -> Comparison:
    """Byte-compare two wheels; when they differ, say which members do, and how."""
    hashes = sha256_file(first), sha256_file(second)
    if hashes[0] == hashes[1]:
        return Comparison(first, second, *hashes, (), None)
    with bounded.open_zip(first, str(first), UnreadableInput) as a, bounded.open_zip(second, str(second), UnreadableInput) as b:
        ma, mb = _members(a), _members(b)
        order_a, order_b = a.names(), b.names()
    diffs: list[MemberDiff] = []
    for name in sorted(ma.keys() | mb.keys()):
        (ha, za), (hb, zb) = ma.get(name, ("", None)), mb.get(name, ("", None))
        if za is None or zb is None:
            diffs.append(MemberDiff(name, "only in second" if za is None else "only in first", ha, hb))
        elif ha != hb:
            diffs.append(MemberDiff(name, "content", ha, hb))
        elif za != zb:
            diffs.append(MemberDiff(name, "zip metadata (timestamp, mode or compression)", ha, hb))
    if not diffs:
        what = "member order" if order_a != order_b else "zip layout (compression bytes or comments)"
        diffs.append(MemberDiff("*", what, *hashes))
    return Comparison(first, second, *hashes, tuple(diffs), _diffoscope(first, second))


def find_paths(wheel: Path, paths: Iterable[Path | str]) -> list[tuple[str, str]]:
    """(member, path) for every member of `wheel` whose bytes contain one of the absolute `paths`."""
    needles: set[str] = set()
    for path in paths:
        for form in {str(path), os.path.realpath(path)}:
            if os.path.isabs(form) and form.rstrip("/"):
                needles.add(form.rstrip("/"))
    found = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            data = archive.read(info)
            found += [(info.filename, n) for n in sorted(needles) if n.encode() in data]
    return found


def _seed(cache_dir: Path, tree_id: str, pristine: Path) -> None:
    """Give a fresh cache a pristine tree (cache.py's layout: trees/<tree-id>/ + .json). Its manifest
    stays behind: the rebuild finds none and computes the tree id again before using it."""
    trees = cache_dir / cache.TREES
    trees.mkdir(parents=True)
    shutil.copytree(pristine, trees / tree_id, symlinks=True)
    meta = pristine.with_suffix(".json")
    if meta.is_file():
        shutil.copyfile(meta, trees / f"{tree_id}.json")


@dataclass(frozen=True)
class Rebuild:
    """What a rebuild in a fresh cache made (its files live until `rebuilt` returns)."""

    prefix: Path
    wheel: Path | None  # None: a build only
    cache: Path
    seconds: float


@contextmanager
def rebuilt(request: BuildRequest, *, wheel: bool, seed: tuple[str, Path] | None = None) -> Iterator[Rebuild]:
    """`lwsbuild wheel` (or `build`) of `request` again, in a fresh cache and working directory, by a
    child lwsbuild given every setting on its command line (`BuildRequest.argv`) and none of the
    settings' variables. `seed` (tree id, pristine tree) saves the download; the tree id is checked
    again before the tree is used. --refresh is dropped: the fresh cache has nothing to refresh."""
    from lwsbuild.errors import RebuildFailed

    with cache.scratch("rebuild") as root:
        cache_dir, cwd, out = root / "cache", root / "elsewhere", root / "out"
        cwd.mkdir()
        if seed is not None:
            _seed(cache_dir, *seed)
        env = with_checkout_on_path({**settings.without_settings(os.environ), "LWSBUILD_CACHE": str(cache_dir)})
        argv = dataclasses.replace(request, refresh=False).argv()
        command = [sys.executable, "-m", "lwsbuild", "wheel" if wheel else "build", *argv, "--json"]
        command += ["-o", str(out)] if wheel else []
        started = time.monotonic()
        streamed = progress.verbose()  # --verbose: the child streams its steps to our stderr
        with progress.step(f"rebuilding in a fresh cache ({cache_dir})"):
            result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                    stderr=None if streamed else subprocess.PIPE, text=True, check=False)
        if result.returncode != 0:
            tail = ((result.stderr or "").strip().splitlines() or ["(its output is above)"])[-1]
            raise RebuildFailed(f"the rebuild in a fresh cache ({cache_dir}) failed: {tail}", code=result.returncode)
        data = json.loads(result.stdout)
        build = data["build"] if wheel else data
        yield Rebuild(Path(build["prefix"]), Path(data["wheel"]) if wheel else None, cache_dir,
                      time.monotonic() - started)


def check(first: Path, request: BuildRequest, tree_id: str, pristine: Path) -> Comparison:
    """Run `lwsbuild wheel` for `request` again in a fresh cache and working directory; compare with
    `first`. The second wheel is kept beside the first (`<name>.second`) when they differ, for inspection.
    """
    with rebuilt(request, wheel=True, seed=(tree_id, pristine)) as second:
        assert second.wheel is not None
        comparison = compare(first, second.wheel)
        if comparison.identical:
            return comparison
        kept = first.with_name(first.name + ".second")
        shutil.copyfile(second.wheel, kept)
        return dataclasses.replace(comparison, second=kept)
