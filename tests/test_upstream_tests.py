"""`lwsbuild upstream-tests`: upstream's own CTest suite guards the series (issue 22).

The suite is built from the pristine tree (series `none`) and the prepared one with the same
options, only the targets its tests run are built, failures are rerun to tell a flake from a
failure, and a test that passes on the pristine tree and fails on the prepared one fails the command.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_LWS, Cli
from lwsbuild.build import cmake as build
from lwsbuild.source.releases import in_range
from lwsbuild.upstream import compare, results, suite

# What CI runs per release line it proves (issue 22: the default release and every CI-proven line):
# 4.3.5 under ASan without SUL_DEBUGGING (whose zombie check fails 55 of upstream's 71 tests on the
# pristine tree: docs/upstream-tests.md), 4.1.6 as released.
LINES = {DEFAULT_LWS: ("--variant", "asan", "-D", "LWS_WITH_SUL_DEBUGGING=OFF"),
         "4.1.6": ("--variant", "release")}
ASAN_NO_SUL = LINES[DEFAULT_LWS]


# --- the parts, on a CMake project of the test's own (seconds) ---------------------------------------

_PROJECT = {
    "CMakeLists.txt": """cmake_minimum_required(VERSION 3.14)
project(tiny C)
enable_testing()
add_subdirectory(tested)
add_subdirectory(untested)
add_subdirectory(server)
add_subdirectory(client)
""",
    "tested/CMakeLists.txt": """add_executable(tested-prog ok.c)
