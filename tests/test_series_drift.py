"""Drift: trees derived from 4.3.5 by moving and editing the lines around each fix, classified by
the real series. Moved code classifies the same; an edited context line is a fatal conflict naming
the fix, the file and the hunk; a fix already present is `upstream`; an upstream fix that is absent
is a conflict, fixed or --unfixed. And the version number chooses the lines (--allow-unpinned).

Integration layer (the 4.3.5 tree comes from the session's fetch); in-process classification on
hard-linked copies whose touched files are made real copies first, so the fetched tree never changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import run_cli
from helpers.archives import copy_tree
from helpers.checks import error_line
from lwsbuild.errors import PatchConflict
from lwsbuild.series import fixes as series
from lwsbuild.source import releases

R435 = releases.get("4.3.5")
DRIFT = "/* lwsbuild drift test: code moved */"

# Every test here starts from the session's Debian download of 4.3.5 (lws_tree).
pytestmark = pytest.mark.network


@dataclass(frozen=True)
class Hunk:
    file: str
    number: int  # 1-based, per file, as the conflict message counts them
    old: list[str]  # the lines the tree holds before the patch (context and removed)
    new: list[str]  # after it (context and added)


def hunks(patch: Path) -> list[Hunk]:
    found: list[Hunk] = []
    file, number = "", 0
    old: list[str] | None = None
    new: list[str] | None = None
    for line in patch.read_text().splitlines():
        if line.startswith("--- a/"):
            file, number = line[6:], 0
        elif line.startswith("@@"):
            number += 1
            old, new = [], []
            found.append(Hunk(file, number, old, new))
        elif old is not None and new is not None and line[:1] in (" ", "-", "+"):
            if line[:1] != "+":
                old.append(line[1:])
            if line[:1] != "-":
                new.append(line[1:])
        elif line.startswith("diff --git"):
            old = new = None
    return found


def on_435() -> list[tuple[series.Fix, series.Line]]:
    lines = [(fix, fix.line_for("4.3.5")) for fix in series.select(series.ALL).fixes]
    assert all(line is not None for _, line in lines)
    return [(fix, line) for fix, line in lines if line is not None]


def patched_on_435() -> list[tuple[series.Fix, series.Line]]:
    """The fixes with a diff on 4.3.5 (ours or upstream's form); not-needed lines have none."""
    return [(fix, line) for fix, line in on_435() if line.patch]


def expected_in_tree(line: series.Line, hunk: Hunk) -> list[str]:
    """What the pristine 4.3.5 tree holds at this hunk: the postimage when upstream carries it."""
    return hunk.new if line.upstream else hunk.old


def locate(lines: list[str], block: list[str]) -> int | None:
    """Index of the one occurrence of `block` in `lines`, None when absent or ambiguous."""
    hits = [i for i in range(len(lines) - len(block) + 1) if lines[i:i + len(block)] == block]
    return hits[0] if len(hits) == 1 else None


@pytest.fixture
def tree(lws_tree: Path, tmp_path: Path) -> Path:
    copy = copy_tree(lws_tree, tmp_path / "drifted", link=True)
    for _fix, line in patched_on_435():
        for hunk in hunks(line.diff):  # real copies of what patches and edits touch
            target = copy / hunk.file
            data = target.read_bytes()
            target.unlink()
            target.write_bytes(data)
    return copy


def read(tree: Path, rel: str) -> list[str]:
    return (tree / rel).read_text().split("\n")


def write(tree: Path, rel: str, lines: list[str]) -> None:
    (tree / rel).write_text("\n".join(lines))


def classify(tree: Path, version: str = "4.3.5", name: str = "all", unfixed: bool = False) -> dict[str, tuple[str, bool]]:
    release = releases.get(version)
    chosen = series.select(name)
    series.check_supported(release, chosen, unfixed)
    results = series.classify_and_apply(tree, release, chosen, unfixed, f"drifted {version}")
    return {r.fix.id: (r.status, r.unexpected) for r in results}


def git_apply(tree: Path, patch: Path, *flags: str) -> None:
    subprocess.run(["git", "apply", *flags, str(patch)], cwd=tree, check=True, capture_output=True)


def pristine_statuses() -> dict[str, tuple[str, bool]]:
    return {fix.id: (series.expected_status(line), False) for fix, line in on_435()}


def test_moved_code_classifies_the_same(tree: Path) -> None:
    moved = 0
    by_file: dict[str, list[int]] = {}
    for _fix, line in patched_on_435():
        for hunk in hunks(line.diff):
            at = locate(read(tree, hunk.file), expected_in_tree(line, hunk))
            if at is not None:
                by_file.setdefault(hunk.file, []).append(at)
    for rel, positions in by_file.items():
        lines = read(tree, rel)
        for at in sorted(set(positions), reverse=True):  # bottom up: earlier positions stay valid
            lines[at:at] = ["", DRIFT, ""]
            moved += 1
        lines[0:0] = [DRIFT] * 7  # and everything in the file shifts too
        write(tree, rel, lines)
    assert moved >= 12, "most hunks must have been moved for this test to mean anything"
    assert classify(tree) == pristine_statuses()


@pytest.mark.parametrize("fix_id", [f"000{n}" for n in range(1, 9)])
def test_edited_context_line_is_a_conflict_naming_fix_file_and_hunk(tree: Path, fix_id: str) -> None:
    fix, line = next((f, ln) for f, ln in on_435() if f.id == fix_id)
    # The last hunk whose block is in the tree and has a distinctive context line: hunk numbers > 1 too.
    for hunk in reversed(hunks(line.diff)):
        lines = read(tree, hunk.file)
        at = locate(lines, expected_in_tree(line, hunk))
        context = [i for i, text in enumerate(expected_in_tree(line, hunk))
                   if text.strip() not in ("", "{", "}") and text in hunk.old and text in hunk.new]
        if at is not None and context:
            lines[at + context[0]] += " /* a local edit */"
            write(tree, hunk.file, lines)
            break
    else:
        pytest.fail(f"no hunk of {line.patch} could be edited")
    with pytest.raises(PatchConflict) as caught:
        classify(tree)
    message = str(caught.value)
    assert message.startswith(f"fix {fix.id} ({fix.title}), line {line.versions}: ")
    assert f" at {hunk.file} hunk {hunk.number} (@@ -" in message
    assert "\n" not in caught.value.one_line()


def test_our_fix_already_in_the_tree_is_upstream_and_flagged(tree: Path) -> None:
    _fix, line = next((f, ln) for f, ln in on_435() if f.id == "0004")
    git_apply(tree, line.diff)
    assert classify(tree) == {**pristine_statuses(), "0004": ("upstream", True)}


def test_upstream_fix_absent_is_a_conflict_fixed_or_unfixed(tree: Path, tmp_path: Path) -> None:
    _fix, line = next((f, ln) for f, ln in on_435() if f.id == "0002")
    git_apply(tree, line.diff, "-R")  # 4.3.5 without upstream's failed1: cancel
    with pytest.raises(PatchConflict, match=rf"^fix 0002 .*upstream bd8f69e43's change \({re.escape(line.patch)}\) "
                                            r"does not reverse-apply .* at lib/core-net/client/connect3.c hunk 1 "):
        classify(tree)
    with pytest.raises(PatchConflict, match=r"^fix 0002 .* does not reverse-apply"):
        classify(tree, unfixed=True)


def test_unfixed_absent_versus_conflict(tree: Path, lws_tree: Path, tmp_path: Path) -> None:
    # Pristine: upstream lines reverted, our lines cleanly absent.
    assert classify(tree, unfixed=True) == {
        fix.id: ("reverted" if line.upstream else "not-needed" if line.not_needed else "absent", False)
        for fix, line in on_435()}
    # Our fix already present in the tree: not "absent" (the UNFIXED label would lie): a conflict.
    again = copy_tree(lws_tree, tmp_path / "with-0004")
    git_apply(again, next(ln for f, ln in on_435() if f.id == "0004").diff)
    with pytest.raises(PatchConflict, match=r"^fix 0004 .* fits neither forward nor reversed .* at lib/core/logs.c hunk "):
        classify(again, unfixed=True)


def test_the_version_number_chooses_the_lines(lws_tree: Path, tmp_path: Path) -> None:
    """4.3.5's tree with upstream's seed fixes taken out is 4.3.3's client code: called 4.3.2 (inside
    the "4.3.0 - 4.3.3" lines) the seed fixes are ours and apply; called 4.3.5 they are a conflict."""
    old_client = copy_tree(lws_tree, tmp_path / "old-client")
    for _fix, line in reversed(on_435()[:3]):
        git_apply(old_client, line.diff, "-R")
    cache = tmp_path / "cache"
    as_432 = run_cli("patch", "--series", "seed", "--lws-version", "4.3.2", "--allow-unpinned",
                     "--source", f"dir:{old_client}", "--json", cache=cache)
    assert as_432.returncode == 0, as_432.stderr
    found = {p["id"]: (p["status"], p["versions"], p["form"]) for p in as_432.json["patches"]}
    lines = {fix.id: fix.line_for("4.3.2") for fix in series.select("seed").fixes}
    assert found == {fix_id: ("applied", line.versions if line else None, "ours") for fix_id, line in lines.items()}
    assert found["0001"][1] == "4.3.0 - 4.3.3"
    assert as_432.json["marks"] == ["UNPINNED"]
    as_435 = run_cli("patch", "--series", "seed", "--lws-version", "4.3.5", "--allow-unpinned",
                     "--source", f"dir:{old_client}", "--json", cache=cache)
    assert as_435.returncode == 4
    errors = [line for line in as_435.stderr.splitlines() if line.startswith("lwsbuild: error: ")]
    assert len(errors) == 1 and "fix 0001 " in errors[0]  # the other line is the fetch's UNPINNED notice
    assert "line 4.3.4 - 4.3.10: upstream bd8f69e43's change" in errors[0]
    # A release no line covers: refused before anything is fetched, whatever the tree.
    # (every pinned release is inside since the 4.1 and 4.2 lines: an unpinned 4.0.0 is not)
    outside = run_cli("patch", "--lws-version", "4.0.0", "--allow-unpinned", "--source", f"dir:{old_client}",
                      "--json", cache=tmp_path / "cache-2")
    assert outside.returncode == 2
    assert "4.0.0 is outside the fix series 'all': fixes 0001, 0002" in error_line(outside)
    assert not (tmp_path / "cache-2" / "trees").exists() or not list((tmp_path / "cache-2" / "trees").iterdir())
    shutil.rmtree(old_client)
