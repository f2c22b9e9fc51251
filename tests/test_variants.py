"""Variants and sanitizers are data (lwsbuild/resources/variants.toml): adding one is adding a table.

Fast: no network, no build. A throwaway variant with a sanitizer of its own (UBSan alone) comes in
through LWSBUILD_VARIANTS_FILE; the matrix lists it, its wheel is named for it, its spec carries its
flags and its stress runs get its options, with no code changed.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from helpers import planned
from helpers.checks import error_line
from lwsbuild.build import cmake as build
from lwsbuild.build import provenance, variants
from lwsbuild.cli import matrix
from lwsbuild.source import releases
from lwsbuild.stress import run as stress
from lwsbuild.wheel import meta as wheelmeta

UBSAN = '''
[sanitizer.undefined]
description = "UndefinedBehaviorSanitizer alone"
runtime = "libubsan.so"
options_env = "UBSAN_OPTIONS"
python = true
c_flags = ["-fsanitize=undefined", "-fno-omit-frame-pointer"]
program_flags = ["-fno-sanitize-recover=undefined"]

[sanitizer.undefined.options.UBSAN_OPTIONS]
print_stacktrace = "1"
halt_on_error = "1"

[variant.ubsan]
description = "UBSan alone: a throwaway variant of the tests"
cmake = { CMAKE_BUILD_TYPE = "DEBUG", LWS_WITH_ASAN = "OFF", LWS_WITH_SUL_DEBUGGING = "OFF" }
strip = false
sanitizer = "undefined"
forbidden = { LWS_WITH_ASAN = "ASan has its own variant" }
'''


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(variants.VARIANTS_FILE_ENV, raising=False)


@pytest.fixture
def ubsan_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "more-variants.toml"
    path.write_text(UBSAN)
    monkeypatch.setenv(variants.VARIANTS_FILE_ENV, str(path))
    return path


def _spec(variant: variants.Variant, tmp_path: Path) -> build.BuildSpec:
    return planned.spec(variant.name, where=tmp_path)


def test_pyproject_names_no_variant(shipped: None) -> None:
    """Adding a variant touches no pyproject.toml: pip selects it with -C lwsbuild.variant=NAME through
    the project's backend (lwsbuild/wheel/backend.py), which plans the build before scikit-build-core names
    the wheel, so scikit-build-core's table has no per-variant override to keep in step."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["scikit-build"]
    assert "overrides" not in tool
    named = [name for name in variants.names() if name != variants.DEFAULT and re.search(rf"\b{name}\b", str(tool))]
    assert named == [], f"pyproject.toml's [tool.scikit-build] names the variants {named}"


def test_every_variant_names_a_described_sanitizer(shipped: None) -> None:
    assert variants.DEFAULT in variants.names()
    for name in variants.names():
        variant = variants.get(name)
        sanitizer = variant.sanitizer
        if sanitizer is None:
            continue
        assert variant.c_flags[: len(sanitizer.c_flags)] == sanitizer.c_flags
        assert sanitizer.runtime.startswith("lib") and ".so" in sanitizer.runtime
        assert sanitizer.options_env in sanitizer.stress_env({})
    assert variants.get("asan").sanitizer == variants.sanitizer("address")
    assert variants.sanitizer("address").python and not variants.sanitizer("thread").python
    assert variants.sanitizer("thread").no_aslr


