"""Build options a release line needs (variants.toml [[line]]) and the tools in use ([[tool]]):
merged into every variant's options, under the user's -D, recorded apart from -D. Fast."""

from __future__ import annotations

import pytest

from conftest import DEFAULT_LWS
from helpers import planned
from lwsbuild.build import variants
from lwsbuild.build.cmake import BuildSpec, Compiler


@pytest.fixture(autouse=True)
def cmake_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(variants, "tool_version", lambda tool: "3.25.1")


@pytest.mark.parametrize("version, wanted", [
    ("4.3.5", {"DISABLE_WERROR": "ON"}),
    ("4.3.0", {"DISABLE_WERROR": "ON"}),
    ("4.5.8", {"DISABLE_WERROR": "ON"}),
    ("5.0.0", {"DISABLE_WERROR": "ON", "LWS_WITH_HTTP3": "OFF"}),
    ("4.1.6", {"DISABLE_WERROR": "ON"}),  # the 4.1 and 4.2 lines need it too (OpenSSL 3 deprecations)
    ("4.2.2", {"DISABLE_WERROR": "ON"}),
    ("4.0.0", {}),  # no line table covers it
])
def test_line_options_per_release(version: str, wanted: dict[str, str]) -> None:
    assert variants.merged_line_options(version) == wanted
    for name in variants.names():
        options = variants.options_for(variants.get(name), {}, version)
        assert {k: options[k] for k in wanted} == wanted
        assert options["LWS_MAX_SMP"] == "8"  # the variant's own options stay


def test_cmake_4_adds_the_policy_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(variants, "tool_version", lambda tool: "4.1.2" if tool == "cmake" else "")
    entries = variants.line_options(DEFAULT_LWS)
    assert variants.merged_line_options(DEFAULT_LWS)["CMAKE_POLICY_VERSION_MINIMUM"] == "3.5"
    assert any(e.applies_to == "cmake >= 4.0 (found 4.1.2)" for e in entries)
    monkeypatch.setattr(variants, "tool_version", lambda tool: "")  # no cmake: the build step says so
    assert "CMAKE_POLICY_VERSION_MINIMUM" not in variants.merged_line_options(DEFAULT_LWS)


def test_the_users_define_wins_and_is_the_only_extra() -> None:
    variant = variants.get("release")
    options = variants.options_for(variant, {"LWS_WITH_HTTP3": "ON"}, "5.0.0")
    assert options["LWS_WITH_HTTP3"] == "ON" and options["DISABLE_WERROR"] == "ON"
    prepared = planned.spec(version="5.0.0").prepared
    spec = BuildSpec(prepared, variant, options, (), Compiler("/usr/bin/cc", "cc 12"), variants.line_options("5.0.0"))
    assert spec.extra_options == {"LWS_WITH_HTTP3": "ON"}
    plain = BuildSpec(prepared, variant, variants.options_for(variant, {}, "5.0.0"), (), Compiler("/usr/bin/cc", "cc 12"),
                      variants.line_options("5.0.0"))
    assert plain.extra_options == {}  # line options never rename a wheel (.d<hash>)
    assert [e.to_json()["applies_to"] for e in plain.line_options] == ["4.3.0 - 5.0.0", "5.0.0"]
    assert all(e.why for e in plain.line_options)
