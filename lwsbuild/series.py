"""The fix series: load patches/series.toml, classify each patch against a tree, apply or revert.

Each patch is classified per tree with `git apply` at zero fuzz: forward check passes → `applied`;
reverse check passes → `upstream` (the release already carries it); neither → `conflict`, fatal,
naming the file and hunk. `--unfixed` instead reverts what upstream carries and applies nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from functools import cache as memoize
from pathlib import Path

from . import cache, progress, tools
from .errors import PatchConflict, SeriesError, UnknownSeriesError
from .paths import own_dir
from .releases import Release, check_series_supported, normalize, version_key
from .sources import Source
from .sources.treeid import isolated_git_env, tree_id

ALL = "all"


def series_dir() -> Path:
    """patches/ of a source checkout, else the copy installed inside the package."""
    return own_dir("patches", "series.toml")


@dataclass(frozen=True)
class Patch:
    id: str
    path: Path
    title: str
    why: str
    upstream: str
    fixed_in: str
    sets: tuple[str, ...]
    evidence: str
    sha256: str


@dataclass(frozen=True)
class Series:
    name: str
    patches: tuple[Patch, ...]

    @property
    def digest(self) -> str:
        """Changes whenever the selection or any patch's bytes change."""
        text = "\n".join(f"{p.id} {p.sha256}" for p in self.patches)
        return hashlib.sha256(f"{self.name}\n{text}".encode()).hexdigest()


