"""The fix series: patches/series.toml, one fix per entry, its form per range of releases (a line).

What a fix *is* on a release is data: a `patch` of ours that must apply forward (`applied`), an
`upstream` commit whose change, described by `patch`, must reverse-apply (`upstream`), or
`not_needed` with its reason. Classification, `lwsbuild versions`, `matrix` and provenance all read
this one place. Patches apply at zero fuzz (`git apply`); a tree that fits neither direction is a
fatal conflict naming the file and hunk. A release is inside the series when every fix has a line
covering it. `--unfixed` undoes, newest first, every fix the release carries.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache as memoize
from pathlib import Path
from typing import Any

from lwsbuild.common import cache, progress, tools
from lwsbuild.common.paths import own_dir
from lwsbuild.common.records import Record
from lwsbuild.errors import PATCH, PatchConflict, SeriesError, UnknownSeriesError, UnsupportedVersionError
from lwsbuild.resources import load
from lwsbuild.resources.load import Each, Table
from lwsbuild.source.admission import shown
from lwsbuild.source.fetch import Source
from lwsbuild.source.releases import Release, all_releases, version_key
from lwsbuild.source.treeid import isolated_git_env, tree_id

ALL = "all"
NONE = "none"
NO_FIX = "NO-FIX"  # the mark of a build whose series selects no fix
SUBTRACT = "-"  # `all-throughput`: a set minus sets or fix ids, so set names never contain it

LINE = Table({"versions": str}, {"patch": str, "upstream": str, "not_needed": str, "evidence": str})
SHAPE = Table({"sets": Each(str)},
              {"fix": [Table({"id": str, "title": str, "why": str, "line": [LINE]},
                             {"sets": [str], "evidence": str})]})


def series_dir() -> Path:
    """patches/ of a source checkout, else the copy installed inside the package."""
    return own_dir("patches", "series.toml")


@dataclass(frozen=True)
class Line:
    """What one fix is on an inclusive range of releases."""

    versions: str  # as written: "4.3.0 - 4.3.3" or "4.3.5"
    low: tuple[int, ...]
    high: tuple[int, ...]
    patch: str  # path relative to patches/, "" for not_needed
    path: Path | None
    sha256: str  # of the patch file's bytes, "" without a patch
    upstream: str  # commit carrying the fix, "" when it is ours
    not_needed: str  # reason, "" when something is applied or reverted
    evidence: str

    @property
    def form(self) -> str:
        """ours | upstream | not-needed: what the data says, before any tree is looked at."""
        return "not-needed" if self.not_needed else "upstream" if self.upstream else "ours"

    def covers(self, version: str) -> bool:
        # Bounds compare on their own precision: "4.3.0 - 4.3.5" holds an unpinned 4.3.5.1 too.
        key = version_key(version)
        return self.low <= key and key[:len(self.high)] <= self.high

    @property
    def diff(self) -> Path:
        """The patch file of a line that applies or reverts something (_line gives every such line one)."""
        assert self.path is not None, f"line {self.versions} is not_needed: it has no patch"
        return self.path

    def identity(self) -> str:
        """Everything about this line that changes what a prepared tree holds."""
        return f"{self.form} {self.upstream} {self.patch} {self.sha256}"

    def to_json(self) -> dict[str, object]:
        return {"versions": self.versions, "form": self.form, "upstream": self.upstream or None,
                "patch": self.patch or None, "sha256": self.sha256 or None, "not_needed": self.not_needed or None}


@dataclass(frozen=True)
class Fix:
    id: str
    title: str
    why: str
    sets: tuple[str, ...]
    evidence: str
    lines: tuple[Line, ...]

    def line_for(self, version: str) -> Line | None:
        return next((line for line in self.lines if line.covers(version)), None)

    def covering(self, version: str) -> Line:
        """line_for() on a release check_supported() has let through: there is a line."""
        line = self.line_for(version)
        assert line is not None, f"fix {self.id} has no line for {version}: call check_supported() first"
        return line


@dataclass(frozen=True)
class Series:
    name: str
    fixes: tuple[Fix, ...]


# --- loading and validation ---------------------------------------------------------------------

def _version_range(text: object, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    parts = [p.strip() for p in text.split(" - ")] if isinstance(text, str) else []
    if len(parts) not in (1, 2) or not all(re.fullmatch(r"\d+(\.\d+)*", p) for p in parts):
        raise SeriesError(f"series.toml {where}: versions = {text!r} is not 'A.B.C' or 'A.B.C - X.Y.Z'")
    low, high = version_key(parts[0]), version_key(parts[-1])
    if low > high:
        raise SeriesError(f"series.toml {where}: versions = {text!r} runs backwards")
    return low, high


def _text(entry: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    """A text value, its whitespace runs folded (the shape has checked it is a string)."""
    value = str(entry.get(key, ""))
    if required and not value.strip():
        raise SeriesError(f"series.toml {where}: {key} must not be empty")
    return " ".join(value.split())


def _line(folder: Path, entry: dict[str, Any], where: str) -> Line:
    low, high = _version_range(entry.get("versions"), where)
    patch, upstream, not_needed = (_text(entry, k, where) for k in ("patch", "upstream", "not_needed"))
    if not_needed and (patch or upstream):
        raise SeriesError(f"series.toml {where}: not_needed excludes patch and upstream (nothing is applied or reverted)")
    if not not_needed and not patch:
        raise SeriesError(f"series.toml {where}: needs patch (ours, or upstream's change with upstream = COMMIT) "
                          "or not_needed = REASON")
    if upstream and not re.fullmatch(r"[0-9a-f]{7,40}", upstream):
        raise SeriesError(f"series.toml {where}: upstream = {upstream!r} is not a commit id (7-40 hex digits)")
    path, sha256 = None, ""
    if patch:
        path = (folder / patch).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            raise SeriesError(f"series.toml {where}: patch file {patch} is missing (paths are relative to {folder})")
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return Line(entry["versions"], low, high, patch, path, sha256, upstream, not_needed,
                _text(entry, "evidence", where))


def _fix(folder: Path, entry: dict[str, Any], known_sets: set[str], index: int) -> Fix:
    fix_id = entry["id"]
    if not re.fullmatch(r"\d{4}", fix_id):
        raise SeriesError(f"series.toml fix #{index}: id must be four digits like \"0004\", got {fix_id!r}")
    where = f"fix {fix_id}"
    sets = entry.get("sets", [])
    for name in sets:
        if name not in known_sets or name in (ALL, NONE):
            raise SeriesError(f"series.toml {where}: set {name!r} is not declared in [sets] (or is implicit: all, none)")
    raw_lines = entry["line"]
    if not raw_lines:
        raise SeriesError(f"series.toml {where}: needs at least one [[fix.line]]")
    lines = sorted((_line(folder, raw, f"{where} line {n}") for n, raw in enumerate(raw_lines, 1)),
                   key=lambda line: line.low)
    for before, after in itertools.pairwise(lines):
        if after.low <= before.high:
            raise SeriesError(f"series.toml {where}: lines {before.versions!r} and {after.versions!r} overlap")
    return Fix(fix_id, _text(entry, "title", where, required=True), _text(entry, "why", where, required=True),
               tuple(sets), _text(entry, "evidence", where), tuple(lines))


def load_series(folder: Path) -> tuple[dict[str, str], tuple[Fix, ...]]:
    """(sets, fixes in id order) of folder/series.toml, validated; a SeriesError names the first fault."""
    data = load.read(folder / "series.toml", SHAPE)
    sets = data["sets"]
    if not {ALL, NONE} <= set(sets):
        raise SeriesError("series.toml [sets] must describe at least 'all' and 'none'")
    if bad := [name for name in sets if SUBTRACT in name or not name]:
        raise SeriesError(f"series.toml [sets]: set name {bad[0]!r} must be non-empty without {SUBTRACT!r} "
                          "(it subtracts sets in a series name)")
    fixes = tuple(_fix(folder, entry, set(sets), n) for n, entry in enumerate(data.get("fix", []), 1))
    ids = [f.id for f in fixes]
    if ids != sorted(set(ids)):
        raise SeriesError(f"series.toml fix ids must be unique and in apply order, got {', '.join(ids)}")
    return {k: " ".join(str(v).split()) for k, v in sets.items()}, fixes


@memoize
def _load() -> tuple[dict[str, str], tuple[Fix, ...]]:
    return load_series(series_dir())


def set_names() -> list[str]:
    return list(_load()[0])


MAX_SERIES_NAME = 64
_SERIES_NAME = re.compile(r"[A-Za-z0-9_-]+")


def select(name: str = ALL) -> Series:
    """A named set, or a set minus sets or fix ids: `all-throughput`, `all-0021`, `seed-0004`.

    The difference form measures what one fix or set is worth (bench/throughput.py runs the series
    with and without the throughput set side by side) without declaring a set for each question.
    """
    sets, fixes = _load()
    if len(name) > MAX_SERIES_NAME or not _SERIES_NAME.fullmatch(name):
        # The name goes into file and directory names (the wheel's local version): bounded before any work.
        raise UnknownSeriesError(f"series name {shown(name)} is not a set name, optionally minus sets or fix ids "
                                 f"({MAX_SERIES_NAME} characters at most: letters, digits, '_' and '{SUBTRACT}')")
    first, *removed = name.split(SUBTRACT)
    fix_ids = {f.id for f in fixes}
    for position, term in enumerate((first, *removed)):
        if term not in sets and (position == 0 or term not in fix_ids):
            what = "series" if position == 0 else f"set or fix id {term!r} in series"
            raise UnknownSeriesError(f"unknown {what} {name!r}",
                                     hint=f"use one of: {', '.join(sets)}, optionally minus sets or fix ids "
                                          f"(e.g. all{SUBTRACT}throughput, all{SUBTRACT}{fixes[-1].id})")
    chosen = [f for f in fixes if _in_set(f, first)]
    chosen = [f for f in chosen if not any(term == f.id or _in_set(f, term) for term in removed)]
    return Series(name, tuple(chosen))


def _in_set(fix: Fix, set_name: str) -> bool:
    return set_name == ALL or (set_name != NONE and set_name in fix.sets)


# --- what the data says per release (no tree needed) --------------------------------------------

def forms(release: Release) -> dict[str, Line | None]:
    """fix id → the line covering `release` (None: uncovered), for every fix of the file."""
    return {fix.id: fix.line_for(release.version) for fix in select(ALL).fixes}


def expected_status(line: Line | None) -> str:
    """The status a fixed-mode `patch` must give on a release of this line."""
    if line is None:
        return "uncovered"
    return {"ours": "applied", "upstream": "upstream", "not-needed": "not-needed"}[line.form]


def supported(release: Release, fixes: tuple[Fix, ...] | None = None) -> bool:
    fixes = select(ALL).fixes if fixes is None else fixes
    return all(fix.line_for(release.version) is not None for fix in fixes)


def covered_ranges(fixes: tuple[Fix, ...]) -> str:
    """The pinned releases every one of `fixes` covers, as runs: "4.3.4 - 4.3.10, 5.0.0"."""
    runs: list[list[str]] = []
    previous_in = False
    for release in all_releases():
        inside = release.pinned and supported(release, fixes)
        if inside:
            if previous_in:
                runs[-1][1] = release.version
            else:
                runs.append([release.version, release.version])
        previous_in = inside
    return ", ".join(a if a == b else f"{a} - {b}" for a, b in runs) or "no pinned release"


def check_supported(release: Release, series: Series, unfixed: bool = False) -> None:
    """Every fix the mode touches (the selected set; the whole file when unfixed) must have a line
    for `release`: a release outside them would be half-fixed, or half-unfixed."""
    fixes = select(ALL).fixes if unfixed else series.fixes
    missing = [fix.id for fix in fixes if fix.line_for(release.version) is None]
    if not missing:
        return
    name = ALL if unfixed else series.name
    covered = covered_ranges(fixes)
    hint = (f"use a --lws-version in {covered}" if release.pinned else
            f"with --allow-unpinned, pass the --lws-version whose lines fit the tree (the series '{name}' covers {covered})")
    raise UnsupportedVersionError(
        f"libwebsockets {release.version} is outside the fix series '{name}': "
        f"{'fixes' if len(missing) > 1 else 'fix'} {', '.join(missing)} {'have' if len(missing) > 1 else 'has'} "
        f"no line for it (pinned releases it covers: {covered})", hint=hint)


# --- classification -------------------------------------------------------------------------

def _git_apply(tree: Path, patch: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`git apply` in `tree`, where git can discover no repository, config or attributes of the
    tree's or anyone's: its repository is an empty private one (GIT_DIR), discovery stops at the
    tree, system/global config and attributes are off, and no hook or fsmonitor can run. A `.git`
    inside a tree could otherwise name a clean/smudge filter that git runs on each file it reads."""
    git = tools.require("git", "applying the fix series", PATCH)
    with cache.scratch("apply") as private:
        git_dir = private / "empty.git"
        env = isolated_git_env({"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(tree),
                                "GIT_CEILING_DIRECTORIES": f"{tree}:{tree.parent}", "GIT_ATTR_NOSYSTEM": "1",
                                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"})
        subprocess.run([git, "init", "-q", "--bare", "--template=", str(git_dir)], env=isolated_git_env(),
                       capture_output=True, check=True)
        return subprocess.run([git, *_APPLY_CONFIG, "apply", "--whitespace=nowarn", *flags, str(patch)],
                              cwd=tree, env=env, capture_output=True, text=True, check=False)


_APPLY_CONFIG = ("-c", "core.attributesFile=/dev/null", "-c", "core.hooksPath=/dev/null",
                 "-c", "core.fsmonitor=false")


def _hunks(patch: Path) -> dict[str, list[tuple[int, int, str]]]:
    """file → [(old start line, new start line, hunk header)] of a unified diff."""
    hunks: dict[str, list[tuple[int, int, str]]] = {}
    current = None
    for line in patch.read_text().splitlines():
        if line.startswith("--- a/"):
            current = line[6:]
        elif line.startswith("@@") and current and (match := re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)", line)):
            hunks.setdefault(current, []).append((int(match.group(1)), int(match.group(2)), line.split(" @@")[0] + " @@"))
    return hunks


def _conflict(fix: Fix, line: Line, tree_label: str, stderr: str, reverse: bool) -> PatchConflict:
    failed = re.search(r"patch failed: (\S+):(\d+)", stderr)
    if failed:
        file, at = failed.group(1), int(failed.group(2))
        entries = _hunks(line.diff).get(file, [])
        number = next((i for i, (old, new, _) in enumerate(entries, 1) if (new if reverse else old) == at), None)
        where = f"{file} hunk {number} ({entries[number - 1][2]})" if number else f"{file} line {at}"
    else:
        missing = re.search(r"error: (\S+): (No such file|does not exist)", stderr)
        where = f"{missing.group(1)} (no such file)" if missing else (stderr.strip().splitlines() or ["?"])[-1]
    form = (f"upstream {line.upstream}'s change ({line.patch}) does not reverse-apply" if line.upstream
            else f"{line.patch} fits neither forward nor reversed")
    return PatchConflict(f"fix {fix.id} ({fix.title}), line {line.versions}: {form} on {tree_label} at {where}")


@dataclass(frozen=True)
class PatchRecord(Record):
    """One fix of the series on one tree, as provenance.json records it (PatchResult.record())."""

    id: str
    status: str  # applied | upstream | not-needed | reverted | absent
    title: str
    versions: str  # the series line's range
    form: str  # ours | upstream | not-needed
    upstream: str | None
    patch: str | None  # the diff's file under patches/
    sha256: str | None
    not_needed: str | None
    unexpected: bool


@dataclass(frozen=True)
class PatchResult:
    fix: Fix
    line: Line
    status: str  # applied | upstream | not-needed | reverted | absent
    unexpected: bool = False  # our patch found already in the tree: the data should say upstream

    def record(self) -> PatchRecord:
        """What provenance.json records of this fix on this tree."""
        line = self.line
        return PatchRecord(id=self.fix.id, status=self.status, title=self.fix.title, versions=line.versions,
                           form=line.form, upstream=line.upstream or None, patch=line.patch or None,
                           sha256=line.sha256 or None, not_needed=line.not_needed or None, unexpected=self.unexpected)

    def to_json(self) -> dict[str, object]:
        return self.record().to_json()


def _require_upstream_form(tree: Path, fix: Fix, line: Line, label: str) -> None:
    """An upstream line's diff must reverse-apply: the tree carries upstream's change as described."""
    reverse = _git_apply(tree, line.diff, "--check", "-R")
    if reverse.returncode != 0:
        raise _conflict(fix, line, label, reverse.stderr, reverse=True)


def _classify_fixed(tree: Path, fix: Fix, line: Line, label: str) -> PatchResult:
    if line.not_needed:
        return PatchResult(fix, line, "not-needed")
    if line.upstream:
        _require_upstream_form(tree, fix, line, label)
        return PatchResult(fix, line, "upstream")
    forward = _git_apply(tree, line.diff, "--check")
    if forward.returncode == 0:
        _git_apply(tree, line.diff).check_returncode()
        return PatchResult(fix, line, "applied")
    if _git_apply(tree, line.diff, "--check", "-R").returncode == 0:
        progress.note(f"fix {fix.id}: {line.patch} is already in {label}, though series.toml has it as ours on "
                      f"{line.versions}: counted as upstream (record the upstream commit in series.toml)")
        return PatchResult(fix, line, "upstream", unexpected=True)
    raise _conflict(fix, line, label, forward.stderr, reverse=False)


def _classify_unfixed(tree: Path, fix: Fix, line: Line, label: str) -> PatchResult:
    if line.not_needed:
        return PatchResult(fix, line, "not-needed")
    if line.upstream:
        _require_upstream_form(tree, fix, line, label)
        _git_apply(tree, line.diff, "-R").check_returncode()
        return PatchResult(fix, line, "reverted")
    forward = _git_apply(tree, line.diff, "--check")
    if forward.returncode != 0:
        # Our fix is not cleanly absent: the UNFIXED label would be a lie if a form of it stayed in.
        raise _conflict(fix, line, label, forward.stderr, reverse=False)
    return PatchResult(fix, line, "absent")


def classify_and_apply(tree: Path, release: Release, series: Series, unfixed: bool, label: str) -> list[PatchResult]:
    """Patch `tree` in place; the results in id order. Call check_supported() first."""
    if unfixed:  # newest first: each upstream change is undone on the tree it was written against
        results = [_classify_unfixed(tree, fix, fix.covering(release.version), label)
                   for fix in reversed(select(ALL).fixes)]
        return sorted(results, key=lambda r: r.fix.id)
    return [_classify_fixed(tree, fix, fix.covering(release.version), label) for fix in series.fixes]


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
        """Loud labels every output carries when the tree is not a pinned, fixed one: NO-FIX is a
        series that selects no fix at all (`none`, `seed-seed`), as visible as UNFIXED."""
        return [m for m, on in (("UNPINNED", self.source.unpinned), ("UNFIXED", self.unfixed),
                                (NO_FIX, not self.unfixed and not self.series.fixes)) if on]

    def to_json(self) -> dict[str, object]:
        # `path` is the patched tree (what a user asking `patch` wants); the pristine one it was made
        # from is `source_path`, and `tree_id` stays the pristine tree's (the pin's) identity.
        pristine = self.source.to_json()
        return {**pristine, "path": str(self.path), "source_path": pristine["path"],
                "series": self.series.name, "unfixed": self.unfixed, "prepared_tree_id": self.tree_id,
                "patches": [r.to_json() for r in self.results], "marks": self.marks}


def prepared_key(source: Source, series: Series, unfixed: bool) -> str:
    """(tree id, set, mode, and the forms chosen for this release: line, commit, patch bytes)."""
    fixes = select(ALL).fixes if unfixed else series.fixes
    chosen = "\n".join(f"{fix.id} {fix.covering(source.release.version).identity()}" for fix in fixes)
    mode = "unfixed" if unfixed else "fixed"
    return hashlib.sha256(f"{source.tree_id}\n{series.name}\n{mode}\n{chosen}".encode()).hexdigest()[:32]


def prepare(source: Source, series: Series, unfixed: bool = False, full_check: bool = False) -> PreparedTree:
    """A patched copy of the verified tree, cached by prepared_key(). A cached copy is checked against
    its manifest first (`full_check`: every file's hash and its tree id again); one that changed since
    it was made is discarded, saying so, and made again."""
    release = source.release
    check_supported(release, series, unfixed)
    if unfixed:  # the whole file is undone: which set was asked for changes nothing
        series = select(ALL)
    entry = cache.area("prepared") / prepared_key(source, series, unfixed)
    meta_path = entry.with_suffix(".json")
    meta = cache.read_json(meta_path) if entry.is_dir() else None
    recorded = str(meta.get("tree_id")) if meta else ""
    intact = entry.is_dir() and cache.intact(entry, full_check, what="prepared tree", redo="applying the series again",
                                             identity=(lambda: tree_id(entry), recorded))
    with contextlib.nullcontext(None) if intact else cache.publishing(entry) as tmp:  # published: no lock needed
        if tmp is not None:
            # The source, not the release, decides UNPINNED: a pinned version from other bytes is one too.
            label = f"libwebsockets {release.version}{' UNPINNED' if source.unpinned else ''} (tree {source.tree_id[:12]})"
            with progress.step(f"applying series '{series.name}'" + (" (UNFIXED)" if unfixed else "")):
                cache.require_free(_tree_bytes(source.path), "a patched copy of the source tree")
                shutil.copytree(source.path, tmp, symlinks=True)
                applied = classify_and_apply(tmp, release, series, unfixed, label)
                prepared_id = tree_id(tmp)
            cache.write_json_atomic(meta_path, {"tree_id": prepared_id, "results": [
                {"id": r.fix.id, "status": r.status, "unexpected": r.unexpected} for r in applied]})
    meta = cache.read_json(meta_path)
    if not meta or not isinstance(meta.get("results"), list):
        raise SeriesError(f"prepared tree {entry} has no metadata", hint=f"remove {entry} and retry")
    by_id = {f.id: f for f in select(ALL).fixes}
    results = tuple(PatchResult(by_id[r["id"]], by_id[r["id"]].covering(release.version), r["status"], r["unexpected"])
                    for r in meta["results"])
    return PreparedTree(source, series, unfixed, entry, meta["tree_id"], results)


def _tree_bytes(tree: Path) -> int:
    """The bytes of a tree's files (what a copy of it needs), from its manifest when it has one."""
    recorded = cache.load_manifest(tree)
    if recorded is not None:
        return sum(int(str(item[1])) for item in recorded.values() if item[0] == "file")
    return sum(path.lstat().st_size for path in tree.rglob("*") if path.is_file() and not path.is_symlink())
