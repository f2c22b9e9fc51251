"""pip, `python -m build` and cibuildwheel: `-C lwsbuild.*` settings build what `lwsbuild wheel` builds.

The project's backend (lwsbuild/wheel/backend.py) turns config-settings into `lwsbuild build` options
(lwsbuild/wheel/configsettings.py); [tool.cibuildwheel] in pyproject.toml repairs and tests the wheel the
way `lwsbuild wheel` and the README do. cibuildwheel itself cannot run here (no container engine):
its own schema and build selector check the table, and its repair and test commands are run for
real on wheels pip built.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from conftest import DEFAULT_LWS, Cli, Venv
from helpers import planned
from lwsbuild.errors import BadSettingError
from lwsbuild.wheel.configsettings import split

REPO = Path(__file__).resolve().parent.parent
LWS = DEFAULT_LWS
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CIBW = PYPROJECT["tool"]["cibuildwheel"]


def _pip_wheel(out: Path, *settings: str, cache: Path, timeout: float = 1200,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`pip wheel <checkout> -C ...` as a user runs it (with `env` added to this environment). No build
    isolation: it would ask a registry for the build requirements, which this environment already has."""
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **(env or {})}
    command = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(out),
               *(arg for setting in settings for arg in ("-C", setting))]
    return subprocess.run(command, check=False, capture_output=True, text=True, cwd=out.parent, timeout=timeout,
                          env={**env, "LWSBUILD_CACHE": str(cache)})


def _members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _cibw_command(key: str, **placeholders: Path) -> str:
    return str(CIBW[key]).format(package=REPO, project=REPO, **placeholders)


# --------------------------------------------------------------------------- #
# config-settings → lwsbuild options (no build)


def test_settings_become_the_cli_options_of_the_same_build() -> None:
    chosen = split({"lwsbuild.version": LWS, "lwsbuild.series": "seed", "lwsbuild.variant": "asan",
                    "lwsbuild.unfixed": "true", "lwsbuild.define.LWS_WITH_HTTP2": "OFF",
                    "lwsbuild.source": ["debian", "dir:/src"], "lwsbuild.cc": "gcc",
                    "lwsbuild.extra-ldflags": "-Wl,-z,now", "logging.level": "INFO"}, {})
    assert chosen.build.argv == (f"--lws-version={LWS}", "--series=seed", "--variant=asan", "--unfixed",
                                 "-DLWS_WITH_HTTP2=OFF", "--source=debian", "--source=dir:/src", "--cc=gcc",
                                 "--extra-ldflags=-Wl,-z,now")
    assert chosen.build.spec is None
    assert chosen.skbuild == {"logging.level": "INFO"}  # scikit-build-core's own verbosity, passed on
    # scikit-build-core's spelling of an lws option is the same option.
    assert split({"cmake.define.LWS_WITH_HTTP2": "OFF"}, {}).build.argv == ("-DLWS_WITH_HTTP2=OFF",)
    assert split({"lwsbuild.unfixed": "false"}, {}).build.argv == ()
    # A spec written by lwsbuild names the whole build.
    assert split({}, {"LWSBUILD_SPEC": "/x/lwsbuild-spec.cmake"}).build.spec == "/x/lwsbuild-spec.cmake"


