"""The command line itself: `versions`, `--json` on every command, one-line errors and exit codes."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from conftest import DEFAULT_LWS, REPO, CliResult, Json, run_cli
from helpers import cachestate
from helpers.checks import error_line

PINS = ["4.1.0", "4.1.1", "4.1.2", "4.1.3", "4.1.4", "4.1.5", "4.1.6", "4.2.0", "4.2.1", "4.2.2", "4.3.0", "4.3.1", "4.3.2", "4.3.3", "4.3.4", "4.3.5", "4.3.6", "4.3.7",
        "4.3.8", "4.3.9", "4.3.10", "4.4.0", "4.4.1", "4.4.2", "4.4.3", "4.4.4", "4.4.5",
        "4.5.0", "4.5.1", "4.5.2", "4.5.3", "4.5.4", "4.5.5", "4.5.6", "4.5.7", "4.5.8", "5.0.0"]
SEED = ["0001", "0002", "0003", "0004"]


def series_data() -> Json:
    return tomllib.loads((REPO / "patches" / "series.toml").read_text())


def declared_ids() -> list[str]:
    return [f["id"] for f in series_data()["fix"]]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def line_for(fix: Json, version: str) -> Json | None:
    """Read straight from the TOML, independently of lwsbuild.series."""
    for line in fix["line"]:
        low, _, high = line["versions"].partition(" - ")
        if _key(low) <= _key(version) <= _key(high or low):
            found: Json = line
            return found
    return None


@pytest.fixture(scope="module")
def versions() -> dict[str, Json]:
    result = run_cli("versions", "--json")
    assert result.returncode == 0, result.stderr
    supported = [row["version"] for row in result.json["versions"] if row["series_supported"]]
    assert result.json["series_covers"].startswith(supported[0]) and result.json["series_covers"].endswith(supported[-1])
    return {row["version"]: row for row in result.json["versions"]}


def test_versions_lists_the_pins_in_order(versions: dict[str, Json]) -> None:
    assert list(versions) == PINS
    for version, row in versions.items():
        assert row["tag"] == f"v{version}"
        assert len(row["commit"]) == 40 and len(row["tree_id"]) == 40
        # Supported exactly when every fix has a line for the release.
        assert row["series_supported"] is all(line_for(f, version) for f in series_data()["fix"]), version
    assert versions["4.3.5"]["series_supported"] and versions["4.3.10"]["series_supported"]
    assert (versions["4.3.5"]["commit"], versions["4.3.5"]["tree_id"]) == (
        "ab9df9cfc39de7a49967f18387b6b76310947442", "572da87937f5e9d6aac00631d7588025117bfb9e")
    assert (versions["4.1.6"]["commit"], versions["4.1.6"]["tree_id"]) == (
        "736f0739ed8c75db0e29c7678b5a9194e957c347", "c8e6f7de77ed51608e691dfdc47b1f369152c292")
    assert [v for v, row in versions.items() if row["default"]] == [DEFAULT_LWS]
    assert versions["5.0.0"]["gitlinks"] == {
        "minimal-examples-lowlevel/api-tests/api-test-qpack/qifs": "da52cd936b3e34dac7ac12aa8066fc57676af106"}


def test_versions_say_what_each_fix_is_on_each_release(versions: dict[str, Json]) -> None:
    for version, row in versions.items():
        assert list(row["fixes"]) == declared_ids()
        for fix in series_data()["fix"]:
            line, state = line_for(fix, version), row["fixes"][fix["id"]]
            if line is None:
                assert state["status"] == "uncovered" and state["versions"] is None, (version, fix["id"])
            elif "not_needed" in line:
                assert (state["status"], state["reason"]) == ("not-needed", line["not_needed"])
            else:
                assert state["status"] == ("upstream" if "upstream" in line else "ours"), (version, fix["id"])
                assert (state["versions"], state["patch"], state["upstream"]) == (
                    line["versions"], line["patch"], line.get("upstream")), (version, fix["id"])
        assert row["needs"] == ([pid for pid, s in row["fixes"].items() if s["status"] == "ours"]
                                if row["series_supported"] else [])
    # The seed fixes' known history: ours up to 4.3.3, upstream bd8f69e43 from 4.3.4 (the bug's fix).
    for pid in ("0001", "0002", "0003"):
        assert versions["4.3.3"]["fixes"][pid]["status"] == "ours"
        assert (versions["4.3.5"]["fixes"][pid]["status"], versions["4.3.5"]["fixes"][pid]["upstream"]) == (
            "upstream", "bd8f69e43")
    assert versions["4.3.5"]["needs"][:1] == ["0004"]


def test_versions_human_output_marks_the_range_and_default(versions: dict[str, Json]) -> None:
    result = run_cli("versions")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert list(lines) == PINS
    for version, line in lines.items():
        assert line.split()[3] == ("supported" if versions[version]["series_supported"] else "outside")
    # Every pin is inside the series since the 4.1 and 4.2 lines (issue 21); 4.1.6 is proven in CI.
    assert all(versions[v]["series_supported"] for v in PINS)
    assert "proven in CI" in lines["4.1.6"] and "ours 0001" in lines["4.1.6"]
    assert "(default)" in lines["4.3.5"] and "ours 0004" in lines["4.3.5"]
    assert "upstream bd8f69e43 0001 0002 0003" in lines["4.3.5"]
    assert "572da87937f5" in lines["4.3.5"]


@pytest.mark.network
@pytest.mark.parametrize("command", [["versions"], ["variants"], ["fetch"], ["patch"], ["patch", "--unfixed"]])
def test_every_command_speaks_json(command: list[str], debian_fetch: CliResult, debian_cache: Path) -> None:
    assert debian_fetch.returncode == 0, debian_fetch.stderr
    result = run_cli(*command, "--json", cache=debian_cache)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), dict)


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("versions", "variants", "fetch", "patch", "build"):
        assert f"    {command} " in result.stdout
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("lwsbuild ")


@pytest.mark.parametrize("command", ["fetch", "patch"])
@pytest.mark.parametrize("spec", ["ftp://example.invalid/x.tar.gz", "debianx", "dir:", "archive:", "git+",
                                  "archive:/x.tar.gz#sha256=not-hex"])
def test_bad_source_spec_is_one_line_exit_2(command: str, spec: str, tmp_path: Path) -> None:
    result = run_cli(command, "--source", spec, "--json", cache=tmp_path)
    assert result.returncode == 2
    line = error_line(result)
    assert spec in line and "(fix: use git+URL[@REF]" in line
    assert result.stdout == ""
    assert cachestate.entries(tmp_path) == set()


@pytest.mark.parametrize("args, message", [
    (["fetch", "--lws-version", "9.9.9"], "libwebsockets 9.9.9 is not a pinned release"),
    (["fetch", "--lws-version", "v9.9.9"], "libwebsockets 9.9.9 is not a pinned release"),
    (["fetch", "--lws-version", "latest"], "'latest' is not a version number"),
    (["patch", "--series", "nope"], "unknown series 'nope'"),
    (["patch", "--lws-version", "4.0.0", "--allow-unpinned"], "4.0.0 is outside the fix series 'all': fixes 0001, 0002"),
    (["patch", "--lws-version", "4.0.0", "--allow-unpinned", "--unfixed"], "4.0.0 is outside the fix series 'all'"),
    (["patch", "--lws-version", "4.0.0", "--allow-unpinned", "--series", "seed"], "4.0.0 is outside the fix series 'seed'"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli(*args, "--json", cache=tmp_path)
    assert result.returncode == 2
    line = error_line(result)
    assert message in line and "(fix: " in line
    assert result.stdout == ""
    assert cachestate.entries(tmp_path) == set()


def test_source_failure_is_one_line_exit_3(tmp_path: Path) -> None:
    result = run_cli("fetch", "--source", f"dir:{tmp_path / 'nothing-here'}", cache=tmp_path / "cache")
    assert result.returncode == 3
    assert "is not a libwebsockets source tree" in error_line(result)


def test_all_mirrors_failing_names_each_and_exits_3(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = run_cli("fetch", "--source", f"dir:{missing}", "--source", f"archive:{missing}.tar.gz",
                     cache=tmp_path / "cache")
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    # One notice per failed mirror as it happens, then the one error line naming them all.
    assert [line.split(" failed:")[0] for line in lines[:-1]] == [
        f"lwsbuild: mirror dir:{missing}", f"lwsbuild: mirror archive:{missing}.tar.gz"]
    assert lines[-1].startswith(f"lwsbuild: error: no mirror delivered libwebsockets {DEFAULT_LWS}: ")
    assert str(missing) in lines[-1] and f"{missing}.tar.gz" in lines[-1]