add_test(NAME passes COMMAND tested-prog 0)
add_test(NAME fails COMMAND tested-prog 1)
""",
    "tested/ok.c": "#include <stdlib.h>\nint main(int c, char **v) { return c > 1 ? atoi(v[1]) : 0; }\n",
    "untested/CMakeLists.txt": "add_executable(never-run ok.c)\n",
    "untested/ok.c": "int main(void) { return 0; }\n",
    # a background server another directory's test starts by its path, as upstream's fixtures do
    "server/CMakeLists.txt": "add_executable(bg-server ok.c)\n",
    "server/ok.c": "int main(void) { return 0; }\n",
    "client/CMakeLists.txt": "add_test(NAME starts-server COMMAND $<TARGET_FILE:bg-server>)\n",
}


@pytest.fixture
def tiny_project(tmp_path: Path) -> tuple[Path, Path]:
    source, build_dir = tmp_path / "src", tmp_path / "build"
    for name, text in _PROJECT.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    query = build_dir / ".cmake" / "api" / "v1" / "query" / "codemodel-v2"
    query.parent.mkdir(parents=True)
    query.touch()
    subprocess.run(["cmake", "-S", str(source), "-B", str(build_dir)], check=True, capture_output=True, timeout=120)
    return source, build_dir


def test_only_the_executables_the_tests_run_are_built(tiny_project: tuple[Path, Path]) -> None:
    source, build_dir = tiny_project
    tests = suite.registered(build_dir, {"PATH": "/usr/bin:/bin"})
    assert [t.name for t in tests] == ["passes", "fails", "starts-server"]
    assert tests[0].directory.resolve() == (source / "tested").resolve()
    # The registering directory's own executables, and the ones a command names; never the rest.
    assert suite.needed_targets(tests, build_dir, source) == ("bg-server", "tested-prog")
    assert suite.needed_targets(suite.registered(build_dir, {"PATH": "/usr/bin:/bin"}, "^passes$"),
                                build_dir, source) == ("tested-prog",)


def test_a_selection_that_matches_nothing_is_a_usage_error(tiny_project: tuple[Path, Path]) -> None:
    from lwsbuild.errors import UsageError

    _, build_dir = tiny_project
    with pytest.raises(UsageError, match="matches none of upstream's registered tests"):
        suite.selected(suite.registered(build_dir, {"PATH": "/usr/bin:/bin"}, "^no-such-test$"), "^no-such-test$")
    with pytest.raises(UsageError, match="is not a regex CMake can read: .*Unmatched parentheses"):
        suite.registered(build_dir, {"PATH": "/usr/bin:/bin"}, "(")


def test_ctests_own_results_are_read(tiny_project: tuple[Path, Path]) -> None:
    _, build_dir = tiny_project
    subprocess.run(["cmake", "--build", str(build_dir)], check=True, capture_output=True, timeout=300)
    junit = build_dir / "results.xml"
    subprocess.run(["ctest", "--test-dir", str(build_dir), "--output-junit", str(junit)], capture_output=True,
                   timeout=120, check=False)
    read = results._read_junit(junit)
    assert {name: outcome for name, (outcome, _, _) in read.items()} == {
        "passes": results.PASSED, "fails": results.FAILED, "starts-server": results.PASSED}


def test_a_rerun_tells_a_flake_from_a_failure_and_the_rows_a_regression() -> None:
    assert results._outcome(["passed"]) == results.PASSED
    assert results._outcome(["failed", "passed"]) == results.FLAKY
    assert results._outcome(["failed", "failed", "failed"]) == results.FAILED
    assert results._outcome([]) == results.NOT_RUN
    assert results.Row("t", results.PASSED, results.FAILED).verdict == "REGRESSION"
    assert results.Row("t", results.FLAKY, results.FAILED).verdict == "REGRESSION"
    assert results.Row("t", results.PASSED, "not registered").verdict == "REGRESSION"
    assert results.Row("t", results.FAILED, results.FAILED).verdict == "same"
    assert results.Row("t", results.FAILED, results.FLAKY).verdict == "fixed"


def test_every_known_result_says_why_and_what_it_covers() -> None:
    config = suite.config()
    assert config.cmake["LWS_WITH_MINIMAL_EXAMPLES"] == "ON" and config.cmake["VALGRIND"] == "OFF"
    assert config.internet not in config.cmake  # the suite sets it: OFF to run, ON to list what it leaves out
    for known in config.known:
        assert known.tests and len(known.why) > 80 and in_range(known.versions, DEFAULT_LWS)
        assert not known.suppression or known.suppression.startswith("leak:")
    leak = next(k for k in config.known if "api-test-lws_struct-json" in k.tests)
    # Only the test program's own frames are suppressed: a library leak elsewhere still fails.
    assert leak.suppression == "leak:api-test-lws_struct-json/main.c"
    assert config.known_for(DEFAULT_LWS, "release") == ()


# --- the real suite -----------------------------------------------------------------------------------

@pytest.mark.build
@pytest.mark.network
@pytest.mark.parametrize("version", list(LINES))
def test_upstreams_suite_passes_alike_on_the_pristine_and_the_fixed_tree(cli: Cli, version: str) -> None:
    result = cli("upstream-tests", "--lws-version", version, *LINES[version], "--json", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = result.json
    assert data["ok"] and data["regressions"] == []
    trees = data["trees"]
    assert trees["pristine"]["series"] == "none" and trees["prepared"]["series"] == "all"
    assert trees["pristine"]["prepared_tree_id"] != trees["prepared"]["prepared_tree_id"]
    passing = {label: tree["counts"]["passed"] + tree["counts"]["flaky"] for label, tree in trees.items()}
    # Every test upstream registers offline runs on both trees, and as many pass on each.
    assert data["ran_on_both"] == len(data["rows"]) and passing["prepared"] >= passing["pristine"]
    if version == DEFAULT_LWS:
        assert data["ran_on_both"] > 60 and passing["prepared"] > 60
        # What needs the internet is left out by upstream's own switch, and listed.
        assert "api-test-secure-streams" not in {r["test"] for r in data["rows"]}
        assert data["needs_internet"] and all("warmcat" in n or n.startswith("ss") or "secure" in n
                                              for n in data["needs_internet"])
        prepared = trees["prepared"]["tests"]
        # The leak of upstream's own test program is suppressed (its frames only): the test passes.
        assert prepared["api-test-lws_struct-json"]["outcome"] == results.PASSED
        # Upstream's UBSan traps fail alike on both trees, each with its reason.
        for name in ("api-test-lws_tokenize", "http-client-post"):
            assert prepared[name]["outcome"] == results.FAILED and "undefined behaviour" in prepared[name]["known"]
        assert len(trees["prepared"]["targets"]) < 40  # of some 170 the examples define


@pytest.mark.build
@pytest.mark.network
def test_a_broken_series_fails_upstreams_suite(cli: Cli, tmp_path: Path) -> None:
    """A deliberately broken tree in the place of the prepared one: lws_map no longer finds a key."""
    from lwsbuild.errors import UpstreamRegression
    from lwsbuild.request import BuildRequest

    defines = (("LWS_WITH_SUL_DEBUGGING", "OFF"),)
    request = BuildRequest(version=DEFAULT_LWS, variant="asan", defines=defines)
    pristine = dataclasses.replace(request, series="none").plan()
    fixed = request.plan()
    broken_tree = tmp_path / "broken"
    shutil.copytree(fixed.prepared.path, broken_tree, symlinks=True)
    source = broken_tree / "lib" / "core" / "lws_map.c"
    text = source.read_text()
    lookup = "lws_map_item_lookup(lws_map_t *map, const lws_map_key_t key, size_t keylen)\n{\n"
    assert text.count(lookup) == 1
    # the lookup reports every key as missing
    source.write_text(text.replace(lookup, lookup + "\tif (map)\n\t\treturn NULL;\n", 1))
    broken = dataclasses.replace(fixed, prepared=dataclasses.replace(fixed.prepared, path=broken_tree,
                                                                     tree_id="broken-" + fixed.prepared.tree_id))
    assert build.BuildSpec.key.fget(broken) != fixed.key  # type: ignore[attr-defined]
    result = compare.compare(pristine, broken, "^api-test-lws_map$|^api-test-lwsac$")
    assert not result.ok and [r.test for r in result.regressions] == ["api-test-lws_map"]
    assert "REGRESSION" in result.table() and "api-test-lws_map" in result.verdict()
    assert result.runs["prepared"].results["api-test-lws_map"].runs == ["failed"] * (suite.config().reruns + 1)
    assert result.runs["prepared"].results["api-test-lwsac"].outcome == results.PASSED
    # and the command's failure is the defect exit code, with a one-line message
    assert UpstreamRegression.exit_code == 8
