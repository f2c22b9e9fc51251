"""`lwsbuild build`: one cached build per key; a changed -D rebuilds, a repeat configures nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

# Every test here builds (the session's builds, whose source comes from Debian's archive).
pytestmark = [pytest.mark.build, pytest.mark.network]


def _configure_state(build: dict) -> tuple[int, bytes]:
    """When CMake last wrote its cache, and everything the build logged (every configure is logged)."""
    build_dir = Path(build["build_dir"])
    return (build_dir / "CMakeCache.txt").stat().st_mtime_ns, (build_dir.parent / "build.log").read_bytes()


def test_a_repeat_build_is_served_from_the_cache_without_configuring(cli, release_build: dict) -> None:
    before = _configure_state(release_build)
    result = cli("build", "--json")
    assert result.returncode == 0, result.stderr
    again = result.json
    assert again["cached"] is True
    assert (again["build_key"], again["prefix"]) == (release_build["build_key"], release_build["prefix"])
    assert _configure_state(again) == before


def test_a_changed_define_rebuilds_into_its_own_entry(cli, release_build: dict) -> None:
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
        assert provenance["variant"] == variant and provenance["lws"]["version"] == "4.3.5"
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
