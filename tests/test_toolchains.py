"""Newer toolchains: the newest CMake from PyPI (>= 4) builds the default pin and the build passes the
smoke; lws's own -Werror stays off (variants.toml [[line]] DISABLE_WERROR), so a newer compiler's new
warnings cannot fail a build.

CMake 4 refuses lws's `cmake_minimum_required(VERSION 2.8.12)` unless CMAKE_POLICY_VERSION_MINIMUM
is set (variants.toml [[tool]]): checked by hand with cmake 4.4.5 from PyPI on the 4.3.5 tree,
2026-12-01 ("Compatibility with CMake < 3.5 has been removed from CMake"); with the option the
build below passes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEFAULT_LWS, Cli, run_cli
from lwsbuild.build import variants


def _lws_compile_flags(build_dir: Path) -> dict[str, list[str]]:
    """build.ninja's FLAGS per object, for lws's library objects and for ours (harness, probe)."""
    text = (build_dir / "build.ninja").read_text()
    flags: dict[str, list[str]] = {}
    for match in re.finditer(r"^build (\S+\.c\.o): C_COMPILER__(\S+)_[A-Za-z]+ .*\n(?:  [^\n]*\n)*?  FLAGS = ([^\n]*)",
                             text, re.MULTILINE):
        flags.setdefault(match.group(2), []).append(match.group(3))
    return flags


@pytest.mark.build
def test_lws_is_compiled_without_werror(release_build: dict[str, object]) -> None:
    build_dir = Path(str(release_build["build_dir"]))
    if not (build_dir / "build.ninja").is_file():
        pytest.skip("the release build was not made with Ninja (the check reads build.ninja)")
    assert re.search(r"^DISABLE_WERROR:[A-Z]+=ON$", (build_dir / "CMakeCache.txt").read_text(), re.MULTILINE)
    flags = _lws_compile_flags(build_dir)
    assert len(flags.get("websockets_shared", [])) > 50, sorted(flags)  # every lws source of the library
    assert not [f for f in flags["websockets_shared"] if "-Werror" in f.split()]
    # Nor are our own programs: a newer compiler's new warning must not stop a user's build either.
    assert not [f for f in flags["lws-stress"] + flags["lws-cve-server"] if "-Werror" in f.split()]


@pytest.mark.build
@pytest.mark.parametrize("target", ["lws-stress", "lws-cve-server"])
def test_our_c_programs_are_warning_free_under_werror(release_build: dict[str, object], target: str) -> None:
    """The harness and the CVE server compile without a warning: recompiled here with their own flags,
    include paths and -Werror (the build itself reports warnings but never fails on one)."""
    build_dir = Path(str(release_build["build_dir"]))
    if not (build_dir / "build.ninja").is_file():
        pytest.skip("the release build was not made with Ninja (the check reads build.ninja)")
    text = (build_dir / "build.ninja").read_text()
    rule = re.search(rf"^build \S+\.c\.o: C_COMPILER__{re.escape(target)}_[A-Za-z]+ (\S+)[^\n]*\n((?:  [^\n]*\n)+)",
                     text, re.MULTILINE)
    assert rule, f"no compile rule for {target} in build.ninja"
    source = rule.group(1).replace("$:", ":")
    variables = dict(line.strip().split(" = ", 1) for line in rule.group(2).splitlines() if " = " in line)
    flags = [*shlex.split(variables.get("DEFINES", "")), *shlex.split(variables.get("INCLUDES", "")),
             *shlex.split(variables.get("FLAGS", ""))]
    assert {"-Wall", "-Wextra", "-Wconversion"} <= set(flags), flags
    compiled = subprocess.run([os.environ.get("CC", "cc"), *flags, "-Werror", "-fsyntax-only", source],
                              cwd=build_dir, check=False, capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    assert "warning" not in compiled.stderr, compiled.stderr[-3000:]


@pytest.fixture(scope="module")
def newest_cmake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newest cmake from PyPI, in a venv of its own: its bin directory."""
    venv = tmp_path_factory.mktemp("cmake-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "cmake>=4"],
                             check=False, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    return venv / "bin"


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_the_newest_cmake_from_pypi_builds_lws_and_the_build_passes_the_smoke(cli: Cli, newest_cmake: Path) -> None:
    version_line = subprocess.run([str(newest_cmake / "cmake"), "--version"], check=True, capture_output=True,
                                  text=True, timeout=60).stdout.splitlines()[0]
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", version_line)
    assert found and int(found.group(1)) >= 4, version_line
    path = f"{newest_cmake}{os.pathsep}{os.environ.get('PATH', '')}"  # its cmake first; lwsbuild runs as before
    result = cli("build", "--json", env={"PATH": path})
    assert result.returncode == 0, result.stderr
    prefix, build_dir = Path(result.json["prefix"]), Path(result.json["build_dir"])

    provenance = json.loads((prefix / "share" / "lwsbuild" / "provenance.json").read_text())
    (tool,) = [e for e in provenance["line_options"] if e["applies_to"].startswith("cmake >=")]
    assert tool["cmake"] == {"CMAKE_POLICY_VERSION_MINIMUM": "3.5"}
    assert provenance["cmake_options"]["CMAKE_POLICY_VERSION_MINIMUM"] == "3.5"
    if not result.json["cached"]:  # made now: by that cmake (a reused test cache may hold an older 4.x's)
        assert tool["applies_to"] == f"cmake >= 4.0 (found {found.group(0)})"
        assert provenance["tools"] == {"cmake": found.group(0)}  # recorded, and part of the key
        assert f"CMAKE_COMMAND:INTERNAL={newest_cmake.parent}" in (build_dir / "CMakeCache.txt").read_text()
    assert re.search(r"^CMAKE_CACHE_MAJOR_VERSION:INTERNAL=([4-9]|\d\d)$", (build_dir / "CMakeCache.txt").read_text(), re.MULTILINE)
    assert variants.merged_line_options(DEFAULT_LWS)["DISABLE_WERROR"] == "ON"

    smoke = run_cli("smoke", "--prefix", str(prefix), "--json", timeout=120)
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.json["ok"] is True and [m["ok"] for m in smoke.json["messages"]] == [True, True, True]
