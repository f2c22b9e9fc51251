"""Wheel reproducibility: byte comparison that names the differing members, and build-path scans.

`check` is what `lwsbuild wheel --check-reproducible` runs: the same `lwsbuild wheel` again in a
fresh cache and a fresh working directory, then a byte comparison. The second run is seeded with
the verified pristine source tree only (its identity is its git tree id, so refetching it would
test the mirror, not the build): patching, configuring, compiling and packaging all happen again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .paths import sha256_file, with_checkout_on_path

if TYPE_CHECKING:
    from .request import BuildRequest

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


def _members(archive: zipfile.ZipFile) -> dict[str, tuple[str, tuple[object, ...]]]:
    """name → (sha256 of the bytes, the zip entry's own metadata)."""
    return {info.filename: (hashlib.sha256(archive.read(info)).hexdigest(),
                            (info.date_time, info.external_attr, info.compress_type, info.extra))
            for info in archive.infolist()}


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
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        ma, mb = _members(a), _members(b)
        order_a, order_b = a.namelist(), b.namelist()
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
    """Give a fresh cache the verified pristine tree (cache.py's layout: trees/<tree-id>/ + .json)."""
    trees = cache_dir / "trees"
    trees.mkdir(parents=True)
    shutil.copytree(pristine, trees / tree_id, symlinks=True)
    meta = pristine.with_suffix(".json")
    if meta.is_file():
        shutil.copyfile(meta, trees / f"{tree_id}.json")


def check(first: Path, request: BuildRequest, tree_id: str, pristine: Path) -> Comparison:
    """Run `lwsbuild wheel` for `request` again in a fresh cache and working directory; compare with
    `first`. Every field of the request is on the second command line (`BuildRequest.argv`), except
    --refresh: the fresh cache is seeded with the verified tree, whose identity is its tree id.

    The second wheel is kept beside the first (`<name>.second`) when they differ, for inspection.
    """
    with tempfile.TemporaryDirectory(prefix="lwsbuild-repro-") as scratch:
        root = Path(scratch)
        cache_dir, cwd, out = root / "cache", root / "elsewhere", root / "out"
        cwd.mkdir()
        _seed(cache_dir, tree_id, pristine)
        env = with_checkout_on_path(dict(os.environ, LWSBUILD_CACHE=str(cache_dir)))
        argv = dataclasses.replace(request, refresh=False).argv()
        result = subprocess.run([sys.executable, "-m", "lwsbuild", "wheel", *argv, "-o", str(out), "--json"],
                                cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            from .errors import WheelError

            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise WheelError(f"the second wheel build (fresh cache {cache_dir}) failed: {tail}")
        second = Path(json.loads(result.stdout)["wheel"])
        comparison = compare(first, second)
        if comparison.identical:
            return comparison
        kept = first.with_name(first.name + ".second")
        shutil.copyfile(second, kept)
        return dataclasses.replace(comparison, second=kept)
