"""`lwsbuild verify WHEEL|PREFIX...`: is an artifact what its provenance says it is? Rebuild and compare.

Each artifact's own provenance.json names the build (release and tree id, series, variant, -D
options, compiler, flags: request.BuildRequest.rebuilding). That build is made again by a child
lwsbuild in a fresh, private cache (reproducible.rebuilt: nothing of the caller's cache is trusted;
a pristine tree found there is only a seed whose tree id is computed again) and the artifact is
compared with the rebuild byte for byte: a wheel member by member, a prefix file by file. Artifacts
of the same build share one rebuild. Where they differ, the rebuild's provenance.json is compared
with the artifact's too, so "built with another compiler" is told apart from "changed since".

Sanitizer builds are compared the same way, and differ when they were built under another cache
path: GCC 12 writes the absolute source paths into ASan's and UBSan's metadata (wheel.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwsbuild.build import provenance
from lwsbuild.build.provenance import Provenance
from lwsbuild.common import cache, manifest, prefix
from lwsbuild.common.paths import sha256_file
from lwsbuild.errors import UsageError
from lwsbuild.request import BuildRequest
from lwsbuild.source import releases
from lwsbuild.wheel import audit, reproducible


@dataclass(frozen=True)
class Verdict:
    target: Path
    kind: str  # "wheel" | "prefix"
    differences: tuple[str, ...]  # "member: what", empty when identical
    provenance_differences: tuple[str, ...]  # the provenance.json fields the rebuild disagrees on
    sha256: str  # of a wheel ("" for a prefix)
    seconds: float  # the rebuild's (shared by the artifacts of one build)

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"target": str(self.target), "kind": self.kind, "identical": self.identical,
                "differences": list(self.differences), "provenance_differences": list(self.provenance_differences),
                "sha256": self.sha256, "rebuild_seconds": round(self.seconds, 1)}

    def describe(self) -> str:
        if self.identical:
            what = f"sha256 {self.sha256}" if self.sha256 else "every file"
            return f"{self.target}: identical to its rebuild ({what}; rebuilt in {self.seconds:.0f} s)"
        lines = [f"{self.target}: DIFFERS from its rebuild in {len(self.differences)} file(s):"]
        lines += [f"  {change}" for change in self.differences[:20]]
        if len(self.differences) > 20:
            lines.append(f"  ... and {len(self.differences) - 20} more")
        lines.append("  provenance.json: " + (f"the rebuild's differs in {', '.join(self.provenance_differences)}"
                                               if self.provenance_differences else
                                               "the rebuild's is the same: the artifact changed after it was built"))
        if any(change.startswith("lwsbuild/") and not change.startswith(prefix.WHEEL_ROOT) for change in self.differences):
            lines.append("  note: lwsbuild's own code in the wheel differs: verify with the lwsbuild that made it")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Target:
    path: Path
    kind: str
    provenance: Provenance


def _load(path: Path) -> _Target:
    described = audit.load_build(path).provenance
    if not isinstance(described, Provenance):  # series.json only: built by a packager's tools, not by lwsbuild
        raise UsageError(f"{path} was built by {described.packager}, not by lwsbuild: there is no build to repeat",
                         hint="verify wheels and prefixes lwsbuild made; `lwsbuild audit` reads this one")
    return _Target(path, "wheel" if path.is_file() else "prefix", described)


def _seed(described: Provenance) -> tuple[str, Path] | None:
    """The pristine tree from the caller's cache, if it holds the artifact's (only a seed: the rebuild
    computes its tree id again before using it)."""
    entry = cache.location() / cache.TREES / described.lws.tree_id
    return (described.lws.tree_id, entry) if entry.is_dir() else None


def _provenance_differences(first: Provenance, second: Provenance) -> tuple[str, ...]:
    """The provenance.json fields two builds disagree on (parsing refuses unknown or missing ones)."""
    a, b = first.to_json(), second.to_json()
    return tuple(sorted(key for key in a if a[key] != b[key]))


def _compare_wheel(target: Path, rebuilt: Path) -> tuple[str, ...]:
    comparison = reproducible.compare(target, rebuilt)
    names = () if target.name == rebuilt.name else (f"(file name) {target.name} vs {rebuilt.name}",)
    return names + tuple(d.describe() for d in comparison.differences)


def _compare_prefix(target: Path, rebuilt: Path) -> tuple[str, ...]:
    """The target is hashed here (nothing of it is trusted); the rebuild's hashes were recorded when
    its fresh cache published it."""
    return tuple(manifest.compare(manifest.take(target), cache.recorded_contents(rebuilt)))


def verify(targets: Iterable[Path], sources: tuple[str, ...] = (), keep: Path | None = None) -> list[Verdict]:
    """One verdict per target, in order; the artifacts of one build share its rebuild."""
    loaded = [_load(path) for path in targets]
    groups: dict[BuildRequest, list[_Target]] = {}
    for target in loaded:
        groups.setdefault(BuildRequest.rebuilding(target.provenance, sources), []).append(target)
    verdicts: dict[Path, Verdict] = {}
    for request, members in groups.items():
        releases.get(request.release_version, request.allow_unpinned)  # an unknown release: one line, no rebuild
        wants_wheel = any(t.kind == "wheel" for t in members)
        with reproducible.rebuilt(request, wheel=wants_wheel, seed=_seed(members[0].provenance)) as made:
            rebuilt_provenance = provenance.read(made.prefix / prefix.PROVENANCE)
            for target in members:
                if target.kind == "wheel":
                    assert made.wheel is not None
                    differences = _compare_wheel(target.path, made.wheel)
                    digest = sha256_file(target.path)
                else:
                    differences, digest = _compare_prefix(target.path, made.prefix), ""
                disagree = _provenance_differences(target.provenance, rebuilt_provenance) if differences else ()
                verdicts[target.path] = Verdict(target.path, target.kind, differences, disagree, digest, made.seconds)
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                if made.wheel is not None:
                    shutil.copyfile(made.wheel, keep / made.wheel.name)
                shutil.copytree(made.prefix, keep / f"prefix-{rebuilt_provenance.build_key}", symlinks=True,
                                dirs_exist_ok=True)
    return [verdicts[target.path] for target in loaded]
