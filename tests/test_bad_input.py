"""Bad input never ends in a traceback (issue 9): each case is one line, `lwsbuild: error: ... (fix: ...)`,
with the exit code the README documents, and nothing half-written.

The fast cases pass `--source dir:<missing>` where a command could get as far as a download, so a
regression fails fast with exit 3 instead of reaching the network.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import DEFAULT_LWS, REPO, Cli, Json, run_cli
from helpers import cachestate
from helpers.checks import error_line
from helpers.hostile_ws import OversizedFramePeer
from lwsbuild import errors
from lwsbuild.build import variants
from lwsbuild.build.cmake import cmake_bracket
from lwsbuild.cli import main as cli
from lwsbuild.common import cache
from lwsbuild.native import smoke

FORBIDDEN = [(name, variant) for variant in variants.names()
             for name in variants.get(variant).forbidden]  # every forbidden option of every variant
# As CMake's if(VAR) and #cmakedefine read a variable (how lws tests its options): "0.0", "-0" and
# "00" are ON there (only the constant "0" is off), and NOTFOUND is recognised in upper case only.
CMAKE_TRUE = ["ON", "on", "1", "2", "-1", "0.0", "00", "-0", "0e0", "1.5", "YES", "y", "TRUE", "true", "foo",
              " OFF", "OFF ", " 0", "NOTFOUND-X", "notfound", "lib-notfound", "0x0"]
CMAKE_FALSE = ["OFF", "off", "Off", "0", "NO", "no", "N", "n", "FALSE", "False", "IGNORE", "ignore", "NOTFOUND", "",
               "X-NOTFOUND", "-NOTFOUND"]


def missing_source(tmp_path: Path) -> list[str]:
    return ["--source", f"dir:{tmp_path / 'no-such-tree'}"]


# --- 1. the release guard decides truth the way CMake does -------------------------------------

def test_truth_is_cmakes_own(tmp_path: Path) -> None:
    """cmake_truthy agrees with CMake's `if(VAR)` (how lws tests its options) for every value."""
    script = tmp_path / "truth.cmake"
    values = CMAKE_TRUE + CMAKE_FALSE
    script.write_text("".join(f"set(V {cmake_bracket(v)})\nif(V)\n  message(\"{i} ON\")\nelse()\n"
                              f"  message(\"{i} OFF\")\nendif()\n" for i, v in enumerate(values)))
    result = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    cmake_says = dict(line.split() for line in result.stderr.splitlines())
    assert {v: cmake_says[str(i)] == "ON" for i, v in enumerate(values)} == \
        {v: variants.cmake_truthy(v) for v in values}
    assert all(variants.cmake_truthy(v) for v in CMAKE_TRUE)
    assert not any(variants.cmake_truthy(v) for v in CMAKE_FALSE)


@pytest.mark.parametrize("name, variant", FORBIDDEN)
@pytest.mark.parametrize("value", ["2", "on", "Yes", "y", "0.0", "enabled"])
def test_forbidden_options_are_refused_for_any_true_value(name: str, variant: str, value: str) -> None:
    with pytest.raises(errors.UsageError, match=f"-D {name}={value} with --variant {variant}"):
        variants.options_for(variants.get(variant), {name: value}, DEFAULT_LWS)


@pytest.mark.parametrize("name, variant", FORBIDDEN)
@pytest.mark.parametrize("value", ["OFF", "0", "no", "false", "N", "IGNORE", "NOTFOUND", "x-NOTFOUND", ""])
def test_forbidden_options_may_be_switched_off(name: str, variant: str, value: str) -> None:
    assert variants.options_for(variants.get(variant), {name: value}, DEFAULT_LWS)[name] == value


def test_release_with_sul_debugging_2_is_refused_before_any_fetch(tmp_path: Path) -> None:
    result = run_cli("build", "--variant", "release", "-D", "LWS_WITH_SUL_DEBUGGING=2", *missing_source(tmp_path),
                     cache=tmp_path / "cache")
    assert result.returncode == 2
    assert "-D LWS_WITH_SUL_DEBUGGING=2 with --variant release" in error_line(result)
    assert cachestate.entries(tmp_path / "cache") == set()