@pytest.mark.parametrize(("settings", "needle"), [
    ({"lwsbuild.verison": LWS}, "unknown config-setting lwsbuild.verison (did you mean lwsbuild.version?)"),
    ({"lwsbuild.define.WITH_HTTP2": "OFF"}, "'WITH_HTTP2' is not a libwebsockets option"),
    ({"lwsbuild.unfixed": "maybe"}, "lwsbuild.unfixed='maybe' is not a boolean"),
    ({"lwsbuild.variant": ["asan", "tsan"]}, "lwsbuild.variant was given 2 times"),
    ({"lwsbuild.version": " "}, "config-setting lwsbuild.version is empty"),
    ({"cmake.define.LWSBUILD_VARIANT": "asan"}, "LWSBUILD_VARIANT is lwsbuild's own CMake variable"),
    ({"cmake.define.CMAKE_C_COMPILER": "clang"}, "pass -C lwsbuild.cc=/path/to/cc"),
    ({"lwsbuild.spec": "/x/spec.cmake", "lwsbuild.variant": "asan"}, "names a whole build already"),
    # Every route around the backend to scikit-build-core or CMake (issue 18):
    ({"cmake.define.CMAKE_C_FLAGS": "-O0"}, "would configure scikit-build-core or CMake behind lwsbuild"),
    ({"cmake.args": "-DLWS_WITH_SSL=OFF"}, "config-setting cmake.args would configure"),
    ({"cmake.args": "--toolchain=/tmp/t.cmake"}, "config-setting cmake.args would configure"),
    ({"cmake.toolchain-file": "/tmp/t.cmake"}, "config-setting cmake.toolchain-file would configure"),
    ({"skbuild.cmake.define.LWS_WITH_HTTP2": "OFF"}, "config-setting skbuild.cmake.define.LWS_WITH_HTTP2 would"),
    ({"skbuild.cmake.args": "-DLWS_WITH_CBOR=ON"}, "config-setting skbuild.cmake.args would configure"),
    ({"build-dir": "build/{wheel_tag}"}, "config-setting build-dir would configure"),
    ({"install.strip": "true"}, "config-setting install.strip would configure"),
    ({"cmake.build-type": "Debug"}, "config-setting cmake.build-type would configure"),
    ({"wheel.py-api": "cp311"}, "config-setting wheel.py-api would configure"),
])
def test_a_setting_lwsbuild_cannot_honour_is_refused_in_one_line(settings: dict[str, str | list[str]],
                                                                 needle: str) -> None:
    with pytest.raises(BadSettingError) as refused:  # BadConfigSetting, or a setting's own check
        split(settings, {})
    line = refused.value.one_line()
    assert needle in line and "(fix: " in line and "\n" not in line


@pytest.mark.parametrize(("setting", "needle"), [
    ("lwsbuild.verison=4.3.5", "unknown config-setting lwsbuild.verison (did you mean lwsbuild.version?)"),
    ("cmake.define.LWSBUILD_VARIANT=asan", "-C lwsbuild.variant=NAME"),
    ("lwsbuild.variant=nope", "unknown variant 'nope'"),  # a value: checked by the planning code itself
    # Issue 18: the routes around the backend, each refused before anything is fetched.
    ("skbuild.cmake.define.CMAKE_C_FLAGS_RELEASE=-O0", "would configure scikit-build-core or CMake"),
    ("skbuild.cmake.args=-DLWS_WITH_CBOR=ON", "would configure scikit-build-core or CMake"),
    ("cmake.args=--toolchain=/nonexistent/toolchain.cmake", "would configure scikit-build-core or CMake"),
    ("lwsbuild.define.LWS_WITH_SUL_DEBUGGING=o\ufb00", "is not ASCII"),
], ids=["mistyped-key", "lwsbuild-variable", "unknown-variant", "skbuild-define", "skbuild-args", "cmake-toolchain",
        "non-ascii-define"])
def test_pip_refuses_a_wrong_setting_before_fetching_anything(tmp_path: Path, setting: str, needle: str) -> None:
    cache = tmp_path / "cache"
    result = _pip_wheel(tmp_path / "out", setting, cache=cache, timeout=300)
    _assert_refused(result, needle, tmp_path / "out", cache)


