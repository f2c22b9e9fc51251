"""The fix series of one release as quilt patches with DEP-3 headers, and a `series` file.

Every other format starts here: Debian appends these to its own debian/patches, Conan lists them in
conandata.yml, Yocto's bbappend puts them in SRC_URI, Buildroot takes them as NNNN-*.patch. Only the
fixes the series *applies* to the release become patches (a fix upstream already carries, or that
the release does not need, is a comment in `series`); each was applied to the verified tree at zero
fuzz before it is written (series.fixes.prepare). The header says why (title, reason), where from
(Origin), the CVE (Bug, `CVE:` for Yocto's cve-check), whether upstream has it (Applied-Upstream,
`Upstream-Status:`, Buildroot's `Upstream:`), and when (Last-Update: the Date: header of the patch
file; a patch without one is refused, never dated by its file's modification time: an export is the
same bytes whatever the checkout, and nothing in it depends on when it was made).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from lwsbuild.common import cache, tools
from lwsbuild.errors import PATCH, ExportError, UsageError
from lwsbuild.series import cves
from lwsbuild.series.fixes import Fix, Line, PatchResult, PreparedTree
from lwsbuild.source.releases import version_key
from lwsbuild.source.treeid import isolated_git_env

AUTHOR = "lwsbuild <lwsbuild@localhost>"  # as in every patch of patches/
CVE_RECORD = "https://www.cve.org/CVERecord?id="
UPSTREAM_COMMIT = "https://github.com/warmcat/libwebsockets/commit/"


@dataclass(frozen=True)
class QuiltPatch:
    fix: Fix
    line: Line
    name: str  # the file name: the series' own, "0005-connect-fail-vhost-list-under-locks.patch"
    cves: tuple[str, ...]
    upstream_later: tuple[str, str] | None  # (first release, commit) of a later line upstream carries it in
    date: datetime  # the patch file's own Date: header
    diff: str  # the unified diff against the tree with every earlier fix applied (exact_diffs)

    @property
    def text(self) -> str:
        return header(self) + "---\n" + self.diff


def refuse_unfixed(unfixed: bool) -> None:
    if unfixed:
        raise UsageError("an UNFIXED tree is not exported: packagers get the fixes, not the bug",
                         hint="drop --unfixed")


def _upstream_later(fix: Fix, version: str) -> tuple[str, str] | None:
    later = [line for line in fix.lines if line.upstream and line.low > version_key(version)]
    return (later[0].versions.split(" - ")[0], later[0].upstream) if later else None


def patch_date(path: Path, text: str) -> datetime:
    """The Date: header of the patch file (git format-patch writes one), before its first diff."""
    head = re.split(r"^(?:diff |--- )", text, maxsplit=1, flags=re.MULTILINE)[0]
    match = re.search(r"^Date: (.+)$", head, re.MULTILINE)
    try:
        when = parsedate_to_datetime(match.group(1).strip()) if match else None
    except (TypeError, ValueError):
        when = None
    if when is None or when.tzinfo is None:
        raise ExportError(f"{path.name} has no Date: header with a time zone (RFC 2822, as git format-patch writes): "
                          "an exported patch is dated by its own header, never by its file's time")
    return when


def exact_diffs(prepared: PreparedTree, results: list[PatchResult]) -> dict[str, str]:
    """fix id -> its diff made again against the pristine tree with every earlier fix applied: the
    same change, with the hunks' line numbers exact (git apply takes an offset; patch-ng, which
    Conan applies patches with, does not)."""
    git = tools.require("git", "exporting the fix series", PATCH)
    env = isolated_git_env({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                            "GIT_AUTHOR_NAME": "lwsbuild", "GIT_AUTHOR_EMAIL": "lwsbuild@localhost",
                            "GIT_COMMITTER_NAME": "lwsbuild", "GIT_COMMITTER_EMAIL": "lwsbuild@localhost"})

    def run(*args: str, cwd: Path) -> str:
        return subprocess.run([git, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout

    diffs = {}
    with cache.scratch("export-diffs") as scratch:
        tree = scratch / "tree"
        shutil.copytree(prepared.source.path, tree, symlinks=True)
        run("init", "-q", cwd=tree)
        run("add", "-A", ".", cwd=tree)
        run("commit", "-q", "--no-verify", "-m", "release", cwd=tree)
        for result in results:
            run("apply", "--whitespace=nowarn", str(result.line.diff), cwd=tree)
            run("add", "-A", ".", cwd=tree)
            diffs[result.fix.id] = run("diff", "--cached", "--no-color", "--no-ext-diff", "--full-index", cwd=tree)
            run("commit", "-q", "--no-verify", "-m", result.fix.id, cwd=tree)
    return diffs


def patches(prepared: PreparedTree) -> list[QuiltPatch]:
    """The applied fixes of a prepared (fixed) tree, in apply order."""
    refuse_unfixed(prepared.unfixed)
    named: dict[str, list[str]] = {}
    for cve in cves.known():
        named.setdefault(cve.fix, []).append(cve.id)
    version = prepared.source.release.version
    out = []
    chosen = applied(prepared)
    diffs = exact_diffs(prepared, chosen)
    for result in chosen:
        text = result.line.diff.read_text()
        out.append(QuiltPatch(result.fix, result.line, result.line.diff.name, tuple(named.get(result.fix.id, ())),
                              _upstream_later(result.fix, version), patch_date(result.line.diff, text),
                              diffs[result.fix.id]))
    return out


def applied(prepared: PreparedTree) -> list[PatchResult]:
    return [r for r in prepared.results if r.status == "applied"]


def _wrapped(text: str) -> list[str]:
    return [" " + line for line in textwrap.wrap(text, width=76)]


def header(patch: QuiltPatch) -> str:
    fix, line = patch.fix, patch.line
    later = patch.upstream_later
    lines = [f"Description: {fix.title}", *_wrapped(fix.why), " .",
             *_wrapped(f"lwsbuild fix {fix.id} (sets: {', '.join(fix.sets) or 'all'}), its line {line.versions} "
                       "of lwsbuild's patches/series.toml, applied at zero fuzz to the verified release tree."),
             f"Author: {AUTHOR}",
             f"Origin: other, lwsbuild fix series, fix {fix.id} ({line.patch})"]
    lines += [f"Bug: {CVE_RECORD}{cve}" for cve in patch.cves]
    if later:
        lines += ["Forwarded: not-needed", f"Applied-Upstream: {later[0]}, commit:{later[1]}",
                  f"Upstream-Status: Backport [{UPSTREAM_COMMIT}{later[1]}, first in {later[0]}; this is lwsbuild's form]",
                  f"Upstream: {UPSTREAM_COMMIT}{later[1]}"]
    else:
        lines += ["Forwarded: no", "Upstream-Status: Pending [lwsbuild fix series]",
                  "Upstream: not upstream yet (lwsbuild fix series)"]
    if patch.cves:
        lines.append(f"CVE: {' '.join(patch.cves)}")
    lines.append(f"Last-Update: {patch.date.strftime('%Y-%m-%d')}")
    return "\n".join(lines) + "\n"


def series_file(prepared: PreparedTree, chosen: list[QuiltPatch], name: str = "",
                notes: dict[str, str] | None = None) -> str:
    """quilt's `series`: the patches in apply order; every other fix of the series as a comment
    (`notes`: fix id -> why it is not here, for fixes a packager carries already)."""
    notes = notes or {}
    release = prepared.source.release
    files = {p.fix.id: name.format(file=p.name) if name else p.name for p in chosen}
    lines = [(f"# lwsbuild fix series '{prepared.series.name}' for libwebsockets {release.version} "
             f"(tree {prepared.source.tree_id})")]
    for result in prepared.results:
        if result.fix.id in files:
            lines.append(files[result.fix.id])
        elif result.fix.id in notes:
            lines.append(f"# {result.fix.id} {notes[result.fix.id]}")
        else:
            why = (f"upstream {result.line.upstream}" if result.status == "upstream" else
                   result.line.not_needed or result.status)
            lines.append(f"# {result.fix.id} {result.status}: {why}")
    return "\n".join(lines) + "\n"


def write(prepared: PreparedTree, folder: Path) -> list[QuiltPatch]:
    """patches/*.patch and patches/series under `folder` (a fresh directory the caller publishes)."""
    chosen = patches(prepared)
    target = folder / "patches"
    target.mkdir(parents=True)
    for patch in chosen:
        (target / patch.name).write_text(patch.text)
    (target / "series").write_text(series_file(prepared, chosen))
    return chosen