# --- 2. -D values: unicode digits, non-UTF-8 bytes, CMake syntax -------------------------------

@pytest.mark.parametrize("value", ["²", "٣", "08", "010", "1e3", "8.0", " 8", "99999999999999999999", "0x10", "1025"])
def test_lws_max_smp_must_be_ascii_decimal(value: str, tmp_path: Path) -> None:
    result = run_cli("build", "-D", f"LWS_MAX_SMP={value}", *missing_source(tmp_path), cache=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    why = "is not ASCII" if not value.isascii() else "from 2 to 1024"  # "²" never reaches the number check
    assert "LWS_MAX_SMP" in line and why in line and "(fix: " in line


# Look-alikes that Unicode case folding reads as a false constant and CMake, comparing ASCII bytes, as ON:
# "oﬀ" (U+FB00 ligature) folds to "OFF", "falſe" (long s) to "FALSE", "ıgnore" (dotless i) to "IGNORE".
LOOK_ALIKES = ["o\ufb00", "fal\u017fe", "\u0131gnore", "\u00f6ff", "OFF\u200b"]


@pytest.mark.parametrize("value", LOOK_ALIKES)
def test_a_unicode_look_alike_of_off_is_on_to_cmake(value: str, tmp_path: Path) -> None:
    # Why values must be ASCII: CMake takes each of these as ON.
    script = tmp_path / "truth.cmake"
    script.write_text(f"set(V {cmake_bracket(value)})\nif(V)\nmessage(ON)\nelse()\nmessage(OFF)\nendif()\n",
                      encoding="utf-8")
    result = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert result.stderr.strip() == "ON", result.stderr
    assert variants.cmake_truthy(value)  # and lwsbuild's own reading agrees


@pytest.mark.parametrize("value", LOOK_ALIKES)
def test_a_non_ascii_define_is_refused_before_anything_is_fetched(value: str, tmp_path: Path) -> None:
    # The release guard forbids SUL_DEBUGGING: a look-alike of OFF must not slip past it as "off".
    # (The same through pip's -C lwsbuild.define.*: tests/test_pip.py.)
    result = run_cli("build", "-D", f"LWS_WITH_SUL_DEBUGGING={value}", *missing_source(tmp_path),
                     cache=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert "is not ASCII" in line and "LWS_WITH_SUL_DEBUGGING" in line and "(fix: " in line
    assert cachestate.entries(tmp_path / "cache") == set()


@pytest.mark.parametrize("value", ["2", "8", "1024"])
def test_lws_max_smp_in_range_is_taken(value: str) -> None:
    assert variants.options_for(variants.get("release"), {"LWS_MAX_SMP": value}, DEFAULT_LWS)["LWS_MAX_SMP"] == value


@pytest.mark.parametrize("value", ["0", "1"])
def test_lws_max_smp_below_two_is_single_threaded(value: str) -> None:
    with pytest.raises(errors.UsageError, match="single-threaded"):
        variants.options_for(variants.get("release"), {"LWS_MAX_SMP": value}, DEFAULT_LWS)


@pytest.mark.parametrize("command", ["build", "smoke", "wheel", "stress", "config"])
def test_non_utf8_define_is_one_line(command: str, tmp_path: Path) -> None:
    # What the shell passes for $'LWS_X=\xff': Python sees a surrogate escape.
    result = run_cli(command, "-D", os.fsdecode(b"LWS_X=\xff"), *missing_source(tmp_path), cache=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert "LWS_X=\\xff is not valid UTF-8" in line and "(fix: " in line
    assert cachestate.entries(tmp_path / "cache") == set()


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "x;y", "tab\there", "del\x7f", "line\n)"])
def test_values_that_would_corrupt_the_cmake_spec_are_refused(value: str, tmp_path: Path) -> None:
    with pytest.raises(errors.BadDefineError, match="control character or a ';'"):
        variants.parse_defines([f"LWS_X={value}"])


@pytest.mark.parametrize("value", ['say "hi"', "]==]", "a]=", "${HOME}", "back\\slash", "[[x]]", ")"])
def test_printable_values_reach_cmake_byte_for_byte(value: str, tmp_path: Path) -> None:
    """Accepted values are quoted so that CMake reads back exactly what was given."""
    assert variants.parse_defines([f"LWS_X={value}"]) == {"LWS_X": value}
    script = tmp_path / "spec.cmake"
    script.write_text(f"set(LWS_X {cmake_bracket(value)} CACHE STRING \"\" FORCE)\nmessage(\"<${{LWS_X}}>\")\n",
                      encoding="utf-8")
    result = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"<{value}>\n"


def test_spec_file_reads_back_whatever_the_paths_and_values_hold(tmp_path: Path) -> None:
    """The generated LWSBUILD_SPEC, with a hostile directory name and -D value: CMake reads back every
    value exactly, and the wheel backend still finds the provenance it names."""
    from lwsbuild.build import cmake as build
    from lwsbuild.series import fixes as series
    from lwsbuild.source import releases
    from lwsbuild.source.fetch import Source
    from lwsbuild.wheel import meta as wheelmeta

    odd = tmp_path / 'x]==]y "q" ${HOME}'
    release = releases.get(DEFAULT_LWS)
    assert release.tree_id is not None
    source = Source(release, release.tree_id, "dir:x", odd / "trees" / release.tree_id, False, True)
    prepared = series.PreparedTree(source, series.select("all"), False, odd / "prepared", "f" * 40, ())
    variant = variants.get("release")
    options = variants.options_for(variant, variants.parse_defines(["LWS_X=a]==]b]=]\\c\"d"]), DEFAULT_LWS)
    spec = build.BuildSpec(prepared, variant, options, variant.c_flags, build.Compiler("/usr/bin/cc", "cc (x) 12"))
    spec_file = build.write_spec(spec, odd / "spec")
    assert wheelmeta.spec_provenance(spec_file).build_key == spec.key
    probe = tmp_path / "probe.cmake"
    probe.write_text(f"include({cmake_bracket(str(spec_file))})\n"
                     "foreach(name LWSBUILD_LWS_SOURCE LWSBUILD_PROVENANCE LWS_X LWS_MAX_SMP)\n"
                     "  message(\"${name}=<${${name}}>\")\nendforeach()\n")
    result = subprocess.run(["cmake", "-P", str(probe)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"LWSBUILD_LWS_SOURCE=<{odd / 'prepared'}>",
                                          f"LWSBUILD_PROVENANCE=<{odd / 'spec' / 'provenance.json'}>",
                                          'LWS_X=<a]==]b]=]\\c"d>', "LWS_MAX_SMP=<8>"]


# --- 2. smoke --timeout ------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e10", "-1", "0", "3601"])
def test_smoke_timeout_is_bounded(value: str, tmp_path: Path) -> None:
    result = run_cli("smoke", f"--timeout={value}", cache=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert "more than 0 and at most 3600 seconds" in line and "(fix: " in line
    assert smoke.main([f"--timeout={value}"]) == 2  # python -m lwsbuild.native.smoke too


def test_smoke_timeout_is_checked_before_a_build(tmp_path: Path) -> None:
    result = run_cli("smoke", "--variant", "release", "--timeout", "nan", *missing_source(tmp_path),
                     cache=tmp_path / "cache")
    assert result.returncode == 2
    assert "--timeout nan" in error_line(result)


def test_smoke_url_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    result = run_cli("smoke", "--url", os.fsdecode(b"ws://127.0.0.1:1/\xff"), "--prefix", str(tmp_path),
                     cache=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    assert "URL ws://127.0.0.1:1/\\xff is not valid UTF-8" in error_line(result)
    before_build = run_cli("smoke", "--url", "http://x/", "--variant", "release", *missing_source(tmp_path),
                           cache=tmp_path / "cache")
    assert before_build.returncode == 2 and "unsupported URL" in error_line(before_build)


def test_smoke_timeout_api_refuses_non_finite() -> None:
    for bad in (math.nan, math.inf, 1e10, 0.0, -1.0):
        with pytest.raises(errors.UsageError):
            smoke.check_timeout(bad)
    assert smoke.check_timeout(10.0) == 10.0


# --- 2. a cache that cannot be written -----------------------------------------------------------

@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make directories unwritable, even for root (immutable); undone afterwards."""
    if os.geteuid() != 0:
        for path in paths:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path in paths:
                path.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a directory read-only")
    done = []
    try:
        for path in paths:
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
                pytest.skip(f"this file system cannot make {path} immutable")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


@pytest.mark.parametrize("command", [["fetch"], ["build"], ["smoke", "--variant", "release"], ["patch"]])
def test_read_only_cache_is_exit_9_with_the_path(command: list[str], tmp_path: Path) -> None:
    root = tmp_path / "cache"
    areas = [root / area for area in cachestate.AREAS]
    for area in areas:
        area.mkdir(parents=True)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "CMakeLists.txt").write_text("project(not-lws)\n")
    with read_only(root, *areas):
        result = run_cli(*command, "--source", f"dir:{tree}", cache=root)
    assert result.returncode == 9, result.stderr
    line = error_line(result)
    assert f"cannot write in the cache directory {root}/trees " in line
    assert "(fix: " in line and "LWSBUILD_CACHE=" in line
    assert cachestate.entries(root) == set() and cachestate.leftovers(root) == set()


def test_unwritable_maps_only_cache_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWSBUILD_CACHE", str(tmp_path))
    inside = cache.unwritable(PermissionError(13, "Permission denied", str(tmp_path / "trees" / ".x")))
    assert inside is not None and inside.exit_code == 9 and str(tmp_path / "trees") in inside.one_line()
    full = cache.unwritable(OSError(28, "No space left on device", str(tmp_path / "builds" / "k")))
    assert full is not None and "free space" in full.one_line()
    assert cache.unwritable(PermissionError(13, "Permission denied", "/etc/shadow")) is None
    assert cache.unwritable(FileNotFoundError(2, "No such file", str(tmp_path / "x"))) is None


# --- 2. every error says how to fix it; a bug is one line too --------------------------------

def error_classes() -> list[type[errors.LwsbuildError]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, errors.LwsbuildError) and cls.__module__ == errors.__name__]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_has_a_fix_hint(cls: type[errors.LwsbuildError]) -> None:
    assert cls.hint.strip(), f"{cls.__name__} has no default hint"
    # ToolMissing names the stage that needed the program (its exit code); any stage will do here.
    extra: dict[str, Any] = {"stage": errors.BUILD} if cls is errors.ToolMissing else {}
    line = cls("something went wrong", **extra).one_line()
    assert line.startswith("something went wrong (fix: ") and line.endswith(")")
    assert cls("x", hint=None, **extra).hint == cls.hint  # None keeps the default


def test_no_raise_takes_the_hint_away() -> None:
    """A raise may pass its own hint, never an empty one (the README promises a fix on every line)."""
    offenders = []
    for path in sorted((REPO / "lwsbuild").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "hint" and isinstance(keyword.value, ast.Constant) and \
                            not str(keyword.value.value or "").strip():
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "").endswith(("Error", "Failure"))
                                                      for b in node.bases):
                for item in node.body:
                    if isinstance(item, ast.Assign) and any(getattr(t, "id", "") == "hint" for t in item.targets) \
                            and isinstance(item.value, ast.Constant) and not str(item.value.value).strip():
                        offenders.append(f"{path.relative_to(REPO)}:{item.lineno}")
    assert offenders == []


def test_a_bug_is_one_line_and_points_at_debug_traceback(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> list[str]:
        raise KeyError("a bug")

    monkeypatch.setattr(variants, "names", broken)
    assert cli.main(["variants"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("lwsbuild: error: unexpected KeyError: 'a bug' (fix: ")
    assert "rerun with --debug-traceback for the traceback" in err
    for argv in (["--debug-traceback", "variants"], ["variants", "--debug-traceback"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "KeyError: 'a bug'" in err
        assert err.splitlines()[-1].startswith("lwsbuild: error: unexpected KeyError")


def test_debug_traceback_shows_an_lwsbuild_error_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["smoke", "--debug-traceback", "--timeout", "nan"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.splitlines()[-1].startswith("lwsbuild: error: --timeout")


@pytest.mark.parametrize("argv", [["smoke", "--timeout", "soon"], ["build", "--bogus"], [], ["frobnicate"],
                                  # nan passes the harness's C range checks (every comparison is false)
                                  ["stress", "--duration", "nan"], ["prove", "--watchdog", "inf"],
                                  ["stress", "--duration", "soon"]])
def test_argument_errors_are_one_line_exit_2(argv: list[str], tmp_path: Path) -> None:
    result = run_cli(*argv, cache=tmp_path)
    assert result.returncode == 2
    assert "(fix: see `lwsbuild" in error_line(result)


# --- 3. patch --json: `path` is the patched tree ----------------------------------------------

def test_patch_json_path_is_the_patched_tree(tmp_path: Path) -> None:
    from lwsbuild.series import fixes as series
    from lwsbuild.source import releases
    from lwsbuild.source.fetch import Source

    release = releases.get(DEFAULT_LWS)
    assert release.tree_id is not None
    source = Source(release, release.tree_id, "dir:x", tmp_path / "trees" / release.tree_id, False, True)
    prepared = series.PreparedTree(source, series.select("all"), False, tmp_path / "prepared" / "k", "f" * 40, ())
    data = prepared.to_json()
    assert data["path"] == str(tmp_path / "prepared" / "k")
    assert data["source_path"] == str(tmp_path / "trees" / release.tree_id)
    assert (data["tree_id"], data["prepared_tree_id"]) == (release.tree_id, "f" * 40)
    assert "prepared_path" not in data
    json.dumps(data)


# --- 2. a broken cache entry (a real build) ------------------------------------------------------

@pytest.mark.build
@pytest.mark.network
def test_broken_cached_prefix_is_rebuilt(cli: Cli, release_build: Json) -> None:
    prefix = Path(release_build["prefix"])
    Path(release_build["library"]).unlink()  # what a disk cleaner or a hand `rm` leaves behind
    result = cli("build", "--variant", "release", "--json")
    assert result.returncode == 0, result.stderr
    assert result.json["prefix"] == str(prefix) and result.json["cached"] is False
    assert Path(result.json["library"]).is_file() and (prefix / "lib" / "libwebsockets.so.19").is_file()
    assert f"the cached build {prefix} changed since it was made (lib/libwebsockets.so.19 missing" in result.stderr
    again = cli("build", "--variant", "release", "--json")
    assert again.returncode == 0 and again.json["cached"] is True and "changed since" not in again.stderr


# --- 4. the smoke client caps what it buffers (the release build) -------------------------------

@pytest.mark.build
@pytest.mark.network
def test_smoke_refuses_an_oversized_frame_at_once(release_prefix: Path) -> None:
    with OversizedFramePeer(limit_s=30) as peer:
        began = time.monotonic()
        result = run_cli("smoke", "--prefix", str(release_prefix), "--url", peer.url, "--timeout", "20")
        took = time.monotonic() - began
    assert peer.announced, (peer.error, result.stderr)
    assert result.returncode == 7, result.stderr
    line = error_line(result)
    assert "over the 16 MiB the smoke client buffers" in line and "(fix: " in line
    assert took < 10, f"took {took:.1f} s: the client kept reading"
    assert peer.sent <= 64 * 1024 * 1024  # it hung up long before 64 MiB (the cap is 16 MiB)
    assert smoke.MAX_MESSAGE_BYTES == 16 * 1024 * 1024 > smoke.LARGE_MESSAGE_SIZE