@memoize
def _load() -> tuple[dict[str, str], tuple[Patch, ...]]:
    folder = series_dir()
    try:
        data = tomllib.loads((folder / "series.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SeriesError(f"cannot read {folder / 'series.toml'}: {exc}") from None
    patches = []
    for entry in data.get("patch", []):
        try:
            path = folder / entry["file"]
            patches.append(Patch(entry["id"], path, entry["title"], " ".join(entry["why"].split()),
                                 entry["upstream"], entry["fixed_in"], tuple(entry["sets"]),
                                 entry.get("evidence", ""), hashlib.sha256(path.read_bytes()).hexdigest()))
        except (KeyError, OSError) as exc:
            raise SeriesError(f"series.toml entry {entry.get('id', '?')} is incomplete or its file is missing: {exc}") from None
    ids = [p.id for p in patches]
    if ids != sorted(set(ids)):
        raise SeriesError(f"series.toml patch ids must be unique and in apply order, got {ids}")
    return dict(data.get("sets", {})), tuple(patches)



def select(name: str = ALL) -> Series:
    sets, patches = _load()
    if name not in sets:
        raise UnknownSeriesError(f"unknown series {name!r}", hint=f"use one of: {', '.join(sets)}")
    chosen = patches if name == ALL else tuple(p for p in patches if name in p.sets)
    return Series(name, chosen)


def expected_statuses(release: Release) -> dict[str, str]:
    """patch id → "upstream" | "missing" | "n/a" for every patch of the full series.

    The pins record the seed fixes per release; a later patch is judged by its `fixed_in`: upstream
    from that release on, missing before it, and missing everywhere while it is in no release.
    """
    statuses = {}
    for patch in select(ALL).patches:
        if patch.id in release.expected:
            statuses[patch.id] = release.expected[patch.id]
        elif patch.fixed_in and version_key(release.version) >= version_key(
                normalize(patch.fixed_in)):
            statuses[patch.id] = "upstream"
        else:
            statuses[patch.id] = "missing"
    return statuses


# --- classification -------------------------------------------------------------------------

def _git_apply(tree: Path, patch: Path, *flags: str) -> subprocess.CompletedProcess:
    """`git apply` in `tree`, where git can discover no repository, config or attributes of the
    tree's or anyone's: its repository is an empty private one (GIT_DIR), discovery stops at the
    tree, system/global config and attributes are off, and no hook or fsmonitor can run. A `.git`
    inside a tree could otherwise name a clean/smudge filter that git runs on each file it reads."""
    git = tools.require("git", "applying the fix series")
    with tempfile.TemporaryDirectory(prefix="lwsbuild-apply-") as private:
        git_dir = Path(private) / "empty.git"
        env = isolated_git_env({"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(tree),
                                "GIT_CEILING_DIRECTORIES": f"{tree}:{tree.parent}", "GIT_ATTR_NOSYSTEM": "1",
                                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"})
        subprocess.run([git, "init", "-q", "--bare", "--template=", str(git_dir)], env=isolated_git_env(),
                       capture_output=True, check=True)
        return subprocess.run([git, *_APPLY_CONFIG, "apply", "--whitespace=nowarn", *flags, str(patch)],
                              cwd=tree, env=env, capture_output=True, text=True)


_APPLY_CONFIG = ("-c", "core.attributesFile=/dev/null", "-c", "core.hooksPath=/dev/null",
                 "-c", "core.fsmonitor=false")


def _hunks(patch: Path) -> dict[str, list[tuple[int, str]]]:
    """file → [(old start line, hunk header)] of a unified diff."""
    hunks: dict[str, list[tuple[int, str]]] = {}
    current = None
    for line in patch.read_text().splitlines():
        if line.startswith("--- a/"):
            current = line[6:]
        elif line.startswith("@@") and current:
            start = int(re.match(r"@@ -(\d+)", line).group(1))
            hunks.setdefault(current, []).append((start, line.split(" @@")[0] + " @@"))
    return hunks


def _conflict(patch: Patch, tree_label: str, stderr: str) -> PatchConflict:
    failed = re.search(r"patch failed: (\S+):(\d+)", stderr)
    if failed:
        file, line = failed.group(1), int(failed.group(2))
        entries = _hunks(patch.path).get(file, [])
        number = next((i for i, (start, _) in enumerate(entries, 1) if start == line), None)
        where = f"{file} hunk {number} ({entries[number - 1][1]})" if number else f"{file} line {line}"
    else:
        missing = re.search(r"error: (\S+): (No such file|does not exist)", stderr)
        where = f"{missing.group(1)} (no such file)" if missing else stderr.strip().splitlines()[-1]
    return PatchConflict(f"patch {patch.id} ({patch.title}) conflicts with {tree_label} at {where}")


@dataclass(frozen=True)
class PatchResult:
    patch: Patch
    status: str  # applied | upstream | reverted | absent

    def to_json(self) -> dict:
        return {"id": self.patch.id, "status": self.status, "title": self.patch.title,
                "sha256": self.patch.sha256}


def _classify_and_apply(tree: Path, series: Series, unfixed: bool, label: str) -> list[PatchResult]:
    results = []
    if unfixed:
        # Undo, newest first, every fix of the whole series that the release already carries.
        for patch in reversed(select(ALL).patches):
            reverse = _git_apply(tree, patch.path, "--check", "-R")
            if reverse.returncode == 0:
                _git_apply(tree, patch.path, "-R").check_returncode()
                results.append(PatchResult(patch, "reverted"))
            elif _git_apply(tree, patch.path, "--check").returncode == 0:
                results.append(PatchResult(patch, "absent"))
            else:
                # Neither there nor absent: upstream fixed it differently, and the UNFIXED label
                # would be a lie if the fix stayed in.
                raise _conflict(patch, label, reverse.stderr)
        return sorted(results, key=lambda r: r.patch.id)
    for patch in series.patches:
        forward = _git_apply(tree, patch.path, "--check")
        if forward.returncode == 0:
            _git_apply(tree, patch.path).check_returncode()
            results.append(PatchResult(patch, "applied"))
        elif _git_apply(tree, patch.path, "--check", "-R").returncode == 0:
            results.append(PatchResult(patch, "upstream"))
        else:
            raise _conflict(patch, label, forward.stderr)
    return results


@dataclass(frozen=True)
class PreparedTree:
    source: Source
    series: Series
    unfixed: bool
    path: Path
    tree_id: str  # of the patched tree: the identity builds are keyed by
    results: tuple[PatchResult, ...]

    @property
    def marks(self) -> list[str]:
        """Loud labels every output carries when the tree is not a pinned, fixed one."""
        return [m for m, on in (("UNPINNED", self.source.unpinned), ("UNFIXED", self.unfixed)) if on]

    def to_json(self) -> dict:
        # `path` is the patched tree (what a user asking `patch` wants); the pristine one it was made
        # from is `source_path`, and `tree_id` stays the pristine tree's (the pin's) identity.
        pristine = self.source.to_json()
        return {**pristine, "path": str(self.path), "source_path": pristine["path"],
                "series": self.series.name, "unfixed": self.unfixed, "prepared_tree_id": self.tree_id,
                "patches": [r.to_json() for r in self.results], "marks": self.marks}


def prepare(source: Source, series: Series, unfixed: bool = False) -> PreparedTree:
    """A patched copy of the verified tree, cached by (tree id, series digest, mode)."""
    check_series_supported(source.release)
    if unfixed:  # the series is left out: which one was asked for changes nothing
        series = select(ALL)
    mode = "unfixed" if unfixed else "fixed"
    key = hashlib.sha256(f"{source.tree_id}\n{series.digest}\n{mode}".encode()).hexdigest()[:32]
    entry = cache.area("prepared") / key
    meta_path = entry.with_suffix(".json")
    with cache.publishing(entry) as tmp:
        if tmp is not None:
            # The source, not the release, decides UNPINNED: a pinned version from other bytes is one too.
            label = f"libwebsockets {source.release.version}{' UNPINNED' if source.unpinned else ''} (tree {source.tree_id[:12]})"
            with progress.step(f"applying series '{series.name}'" + (" (UNFIXED)" if unfixed else "")):
                shutil.copytree(source.path, tmp, symlinks=True)
                results = _classify_and_apply(tmp, series, unfixed, label)
                prepared_id = tree_id(tmp)
            cache.write_json_atomic(meta_path, {"tree_id": prepared_id,
                                                "results": {r.patch.id: r.status for r in results}})
    meta = cache.read_json(meta_path)
    if not meta:
        raise SeriesError(f"prepared tree {entry} has no metadata", hint=f"remove {entry} and retry")
    by_id = {p.id: p for p in select(ALL).patches}
    results = tuple(PatchResult(by_id[pid], status) for pid, status in sorted(meta["results"].items()))
    return PreparedTree(source, series, unfixed, entry, meta["tree_id"], results)