def test_a_variant_added_by_a_table_is_planned_named_and_listed(ubsan_file: Path, tmp_path: Path) -> None:
    assert variants.names()[-1] == "ubsan" and "asan" in variants.names()
    variant = variants.get("ubsan")
    assert variant.sanitizer is not None and variant.sanitizer.runtime == "libubsan.so"
    assert variant.c_flags == ("-fsanitize=undefined", "-fno-omit-frame-pointer")

    # The matrix has a cell for it: stress (a sanitizer), smoke (loadable into Python).
    (cell,) = matrix.build_matrix(None, ["ubsan"]).to_json()["include"]
    assert (cell["variant"], cell["sanitizer"], cell["stress"], cell["smoke"]) == ("ubsan", "undefined", True, True)

    # Its wheel's name and Summary, from a planned build and from pip's metadata hook alike.
    spec = _spec(variant, tmp_path)
    identity = wheelmeta.Identity.of_provenance(spec.provenance())
    assert identity.local == f"lws{releases.default_version()}.ubsan"
    # pip's metadata hook reads the spec the backend wrote for -C lwsbuild.variant=ubsan.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(wheelmeta.SPEC_ENV, str(build.write_spec(spec, tmp_path / "spec")))
        assert wheelmeta.dynamic_metadata("version") == identity.version
    assert "(ubsan)" in identity.summary
    policy = provenance.repair_policy(variant.sanitizer)
    assert not policy.repair and "libubsan.so" in policy.reason

    # What CMake gets (flags of every target, and of our programs), and what a stress run sets.
    text = spec.cmake_spec(tmp_path / "provenance.json")
    assert "-fsanitize=undefined -fno-omit-frame-pointer" in text
    assert "set(LWSBUILD_PROGRAM_SANITIZER_FLAGS [=[-fno-sanitize-recover=undefined]=])" in text
    assert stress.sanitizer_env(variant.sanitizer, {"UBSAN_OPTIONS": "x=1"}) == {
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:x=1"}
    # The build key follows the table: a changed flag is another build.
    changed = ubsan_file.read_text().replace('"-fno-sanitize-recover=undefined"', '"-fsanitize-trap=undefined"')
    ubsan_file.write_text(changed)
    other = tmp_path / "other.toml"
    other.write_text(changed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variants.VARIANTS_FILE_ENV, str(other))
        assert _spec(variants.get("ubsan"), tmp_path).key != spec.key


def test_the_command_line_sees_the_added_variant(ubsan_file: Path) -> None:
    env = {variants.VARIANTS_FILE_ENV: str(ubsan_file)}
    listed = run_cli("variants", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [v["name"] for v in listed.json["variants"]] == ["release", "asan", "tsan", "ubsan"]
    cells = run_cli("matrix", "--json", "--variants", "ubsan,release", env=env)
    assert cells.returncode == 0, cells.stderr
    assert [c["variant"] for c in json.loads(cells.stdout)["include"]] == ["ubsan", "release"]


@pytest.mark.parametrize("table, needle", [
    ('[variant.x]\ndescription = "x"\ncmake = {}\nstrip = false\n',
     "LWSBUILD_VARIANTS_FILE={path}: variant.x lacks the key 'sanitizer'"),
    ('[variant.x]\ndescription = "x"\ncmake = {}\nstrip = false\nsanitizer = "memory"\n',
     "names sanitizer 'memory', which no [sanitizer.NAME] table defines"),
    ('[variant.x]\ndescription = "x"\ncmake = {}\nstrip = "no"\nsanitizer = ""\n', "variant.x.strip is 'no', expected true or false"),
    ('[variant.x]\ndescription = "x"\ncmake = {}\nstrip = false\nsanitizer = ""\ncflags = []\n',
     ("variant.x has an unknown key 'cflags' (known: c_flags, cmake, description, disk_mib, forbidden, "
      "sanitizer, strip)")),
    ('[variant.X-1]\ndescription = "x"\ncmake = {}\nstrip = false\nsanitizer = ""\n', "is not lower-case letters"),
    (('[sanitizer.m]\ndescription = "m"\nruntime = "libmsan.so"\noptions_env = "MSAN_OPTIONS"\npython = false\n'
     'c_flags = []\noptions = {}\n'), "sets no [options.MSAN_OPTIONS]"),
    ("[profile.x]\n", "the top level has an unknown key 'profile' (known: sanitizer, variant)"),
    ('[variant.x]\ndescription = "x"\ncmake = { LWS_X = 1 }\nstrip = false\nsanitizer = ""\n',
     "variant.x.cmake.LWS_X is 1, expected a string"),
    ("[variant.x\n", "is not valid TOML"),
])
def test_a_bad_variants_file_is_one_line_naming_the_table(tmp_path: Path, table: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(table)
    result = run_cli("variants", env={variants.VARIANTS_FILE_ENV: str(path)})
    assert result.returncode == 2
    assert needle.format(path=path) in error_line(result)


def test_a_missing_variants_file_is_named(tmp_path: Path) -> None:
    result = run_cli("build", "--variant", "asan", env={variants.VARIANTS_FILE_ENV: str(tmp_path / "nope.toml")},
                     cache=tmp_path)
    assert result.returncode == 2
    assert f"{variants.VARIANTS_FILE_ENV}={tmp_path / 'nope.toml'}: cannot read it" in error_line(result)