@pytest.mark.parametrize(("variable", "value"), [
    ("CMAKE_ARGS", "-DLWS_WITH_HTTP2=OFF"),
    ("SKBUILD_CMAKE_DEFINE", "CMAKE_C_FLAGS_RELEASE=-O0"),
    ("CMAKE_TOOLCHAIN_FILE", "/nonexistent/toolchain.cmake"),
    ("SKBUILD_BUILD_DIR", "/tmp/elsewhere"),
])
def test_pip_refuses_an_environment_that_would_configure_cmake(tmp_path: Path, variable: str, value: str) -> None:
    cache = tmp_path / "cache"
    result = _pip_wheel(tmp_path / "out", cache=cache, timeout=300, env={variable: value})
    _assert_refused(result, f"the environment sets {variable}", tmp_path / "out", cache)


def _assert_refused(result: subprocess.CompletedProcess[str], needle: str, out: Path, cache: Path) -> None:
    assert result.returncode != 0
    errors = [line.strip() for line in (result.stdout + result.stderr).splitlines() if "lwsbuild: error:" in line]
    assert len(errors) == 1 and needle in errors[0], result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(out.glob("*.whl"))
    assert not (cache / "trees").exists() and not (cache / "downloads").exists()


def test_the_sdist_carries_the_backend_and_python_m_build_checks_settings_too(tmp_path: Path) -> None:
    # `python -m build` makes the sdist first and builds the wheel from it, unpacked elsewhere: the
    # backend must come with it. A wrong setting stops it before the sdist, as pip's before the wheel.
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "LWSBUILD_CACHE": str(tmp_path / "cache")}
    build = [sys.executable, "-m", "build", "--no-isolation", str(REPO)]
    wrong = subprocess.run([*build, "-C", "lwsbuild.verison=4.3.5", "-o", str(tmp_path / "wrong")], check=False,
                           capture_output=True, text=True, timeout=300, env=env)
    _assert_refused(wrong, "unknown config-setting lwsbuild.verison", tmp_path / "wrong", tmp_path / "cache")
    assert not list((tmp_path / "wrong").glob("*.tar.gz"))

    made = subprocess.run([*build, "--sdist", "-o", str(tmp_path / "sdist")], check=False, capture_output=True,
                          text=True, timeout=300, env=env)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    (sdist,) = (tmp_path / "sdist").glob("lwsbuild-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (top,) = (tmp_path / "unpacked").iterdir()
    unpacked = tomllib.loads((top / "pyproject.toml").read_text())["build-system"]
    assert (unpacked["build-backend"], unpacked["backend-path"]) == ("lwsbuild.wheel.backend", ["."])
    assert (top / "lwsbuild" / "wheel" / "backend.py").is_file() and (top / "lwsbuild" / "wheel" / "configsettings.py").is_file()
    # The unpacked sdist's backend answers (and refuses) by itself.
    out = tmp_path / "from-sdist"
    command = [sys.executable, "-m", "pip", "wheel", str(top), "--no-deps", "--no-build-isolation", "-w", str(out),
               "-C", "lwsbuild.unfixed=perhaps"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=env)
    _assert_refused(result, "lwsbuild.unfixed='perhaps' is not a boolean", out, tmp_path / "cache")


# --------------------------------------------------------------------------- #
# [tool.cibuildwheel] (no build)


def test_the_cibuildwheel_table_is_valid_by_cibuildwheels_own_schema() -> None:
    schema = json.loads(resources.files("cibuildwheel").joinpath("resources/cibuildwheel.schema.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [error.message for error in validator.iter_errors(CIBW)] == []
    # The check can fail: a misspelt key is refused.
    assert list(validator.iter_errors({**CIBW, "test-comand": CIBW["test-command"]}))


def test_cibuildwheel_selects_cpython_311_and_later_manylinux() -> None:
    result = subprocess.run([sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", "linux"],
                            check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "CIBW_ARCHS": "x86_64"})
    assert result.returncode == 0, result.stderr
    identifiers = result.stdout.split()
    assert "cp311-manylinux_x86_64" in identifiers
    for identifier in identifiers:
        match = re.fullmatch(r"cp3(\d+)t?-manylinux_x86_64", identifier)
        assert match and int(match.group(1)) >= 11, identifier


def test_cibuildwheel_test_command_is_the_smoke_entry_point() -> None:
    program, *arguments = shlex.split(CIBW["test-command"])
    assert (program, arguments) == ("lwsbuild", ["smoke"])
    assert PYPROJECT["project"]["scripts"][program] == "lwsbuild.cli.main:main"
    # The subcommand exists (--help of an unknown one would fail with exit 2).
    result = subprocess.run([sys.executable, "-m", "lwsbuild", *arguments, "--help"], check=False,
                            capture_output=True, text=True, cwd=REPO, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0 and "round trip" in result.stdout, result.stderr


def test_the_repair_command_leaves_a_sanitizer_wheel_as_it_is(tmp_path: Path) -> None:
    from lwsbuild.wheel.meta import WHEEL_PROVENANCE

    wheel = tmp_path / "lwsbuild-0.1.0+lws4.3.5.asan-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:  # the provenance the real writer gives an asan build
        archive.writestr(WHEEL_PROVENANCE, json.dumps(planned.provenance("asan").to_json()))
    command = _cibw_command("repair-wheel-command", wheel=wheel, dest_dir=tmp_path / "repaired")
    result = subprocess.run(["sh", "-c", command], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "repaired" / wheel.name).read_bytes() == wheel.read_bytes()
    assert "not repaired: a sanitizer build (address)" in result.stderr


# --------------------------------------------------------------------------- #
# integration: real builds


@pytest.mark.build
@pytest.mark.network
@pytest.mark.parametrize(("options", "settings"), [
    (("--lws-version", LWS, "--series", "seed", "--variant", "asan", "-D", "LWS_WITH_HTTP2=OFF"),
     (f"lwsbuild.version={LWS}", "lwsbuild.series=seed", "lwsbuild.variant=asan",
      "lwsbuild.define.LWS_WITH_HTTP2=OFF")),
    (("--variant", "asan", "--unfixed"), ("lwsbuild.variant=asan", "lwsbuild.unfixed=true")),
], ids=["seed-asan-http2off", "unfixed-asan"])
def test_pip_wheel_with_settings_builds_what_lwsbuild_wheel_builds(cli: Cli, session_cache: Path, tmp_path: Path,
                                                                   options: tuple[str, ...],
                                                                   settings: tuple[str, ...]) -> None:
    made = cli("wheel", "--json", *options, "-o", str(tmp_path / "cli"))
    assert made.returncode == 0, made.stderr
    ours = Path(made.json["wheel"])

    result = _pip_wheel(tmp_path / "pip", *settings, cache=session_cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (theirs,) = (tmp_path / "pip").glob("*.whl")
    assert theirs.name == ours.name
    pip_members, cli_members = _members(theirs), _members(ours)
    provenance = "lwsbuild/_native/share/lwsbuild/provenance.json"
    # Same checkout, cache, compiler and CMake: nothing legitimately differs, not even the sanitizer
    # binaries' absolute source paths (the prepared tree is the same cache entry).
    assert json.loads(pip_members[provenance]) == json.loads(cli_members[provenance])
    assert sorted(pip_members) == sorted(cli_members)
    assert [name for name in cli_members if pip_members[name] != cli_members[name]] == []

    # cibuildwheel's repair step on this sanitizer wheel: left exactly as pip built it.
    command = _cibw_command("repair-wheel-command", wheel=theirs, dest_dir=tmp_path / "repaired")
    repaired = subprocess.run(["sh", "-c", command], check=False, capture_output=True, text=True, timeout=300)
    assert repaired.returncode == 0, repaired.stderr
    assert (tmp_path / "repaired" / theirs.name).read_bytes() == theirs.read_bytes()


def test_cibuildwheel_test_command_passes_on_the_release_wheel(release_venv: Venv) -> None:  # conftest.Venv
    # What cibuildwheel's test step runs, in a venv holding only the wheel (and its dependencies).
    result = release_venv.run(*shlex.split(CIBW["test-command"]), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("lws smoke: OK"), result.stdout
