"""`lwsbuild matrix`: the CI build matrix, as a table and as GitHub Actions' `fromJSON` input.

Fast: no network, no builds; the matrix is computed from the pins, the variants and the series.
"""

from __future__ import annotations

import json

import pytest

from conftest import DEFAULT_LWS, Json, run_cli
from lwsbuild.build import variants
from lwsbuild.cli import matrix
from lwsbuild.cli.main import main
from lwsbuild.errors import UnsupportedVersionError
from lwsbuild.series import fixes as series
from lwsbuild.source import releases

SEED = ("0001", "0002", "0003", "0004")


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> Json:
    assert main(["matrix", "--json", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json prints one line"
    data: Json = json.loads(out)
    return data


def _supported_pins() -> list[str]:
    return [r.version for r in releases.all_releases() if series.supported(r)]


def test_default_is_the_default_version_times_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys)
    assert list(data) == ["include"]
    cells = data["include"]
    assert [(c["lws-version"], c["variant"]) for c in cells] == [(DEFAULT_LWS, v) for v in variants.names()]
    for cell in cells:
        assert cell["mirrors"] == list(releases.get(DEFAULT_LWS).mirrors)
        assert cell["default"] is True
        assert cell["tree-id"] == releases.get(DEFAULT_LWS).tree_id


def test_expected_statuses_4_3_5(capsys: pytest.CaptureFixture[str]) -> None:
    cell = _json(capsys, "--versions", "4.3.5", "--variants", "release")["include"][0]
    assert {pid: cell["expected"][pid] for pid in SEED} == {
        "0001": "upstream", "0002": "upstream", "0003": "upstream", "0004": "applied"}
    assert {pid: cell["forms"][pid] for pid in SEED} == {
        "0001": "upstream bd8f69e43", "0002": "upstream bd8f69e43", "0003": "upstream bd8f69e43", "0004": "ours"}
    # Every fix of the full series has a status, read from its line on 4.3.5.
    fixes = series.select(series.ALL).fixes
    assert list(cell["expected"]) == [f.id for f in fixes]
    for fix in fixes:
        assert cell["expected"][fix.id] == series.expected_status(fix.line_for("4.3.5")), fix.id
    assert cell["needs"] == [pid for pid, status in cell["expected"].items() if status == "applied"]
    assert "0004" in cell["needs"] and "0001" not in cell["needs"]


def test_every_pin_is_covered_and_an_uncovered_release_is_refused_naming_the_fix_and_the_range() -> None:
    # Since the 4.1 and 4.2 lines (issue 21) no pin is outside the series: an unpinned 4.0.0 is.
    assert [r.version for r in releases.all_releases() if not series.supported(r)] == []
    with pytest.raises(UnsupportedVersionError) as refused:
        series.check_supported(releases.get("4.0.0", allow_unpinned=True), series.select(series.ALL))
    line = refused.value.one_line()
    assert "4.0.0 is outside the fix series 'all': fixes 0001" in line
    assert f"pinned releases it covers: {series.covered_ranges(series.select(series.ALL).fixes)}" in line
    assert series.covered_ranges(series.select(series.ALL).fixes) == "4.1.0 - 5.0.0"


def test_versions_all_is_every_supported_pin(capsys: pytest.CaptureFixture[str]) -> None:
    cells = _json(capsys, "--versions", "all")["include"]
    pins = _supported_pins()
    assert [c["lws-version"] for c in cells[:: len(variants.names())]] == pins
    assert len(cells) == len(pins) * len(variants.names())
    # The distro lines are in `all` since the series covers them (issue 21).
    assert {"4.1.6", "4.2.0", "4.2.1", "4.2.2"} <= {c["lws-version"] for c in cells}
    # Every cell has the same keys: GitHub's matrix expansion and `matrix.<key>` rely on it.
    assert len({tuple(sorted(c)) for c in cells}) == 1


def test_lists_and_repeated_flags(capsys: pytest.CaptureFixture[str]) -> None:
    cells = _json(capsys, "--versions", "4.3.5,v4.3.9", "--versions", "4.3.9", "--variants", "tsan,asan")["include"]
    assert [(c["lws-version"], c["variant"]) for c in cells] == [
        ("4.3.5", "tsan"), ("4.3.5", "asan"), ("4.3.9", "tsan"), ("4.3.9", "asan")]


def test_stress_and_smoke_follow_the_variant(capsys: pytest.CaptureFixture[str]) -> None:
    for cell in _json(capsys)["include"]:
        sanitizer = variants.get(cell["variant"]).sanitizer
        assert cell["sanitizer"] == (sanitizer.name if sanitizer else "")
        assert cell["stress"] is (sanitizer is not None)  # the harness proves the fix under a sanitizer only
        assert cell["smoke"] is (sanitizer is None or sanitizer.python)
        assert cell["smoke"] is (cell["variant"] != "tsan")  # TSan cannot be loaded into Python
        assert cell["verify"] is (sanitizer is None)  # sanitizer builds name their cache path (gcc 12)


@pytest.mark.parametrize("args, needle", [
    (["--versions", "9.9.9"], "9.9.9 is not a pinned release"),
    (["--versions", "bogus"], "'bogus' is not a version number"),
    (["--variants", "msan"], "unknown variant 'msan'"),
])
def test_bad_names_are_one_line_usage_errors(args: list[str], needle: str) -> None:
    result = run_cli("matrix", "--json", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert needle in result.stderr
    assert result.stderr.startswith("lwsbuild: error: ") and result.stderr.count("\n") == 1
    assert "--allow-unpinned" not in result.stderr  # the matrix has no such flag


def test_github_output_line() -> None:
    """What the workflow does: `echo "matrix=$(lwsbuild matrix --json)" >> "$GITHUB_OUTPUT"`."""
    result = run_cli("matrix", "--json", "--versions", "all")
    assert result.returncode == 0, result.stderr
    value = result.stdout.rstrip("\n")
    assert "\n" not in value
    assert isinstance(json.loads(value)["include"], list)


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--versions", "4.3.4,4.3.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["version", "variant", "smoke", "stress", "verify"]
    assert len(lines) == 1 + 2 * len(variants.names())
    row = next(line.split() for line in lines if line.startswith("4.3.5") and " tsan " in line)
    assert row[2:5] == ["no", "yes", "no"]
    assert row[5:9] == ["upstream", "upstream", "upstream", "applied"]
    assert "git > archive > debian" in lines[1]


def test_api_matches_the_cli() -> None:
    plan = matrix.build_matrix(["4.3.5"], ["asan"])
    assert [c.to_json() for c in plan.cells] == plan.to_json()["include"]
    assert plan.cells[0].expected == {pid: series.expected_status(line)
                                      for pid, line in series.forms(releases.get("4.3.5")).items()}
