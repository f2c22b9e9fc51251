"""`lwsbuild build`: one cached build per key; a changed -D rebuilds, a repeat configures nothing;
a failed build shows why (its log's tail, also under CI) and a missing tool fails its stage."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_LWS, Cli, CliResult, Json, run_cli
from helpers import cachestate
from helpers.checks import error_line
from lwsbuild import errors
from lwsbuild.common import progress

# Every test here builds (the session's builds, whose source comes from Debian's archive).
pytestmark = [pytest.mark.build, pytest.mark.network]


def _configure_state(build: Json) -> tuple[int, bytes]:
    """When CMake last wrote its cache, and everything the build logged (every configure is logged)."""
    build_dir = Path(build["build_dir"])
    return (build_dir / "CMakeCache.txt").stat().st_mtime_ns, (build_dir.parent / "build.log").read_bytes()


def test_a_repeat_build_is_served_from_the_cache_without_configuring(cli: Cli, release_build: Json) -> None:
    before = _configure_state(release_build)
    result = cli("build", "--json")
    assert result.returncode == 0, result.stderr
    again = result.json
    assert again["cached"] is True
    assert (again["build_key"], again["prefix"]) == (release_build["build_key"], release_build["prefix"])
    assert _configure_state(again) == before


def test_a_changed_define_rebuilds_into_its_own_entry(cli: Cli, release_build: Json) -> None:
    result = cli("build", "--json", "-D", "LWS_WITH_HTTP2=OFF")
    assert result.returncode == 0, result.stderr
    changed = result.json
    assert changed["cached"] is False or os.environ.get("LWSBUILD_TEST_CACHE")  # a reused cache has it already
    assert changed["build_key"] != release_build["build_key"] and changed["prefix"] != release_build["prefix"]
    prefix = Path(changed["prefix"])
    provenance = json.loads((prefix / "share" / "lwsbuild" / "provenance.json").read_text())
    assert provenance["cmake_options"]["LWS_WITH_HTTP2"] == "OFF"
    assert "#define LWS_WITH_HTTP2" not in (prefix / "include" / "lws_config.h").read_text()
    assert "#define LWS_WITH_HTTP2" in (Path(release_build["prefix"]) / "include" / "lws_config.h").read_text()
    assert b"$ cmake -S" in _configure_state(changed)[1]

    before = _configure_state(changed)
    repeat = cli("build", "--json", "-D", "LWS_WITH_HTTP2=OFF")
    assert repeat.returncode == 0 and repeat.json["cached"] is True
    assert repeat.json["build_key"] == changed["build_key"] and _configure_state(repeat.json) == before


def _dynamic_section(library: Path) -> str:
    return subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout


def _has_symtab(library: Path) -> bool:
    sections = subprocess.run(["readelf", "-S", "-W", str(library)], capture_output=True, text=True, check=True).stdout
    return " .symtab " in sections


def test_release_asan_and_tsan_are_built_as_their_variants_say(release_prefix: Path, asan_prefix: Path,
                                                              tsan_prefix: Path) -> None:
    expected = {release_prefix: ("release", ""), asan_prefix: ("asan", "libasan.so"), tsan_prefix: ("tsan", "libtsan.so")}
    for prefix, (variant, runtime) in expected.items():
        provenance = json.loads((prefix / "share" / "lwsbuild" / "provenance.json").read_text())
        assert provenance["variant"] == variant and provenance["lws"]["version"] == DEFAULT_LWS
        layout = json.loads((prefix / "share" / "lwsbuild" / "layout.json").read_text())
        assert layout["soname"] == "libwebsockets.so.19"  # recorded by the build: 4.3.x's SONAME
        library = prefix / "lib" / layout["soname"]
        needed = _dynamic_section(library)
        if runtime:
            assert runtime in needed, needed
            assert _has_symtab(library)  # sanitizer builds keep their symbols for the reports
        else:
            assert "libasan" not in needed and "libtsan" not in needed
            assert not _has_symtab(library)  # release is stripped


# --- failures: visible in CI, with the stage's exit code, nothing half-written -----------------------

@pytest.fixture(scope="module")
def pinned_tree(cli: Cli) -> Path:
    """The verified default tree, from the session cache (no mirror is asked once it is there)."""
    fetched = cli("fetch", "--json")
    assert fetched.returncode == 0, fetched.stderr
    return Path(fetched.json["path"])


def _refusing_compiler(directory: Path) -> Path:
    """A C compiler that answers --version and refuses to compile anything: CMake's first test
    compile fails, so the configure fails within seconds, the same way every time."""
    cc = directory / "refusing-cc"
    cc.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "refusing-cc 1.0 (lwsbuild test)"; exit 0; fi\n'
                  'echo "refusing-cc: this compiler refuses every file" >&2\nexit 1\n')
    cc.chmod(0o755)
    return cc


def _failed_build(cache: Path, tmp_path: Path, *flags: str,
                  env: dict[str, str] | None = None) -> tuple[CliResult, Path]:
    result = run_cli(*flags, "build", "--json", cache=cache, timeout=600,
                     env={"CI": "true", "CC": str(_refusing_compiler(tmp_path)), **(env or {})})
    assert result.returncode == errors.BUILD.code, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("lwsbuild: error: configure failed (") and "(fix: " in last, last
    found = re.search(r"full log: (\S+/build\.log)", last)
    assert found, last
    log = Path(found.group(1))
    assert log.is_file() and log.parent.parent == cache / "builds"
    return result, log


def _nothing_half_written(cache: Path, entry: Path) -> None:
    """The build's working directory keeps its log; no install prefix, staged or published."""
    assert not (entry / "prefix").exists()
    assert [p.name for p in entry.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")] == []
    assert cachestate.leftovers(cache) == set()
    assert not [e for e in cachestate.entries(cache) if e.startswith("builds/") and (cache / e / "prefix").exists()]


def test_a_failed_build_under_ci_shows_its_log_tail_and_path(pinned_tree: Path, tmp_path: Path) -> None:
    cache = cachestate.seed(tmp_path / "cache", pinned_tree)
    result, log = _failed_build(cache, tmp_path)
    lines = result.stderr.splitlines()
    logged = log.read_text().splitlines()[-progress.TAIL_LINES:]
    head = lines.index(f"lwsbuild: the last {len(logged)} lines of {log}:")
    assert lines[-2] == f"lwsbuild: end of {log}"
    tail = lines[head + 1:-2]
    assert tail == [f"  | {line[:400]}" for line in logged]
    assert any("CMake Error" in line for line in tail), tail
    assert any("refusing-cc: this compiler refuses every file" in line for line in tail), tail
    _nothing_half_written(cache, log.parent)


def test_verbose_streams_the_build_output_live(pinned_tree: Path, tmp_path: Path) -> None:
    cache = cachestate.seed(tmp_path / "cache", pinned_tree)
    result, log = _failed_build(cache, tmp_path, "--verbose")
    assert "lwsbuild: configure… $ cmake -S " in result.stderr
    assert "refusing-cc: this compiler refuses every file" in result.stderr
    assert "lines of" not in result.stderr  # streamed already: no tail repeated under it
    assert result.stderr.count("refusing-cc: this compiler refuses every file") == \
        log.read_text().count("refusing-cc: this compiler refuses every file")
    _nothing_half_written(cache, log.parent)


def test_under_github_actions_each_step_is_a_timed_fold_and_the_error_an_annotation(pinned_tree: Path,
                                                                                    tmp_path: Path) -> None:
    cache = cachestate.seed(tmp_path / "cache", pinned_tree)
    result, _log = _failed_build(cache, tmp_path, env={"GITHUB_ACTIONS": "true"})
    lines = result.stderr.splitlines()
    start, end = lines.index("::group::configure"), lines.index("::endgroup::")
    assert "refusing-cc: this compiler refuses every file" in "\n".join(lines[start:end])  # streamed into the fold
    assert re.fullmatch(r"lwsbuild: configure: \d+\.\d s", lines[end + 1]), lines[end + 1]
    error = lines[-1]
    assert lines[-2] == f"::error title=lwsbuild (exit 5)::{error.removeprefix('lwsbuild: error: ')}"
    assert sum(line.startswith("::error") for line in lines) == 1


def test_github_actions_output_is_escaped_and_summarised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "step.log"
    log.write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    assert progress.run_logged("build…", ["sh", "-c", "echo one; echo 100%"], log, dict(os.environ)) == 0
    progress.annotate_error("a\nb 50%", 9)
    progress.step_summary("| a | b |\n|---|---|")
    lines = capsys.readouterr().err.splitlines()
    assert lines[:3] == ["::group::build", "one", "100%"] and lines[3] == "::endgroup::"
    assert re.fullmatch(r"lwsbuild: build: \d+\.\d s", lines[4]) and lines[5] == "::error title=lwsbuild (exit 9)::a%0Ab 50%25"
    assert (tmp_path / "summary.md").read_text() == "| a | b |\n|---|---|\n\n"
    assert log.read_text() == "$ sh -c echo one; echo 100%\none\n100%\n"
    monkeypatch.delenv("GITHUB_ACTIONS")  # elsewhere: nothing of it
    progress.step_summary("x")
    assert (tmp_path / "summary.md").read_text().count("\n") == 3


def _path_with(directory: Path, *programs: str) -> str:
    """A PATH holding only `programs` (links to this machine's)."""
    directory.mkdir()
    for program in programs:
        found = shutil.which(program)
        assert found, f"{program} is needed for this test"
        (directory / program).symlink_to(found)
    return str(directory)


def test_no_cmake_fails_the_build_stage(pinned_tree: Path, tmp_path: Path) -> None:
    cache = cachestate.seed(tmp_path / "cache", pinned_tree)
    result = run_cli("build", cache=cache, env={"PATH": _path_with(tmp_path / "bin", "git", "cc")}, timeout=600)
    assert result.returncode == errors.BUILD.code, result.stderr
    assert error_line(result) == ("lwsbuild: error: cmake is not installed, and the configure step needs it "
                                  "(fix: apt-get install cmake)")
    (entry,) = [p for p in (cache / "builds").iterdir() if p.is_dir()]
    _nothing_half_written(cache, entry)


def test_no_git_fails_the_patch_stage(pinned_tree: Path, tmp_path: Path) -> None:
    cache = cachestate.seed(tmp_path / "cache", pinned_tree)
    result = run_cli("patch", cache=cache, env={"PATH": _path_with(tmp_path / "bin")}, timeout=600)
    assert result.returncode == errors.PATCH.code, result.stderr
    assert error_line(result) == ("lwsbuild: error: git is not installed, and applying the fix series needs it "
                                  "(fix: apt-get install git)")
    assert cachestate.entries(cache) == {f"trees/{pinned_tree.name}", f"trees/{pinned_tree.name}.json"}
