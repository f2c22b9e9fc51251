"""The series model (patches/series.toml): validation, line selection, and the status rules, on a
tiny synthetic tree and series (no libwebsockets needed: fast)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from lwsbuild.errors import DataFileError, PatchConflict, SeriesError, UnknownSeriesError, UnsupportedVersionError
from lwsbuild.series import fixes as series
from lwsbuild.source import releases
from lwsbuild.source.releases import Release

ORIGINAL = [f"line {n}" for n in range(1, 41)]
SETS = '[sets]\nseed = "s"\nall = "a"\nnone = "n"\n'


def diff(path: str, before: list[str], after: list[str]) -> str:
    lines = difflib.unified_diff([f"{x}\n" for x in before], [f"{x}\n" for x in after], f"a/{path}", f"b/{path}", n=3)
    return "".join(lines)


def changed(lines: list[str], number: int, text: str) -> list[str]:
    return [text if n == number else line for n, line in enumerate(lines, 1)]


def release(version: str) -> Release:
    return Release(version, f"v{version}", "2020-01-01", None, None, ())


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    """patches/ with 0001 (line 10 fixed; upstream from 2.0.0) and 0002 (line 30, ours), and a
    tree where upstream carries 0001 (a 2.x tree)."""
    folder = tmp_path / "patches"
    folder.mkdir()
    fixed_10 = changed(ORIGINAL, 10, "line 10 fixed")
    (folder / "0001-ten.patch").write_text(diff("src/x.c", ORIGINAL, fixed_10))
    (folder / "0002-thirty.patch").write_text(diff("src/x.c", fixed_10, changed(fixed_10, 30, "line 30 fixed")))
    return folder


def write_series(folder: Path, body: str) -> Path:
    (folder / "series.toml").write_text(SETS + body)
    return folder


GOOD = '''
[[fix]]
id = "0001"
title = "ten"
why = "line ten"
sets = ["seed"]
  [[fix.line]]
  versions = "1.0.0 - 1.9.9"
  patch = "0001-ten.patch"
  [[fix.line]]
  versions = "2.0.0 - 2.5.0"
  upstream = "abcdef123"
  patch = "0001-ten.patch"

[[fix]]
id = "0002"
title = "thirty"
why = "line thirty"
  [[fix.line]]
  versions = "1.0.0 - 2.5.0"
  patch = "0002-thirty.patch"

[[fix]]
id = "0003"
title = "late"
why = "a regression of 2.x"
  [[fix.line]]
  versions = "1.0.0 - 1.9.9"
  not_needed = "the regression came in 2.0.0"
  [[fix.line]]
  versions = "2.0.0 - 2.5.0"
  not_needed = "fixed in passing by the 2.0 rewrite"
'''


@pytest.fixture
def loaded(patches: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], tuple[series.Fix, ...]]:
    data = series.load_series(write_series(patches, GOOD))
    monkeypatch.setattr(series, "_load", lambda: data)
    return data


def tree(tmp_path: Path, lines: list[str], name: str = "tree") -> Path:
    root = tmp_path / name
    (root / "src").mkdir(parents=True)
    (root / "src" / "x.c").write_text("".join(f"{x}\n" for x in lines))
    return root


def run(root: Path, version: str, name: str = "all", unfixed: bool = False) -> dict[str, tuple[str, bool]]:
    chosen = series.select(name)
    series.check_supported(release(version), chosen, unfixed)
    results = series.classify_and_apply(root, release(version), chosen, unfixed, f"test tree {version}")
    return {r.fix.id: (r.status, r.unexpected) for r in results}


def _line(fix: series.Fix, version: str) -> series.Line:
    """The fix's line covering `version` (there must be one)."""
    line = fix.line_for(version)
    assert line is not None, (fix.id, version)
    return line


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (('versions = "1.0.0 - 2.5.0"', 'versions = "1.5.0 - 2.5.0"\n  patch = "0002-thirty.patch"\n  [[fix.line]]\n  versions = "1.0.0 - 1.5.0"'),
     "fix 0002: lines '1.0.0 - 1.5.0' and '1.5.0 - 2.5.0' overlap"),
    (('patch = "0002-thirty.patch"', 'patch = "0002-nothing.patch"'), "fix 0002 line 1: patch file 0002-nothing.patch is missing"),
    (('patch = "0002-thirty.patch"', 'patch = "../outside.patch"'), "patch file ../outside.patch is missing"),
    (('  upstream = "abcdef123"\n  patch = "0001-ten.patch"', '  upstream = "abcdef123"'),
     "fix 0001 line 2: needs patch (ours, or upstream's change with upstream = COMMIT) or not_needed"),
    (('not_needed = "the regression came in 2.0.0"', 'not_needed = "x"\n  patch = "0002-thirty.patch"'),
     "fix 0003 line 1: not_needed excludes patch and upstream"),
    (('upstream = "abcdef123"', 'upstream = "v4.3.4"'), "upstream = 'v4.3.4' is not a commit id"),
    (('versions = "1.0.0 - 2.5.0"', 'versions = "2.5.0 - 1.0.0"'), "runs backwards"),
    (('versions = "1.0.0 - 2.5.0"', 'versions = ">=1.0"'), "is not 'A.B.C' or 'A.B.C - X.Y.Z'"),
    (('sets = ["seed"]', 'sets = ["sead"]'), "set 'sead' is not declared"),
    (('id = "0002"', 'id = "0009"'), "fix ids must be unique and in apply order, got 0001, 0009, 0003"),
    (('id = "0002"', 'id = "2"'), "id must be four digits"),
])
def test_a_malformed_series_is_one_line_naming_the_fault(patches: Path, edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in GOOD
    with pytest.raises(SeriesError) as caught:
        series.load_series(write_series(patches, GOOD.replace(old, new, 1)))
    assert message in str(caught.value)
    assert "\n" not in caught.value.one_line() and "(fix: fix patches/series.toml)" in caught.value.one_line()


@pytest.mark.parametrize("edit, message", [
    (('title = "ten"', 'title = "ten"\ncolour = "red"'),
     "series.toml: fix[id=0001] has an unknown key 'colour' (known: evidence, id, line, sets, title, why)"),
    (('  patch = "0002-thirty.patch"', '  patch = "0002-thirty.patch"\n  fuzz = 3'),
     "series.toml: fix[id=0002].line[1] has an unknown key 'fuzz'"),
    (('title = "ten"', 'title = 10'), "series.toml: fix[id=0001].title is 10, expected a string"),
    (('sets = ["seed"]', 'sets = "seed"'), "series.toml: fix[id=0001].sets is 'seed', expected an array"),
])
def test_a_series_of_the_wrong_shape_is_a_data_file_error(patches: Path, edit: tuple[str, str], message: str) -> None:
    # The one loader's check (resources/load.py): a usage error naming file, table and key.
    old, new = edit
    assert old in GOOD
    with pytest.raises(DataFileError) as caught:
        series.load_series(write_series(patches, GOOD.replace(old, new, 1)))
    assert caught.value.exit_code == 2 and message in caught.value.one_line()


def test_unknown_top_level_key_and_missing_sets(patches: Path) -> None:
    with pytest.raises(DataFileError, match="the top level has an unknown key 'patch'"):
        series.load_series(write_series(patches, GOOD + '\n[[patch]]\nid = "0009"\n'))
    (patches / "series.toml").write_text('[sets]\nall = "a"\n' + GOOD)
    with pytest.raises(SeriesError, match="must describe at least 'all' and 'none'"):
        series.load_series(patches)


def test_the_repository_series_loads_and_every_fix_has_a_line() -> None:
    sets, fixes = series.load_series(series.series_dir())
    assert {"seed", "all", "none"} <= set(sets)
    assert [f.id for f in fixes][:8] == [f"000{n}" for n in range(1, 9)]
    assert all(f.lines for f in fixes)
    # 0001-0003: ours before 4.3.4, upstream bd8f69e43 from it on (one file for both forms).
    for fix in fixes[:3]:
        assert _line(fix, "4.3.3").form == "ours" and _line(fix, "4.3.4").upstream == "bd8f69e43"
        assert _line(fix, "4.3.3").patch == _line(fix, "4.3.4").patch


# --- line selection and coverage ----------------------------------------------------------------

def test_lines_are_chosen_by_version_number(loaded: object) -> None:
    fixes = {f.id: f for f in series.select().fixes}
    assert _line(fixes["0001"], "1.2.3").form == "ours"
    assert _line(fixes["0001"], "2.0.0").form == "upstream"
    assert _line(fixes["0001"], "2.5.0").upstream == "abcdef123"
    assert fixes["0001"].line_for("1.9.10") is None  # between the lines: uncovered
    # a bound holds what follows at a finer precision: 1.9.9.1 is a 1.9.9 (an unpinned patch release)
    assert _line(fixes["0001"], "1.9.9.1").form == "ours"
    assert _line(fixes["0003"], "1.0.0").form == "not-needed"
    assert series.select("seed").fixes == (fixes["0001"],)
    assert series.select("none").fixes == ()


def test_a_series_can_leave_out_sets_and_fixes(loaded: object) -> None:
    """`all-seed`, `all-0002`: what one fix or set is worth is measured without declaring a set."""
    def ids(name: str) -> list[str]:
        return [f.id for f in series.select(name).fixes]

    assert ids("all") == ["0001", "0002", "0003"]
    assert ids("all-seed") == ["0002", "0003"]
    assert ids("all-0002") == ["0001", "0003"]
    assert ids("all-seed-0003") == ["0002"]
    assert ids("seed-0001") == [] and ids("none-0002") == []
    assert series.select("all-seed").name == "all-seed"  # recorded as asked: provenance, wheel name
    for bad, named in [("all-0009", "'0009' in series 'all-0009'"), ("all-", "'' in series 'all-'"),
                       ("0001", "series '0001'"), ("-seed", "series '-seed'")]:
        with pytest.raises(UnknownSeriesError) as caught:
            series.select(bad)
        assert named in str(caught.value) and "all-" in caught.value.one_line()


def test_set_names_cannot_hold_the_difference_sign(patches: Path) -> None:
    (patches / "series.toml").write_text(SETS + 'no-fix = "x"\n' + GOOD)
    with pytest.raises(SeriesError, match="set name 'no-fix' must be non-empty without '-'"):
        series.load_series(patches)


def test_uncovered_release_is_refused_naming_the_fix(loaded: object) -> None:
    with pytest.raises(UnsupportedVersionError) as caught:
        series.check_supported(release("3.0.0"), series.select())
    line = caught.value.one_line()
    assert "libwebsockets 3.0.0 is outside the fix series 'all': fixes 0001, 0002, 0003 have no line for it" in line
    assert "--allow-unpinned" in line  # unpinned: the version number chooses the lines
    series.check_supported(release("3.0.0"), series.select("none"))  # nothing to apply, nothing to refuse
    with pytest.raises(UnsupportedVersionError):  # --unfixed undoes every fix: all must cover it
        series.check_supported(release("3.0.0"), series.select("none"), unfixed=True)


def test_covered_ranges_of_the_real_pins() -> None:
    text = series.covered_ranges(series.select().fixes)
    pinned = [r.version for r in releases.all_releases() if series.supported(r)]
    assert "4.3.5" in pinned  # the release CI can fetch
    assert text.startswith(pinned[0]) and text.endswith(pinned[-1])
    assert series.covered_ranges(()) .startswith(releases.all_releases()[0].version)  # no fix: every pin


# --- status rules -------------------------------------------------------------------------------

def test_fixed_mode_on_each_line(loaded: object, tmp_path: Path) -> None:
    old = tree(tmp_path, ORIGINAL, "old")
    assert run(old, "1.5.0") == {"0001": ("applied", False), "0002": ("applied", False), "0003": ("not-needed", False)}
    assert "line 10 fixed" in (old / "src/x.c").read_text() and "line 30 fixed" in (old / "src/x.c").read_text()
    carried = tree(tmp_path, changed(ORIGINAL, 10, "line 10 fixed"), "carried")
    assert run(carried, "2.1.0") == {"0001": ("upstream", False), "0002": ("applied", False), "0003": ("not-needed", False)}


def test_our_patch_already_there_is_upstream_and_flagged(loaded: object, tmp_path: Path) -> None:
    carried = tree(tmp_path, changed(ORIGINAL, 10, "line 10 fixed"))
    assert run(carried, "1.5.0", "seed") == {"0001": ("upstream", True)}


def test_upstream_line_whose_fix_is_absent_is_a_conflict(loaded: object, tmp_path: Path) -> None:
    with pytest.raises(PatchConflict) as caught:
        run(tree(tmp_path, ORIGINAL), "2.1.0")
    assert ("fix 0001 (ten), line 2.0.0 - 2.5.0: upstream abcdef123's change (0001-ten.patch) does not reverse-apply "
            "on test tree 2.1.0 at src/x.c hunk 1 (@@ -7,7 +7,7 @@)") in str(caught.value)


def test_edited_context_is_a_conflict_naming_file_and_hunk(loaded: object, tmp_path: Path) -> None:
    with pytest.raises(PatchConflict) as caught:
        run(tree(tmp_path, changed(ORIGINAL, 29, "line 29 edited")), "1.5.0")
    assert "fix 0002 (thirty), line 1.0.0 - 2.5.0: 0002-thirty.patch fits neither forward nor reversed" in str(caught.value)
    assert "at src/x.c hunk 1 (@@ -27,7 +27,7 @@)" in str(caught.value)


def test_shifted_code_classifies_the_same(loaded: object, tmp_path: Path) -> None:
    shifted = ["/* moved */"] * 5 + ORIGINAL[:20] + ["", "/* comment */"] + ORIGINAL[20:]
    assert run(tree(tmp_path, shifted), "1.5.0")["0002"] == ("applied", False)


def test_unfixed_reverts_upstream_and_checks_ours_absent(loaded: object, tmp_path: Path) -> None:
    carried = tree(tmp_path, changed(ORIGINAL, 10, "line 10 fixed"), "carried")
    assert run(carried, "2.1.0", "seed", unfixed=True) == {
        "0001": ("reverted", False), "0002": ("absent", False), "0003": ("not-needed", False)}
    assert (carried / "src/x.c").read_text().splitlines() == ORIGINAL
    # Upstream line, fix absent: the tree cannot be unfixed honestly.
    with pytest.raises(PatchConflict, match="fix 0001 .* does not reverse-apply"):
        run(tree(tmp_path, ORIGINAL, "bare"), "2.1.0", unfixed=True)
    # Our line, but the fix is in the tree already: not "absent", a conflict.
    with pytest.raises(PatchConflict, match="fix 0002 .* fits neither"):
        run(tree(tmp_path, changed(ORIGINAL, 30, "line 30 fixed"), "ours-in"), "1.5.0", unfixed=True)


def test_prepared_key_follows_the_chosen_forms(loaded: object, patches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lwsbuild.source.fetch import Source

    def key(version: str) -> str:
        return series.prepared_key(Source(release(version), "t" * 40, "dir:x", Path("/x"), True, False), series.select(), False)

    before = {v: key(v) for v in ("1.5.0", "2.1.0")}
    assert before["1.5.0"] != before["2.1.0"]  # same tree id, other forms: another prepared tree
    assert key("1.6.0") == before["1.5.0"]
    # Other bytes in a chosen patch: another key.
    with (patches / "0002-thirty.patch").open("a") as handle:
        handle.write("\n")
    data = series.load_series(patches)
    monkeypatch.setattr(series, "_load", lambda: data)
    assert key("1.5.0") != before["1.5.0"]
