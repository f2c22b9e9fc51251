"""A C program compiles, links and runs against the installed wheel's library: via `lwsbuild config`,
pkg-config and CMake's find_package(libwebsockets), with no LD_LIBRARY_PATH."""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_LWS, REPO, Cli, Venv, run_cli
from helpers import planned
from helpers.checks import error_line

LWS = DEFAULT_LWS

CONSUMER_C = r"""
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	struct lws_context_creation_info info;
	struct lws_context *context;

	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	lws_set_log_level(LLL_ERR, NULL);
	context = lws_create_context(&info);
	if (!context)
		return 1;
	printf("lws %s\n", lws_get_library_version());
	lws_context_destroy(context);
	return 0;
}
"""

CONSUMER_CMAKE = """
cmake_minimum_required(VERSION 3.20)
project(consumer LANGUAGES C)
find_package(libwebsockets CONFIG REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE websockets_shared)
"""


@pytest.fixture
def consumer(tmp_path: Path) -> Path:
    (tmp_path / "consumer.c").write_text(CONSUMER_C)
    (tmp_path / "CMakeLists.txt").write_text(CONSUMER_CMAKE)
    return tmp_path


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout.strip()


def _config(venv: Venv, *args: str) -> str:
    return _ok(venv.run(venv.root / "bin" / "lwsbuild", "config", *args))


def _runs_without_library_path(venv: Venv, program: Path, **env: str) -> str:
    """Venv.run drops LD_LIBRARY_PATH and LD_PRELOAD: the program finds the library by itself."""
    output = _ok(venv.run(program, cwd=None, timeout=300, **env))
    assert output.startswith(f"lws {LWS}"), output
    return output


def _cc(venv: Venv, consumer: Path, flags: list[str]) -> Path:
    program = consumer / "consumer"
    _ok(venv.run("cc", "-Wall", "-Wextra", "-o", program, consumer / "consumer.c", *flags, cwd=consumer))
    return program


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_cc_with_lwsbuild_config(release_venv: Venv, consumer: Path) -> None:
    flags = shlex.split(_config(release_venv, "--cflags", "--libs"))
    assert any(f.startswith("-Wl,-rpath,") for f in flags)
    _runs_without_library_path(release_venv, _cc(release_venv, consumer, flags))


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="pkg-config is not installed")
def test_cc_with_pkg_config(release_venv: Venv, consumer: Path) -> None:
    path = _config(release_venv, "--pkg-config-path")
    assert Path(path).is_relative_to(release_venv.root)
    flags = shlex.split(_ok(release_venv.run("pkg-config", "--cflags", "--libs", "libwebsockets", PKG_CONFIG_PATH=path)))
    _runs_without_library_path(release_venv, _cc(release_venv, consumer, flags))


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_cmake_find_package(release_venv: Venv, consumer: Path) -> None:
    prefix = _config(release_venv, "--cmake-prefix-path")
    build = consumer / "build"
    _ok(release_venv.run("cmake", "-S", consumer, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}"))
    _ok(release_venv.run("cmake", "--build", build))
    _runs_without_library_path(release_venv, build / "consumer")


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_cmake_root_entry_point_names_the_wheels_prefix(release_venv: Venv) -> None:
    # What scikit-build-core turns into libwebsockets_ROOT for projects that depend on lwsbuild.
    code = ("import importlib.metadata as m, importlib.resources as r; "
            "(ep,) = m.entry_points(group='cmake.root', name='libwebsockets'); "
            "print(next(iter(getattr(r.files(ep.load()), '_paths', [r.files(ep.load())]))))")
    root = Path(_ok(release_venv.run(release_venv.python, "-c", code)))
    assert root.is_relative_to(release_venv.root)
    assert (root / "lib" / "cmake" / "libwebsockets" / "libwebsockets-config.cmake").is_file()


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_asan_consumer_gets_the_sanitizer_flags(asan_venv: Venv, consumer: Path) -> None:
    # A program linking an ASan library must carry the ASan runtime itself: the flags say so.
    flags = shlex.split(_config(asan_venv, "--cflags", "--libs"))
    assert "-fsanitize=address" in flags
    output = _runs_without_library_path(asan_venv, _cc(asan_venv, consumer, flags), ASAN_OPTIONS="detect_leaks=0")
    assert "asan" in output


@pytest.mark.build
@pytest.mark.network
def test_config_of_a_build(cli: Cli, release_prefix: Path) -> None:
    result = cli("config", "--variant", "release", "--json")
    assert result.returncode == 0, result.stderr
    assert Path(result.json["prefix"]) == release_prefix
    assert result.json["pkg_config_path"] == str(release_prefix / "lib" / "pkgconfig")


def test_config_outside_an_installed_wheel_says_what_to_pass(tmp_path: Path) -> None:
    result = run_cli("config", "--cflags", cache=tmp_path)
    assert result.returncode == 2
    assert "--variant" in error_line(result)


def test_config_refuses_a_prefix_and_build_options_together(tmp_path: Path) -> None:
    result = run_cli("config", "--prefix", str(tmp_path), "--variant", "asan", cache=tmp_path)
    assert result.returncode == 2
    error_line(result)


def test_config_reads_a_prefix(tmp_path: Path) -> None:
    # A prefix is recognised by its library and provenance; the flags follow from its place.
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libwebsockets.so.19").write_bytes(b"")
    (tmp_path / "share" / "lwsbuild").mkdir(parents=True)
    provenance = dataclasses.replace(planned.provenance("tsan", version=LWS), c_flags=("-fsanitize=thread",))
    (tmp_path / "share" / "lwsbuild" / "provenance.json").write_text(json.dumps(provenance.to_json()))
    result = run_cli("config", "--prefix", str(tmp_path), "--json", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.json["libs"] == ["-fsanitize=thread", f"-L{tmp_path}/lib", f"-Wl,-rpath,{tmp_path}/lib",
                                   "-lwebsockets"]
    assert result.json["cflags"] == [f"-I{tmp_path}/include", "-fsanitize=thread"]
