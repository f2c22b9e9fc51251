"""What a build says it is, it is (issue 18): closed build inputs, a cache that checks itself, `verify`.

Each finding of the issue is a test here (the pip routes and the ASCII rule: tests/test_pip.py,
tests/test_bad_input.py, tests/test_request.py):
  * the caller's environment does not reach a build: the build steps run in a constructed
    environment, CC/CFLAGS/LDFLAGS are settings (their own key and provenance), the rest is dropped
    and named;
  * a cached tree, prepared tree or prefix that changed is discarded and made again, never served;
    --refresh checks every byte;
  * any cache path builds (spaces, non-ASCII), to the same bytes;
  * a full cache is exit 9, naming the cache and the bytes needed;
  * `lwsbuild verify` rebuilds an artifact from its provenance in a private cache and compares.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Cli, CliResult, Json, run_cli
from helpers import cachestate, planned
from helpers.archives import copy_tree
from helpers.checks import error_line
from lwsbuild.build import cmake as build
from lwsbuild.build import environment
from lwsbuild.common import manifest

SETTINGS_VARIABLES = {"CC": "cc", "CFLAGS": "-O1", "LDFLAGS": "-Wl,-z,norelro", "LWSBUILD_VARIANT": "asan"}
BUILD_INPUTS = {"CPPFLAGS": "-DX", "CPATH": "/x", "LIBRARY_PATH": "/x", "LD_LIBRARY_PATH": "/x", "LD_RUN_PATH": "/x",
                "PKG_CONFIG_PATH": "/x", "CMAKE_TOOLCHAIN_FILE": "/x.cmake", "CMAKE_ARGS": "-DX=1",
                "SKBUILD_CMAKE_DEFINE": "X=1", "CMAKE_PREFIX_PATH": "/x", "OPENSSL_ROOT_DIR": "/x", "LD_PRELOAD": "/x.so",
                "CCACHE_DIR": "/x", "DESTDIR": "/x"}
PASSED = {"PATH": "/usr/bin:/bin", "HOME": "/root", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C", "PYTHONPATH": "/p"}
HARMLESS = {"SSH_AUTH_SOCK": "/s", "DISPLAY": ":0", "PYENV_ROOT": "/p"}


# --- the environment a build gets ------------------------------------------------------------

def test_a_build_step_gets_a_constructed_environment() -> None:
    caller = {**SETTINGS_VARIABLES, **BUILD_INPUTS, **PASSED, **HARMLESS}
    assert environment.construct(caller, SOURCE_DATE_EPOCH="1") == {**PASSED, "SOURCE_DATE_EPOCH": "1"}
    # Named when dropped: what would have changed a build (not the settings' own, not the harmless).
    assert environment.dropped(caller) == sorted(BUILD_INPUTS)
    line = environment.dropped_line(caller)
    assert line is not None and "\n" not in line and all(name in line for name in BUILD_INPUTS)
    assert environment.dropped_line({**PASSED, **HARMLESS}) is None


def test_the_build_steps_environment_holds_nothing_of_the_callers_build_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SETTINGS_VARIABLES, **BUILD_INPUTS}.items():
        monkeypatch.setenv(name, value)
    for variant in ("release", "asan"):
        env = build.cmake_env(planned.spec(variant))
        assert not set(env) & {*SETTINGS_VARIABLES, *BUILD_INPUTS}, variant
        assert env["SOURCE_DATE_EPOCH"] and env["PATH"] == os.environ["PATH"]


def test_compiler_and_flags_are_in_the_key_provenance_and_spec() -> None:
    plain = planned.spec("release")
    flagged = build.plan(plain.prepared, plain.variant, plain.options, plain.compiler, ("-O1",), ("-Wl,-z,norelro",))
    assert flagged.key != plain.key
    described = flagged.provenance()
    assert (described.extra_c_flags, described.ld_flags) == (("-O1",), ("-Wl,-z,norelro",))
    assert described.c_flags[-1] == "-O1" and described.tools.cmake
    spec = flagged.cmake_spec(Path("/p/provenance.json"))
    for kind in ("EXE", "SHARED", "MODULE"):  # forced: nothing from the environment or an older cache stays
        assert f"set(CMAKE_{kind}_LINKER_FLAGS [=[-Wl,-z,norelro]=] CACHE STRING \"\" FORCE)" in spec
    assert "set(CMAKE_SHARED_LINKER_FLAGS [=[]=] CACHE STRING \"\" FORCE)" in plain.cmake_spec(Path("/p/x.json"))


def test_dropped_variables_are_named_in_one_warning_line(tmp_path: Path) -> None:
    result = run_cli("build", "--source", f"dir:{tmp_path / 'missing'}", cache=tmp_path / "cache",
                     env={"CPATH": "/x", "PKG_CONFIG_PATH": "/y"})
    warnings = [line for line in result.stderr.splitlines() if "not passed to the build" in line]
    assert len(warnings) == 1 and "CPATH, PKG_CONFIG_PATH" in warnings[0], result.stderr
    assert result.returncode == 3  # and then the missing source, as without them


def _relro(library: Path) -> bool:
    program_headers = subprocess.run(["readelf", "-lW", str(library)], capture_output=True, text=True, check=True,
                                     timeout=60).stdout
    return "GNU_RELRO" in program_headers


@pytest.mark.build
@pytest.mark.network
def test_ldflags_make_their_own_build_and_the_plain_build_stays_plain(cli: Cli, release_build: Json,
                                                                      tmp_path: Path) -> None:
    marker = tmp_path / "toolchain-ran"
    toolchain = tmp_path / "toolchain.cmake"
    toolchain.write_text(f'file(WRITE "{marker}" "the toolchain file ran")\n')
    env = {"LDFLAGS": "-Wl,-z,norelro", "CMAKE_TOOLCHAIN_FILE": str(toolchain), "CPATH": str(tmp_path)}
    flagged = cli("build", "--json", env=env)
    assert flagged.returncode == 0, flagged.stderr
    assert flagged.json["build_key"] != release_build["build_key"]
    described = json.loads((Path(flagged.json["prefix"]) / "share/lwsbuild/provenance.json").read_text())
    assert described["ld_flags"] == ["-Wl,-z,norelro"]
    assert not _relro(Path(flagged.json["library"]))
    assert not marker.exists()  # dropped, never run; and said so
    assert "CMAKE_TOOLCHAIN_FILE, CPATH" in flagged.stderr
    plain = cli("build", "--json")
    assert (plain.json["build_key"], plain.json["cached"]) == (release_build["build_key"], True)
    assert _relro(Path(plain.json["library"]))


# --- the cache checks itself -----------------------------------------------------------------

def _same_size_and_time(path: Path) -> None:
    """Change one byte, keeping size and modification time: only a full check can see it."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture
def own_tree_cache(lws_tree: Path, tmp_path: Path) -> Path:
    """A cache holding a copy (not links: the test changes it) of the verified tree."""
    cache = tmp_path / "cache"
    (cache / "trees").mkdir(parents=True)
    copy_tree(lws_tree, cache / "trees" / lws_tree.name, link=False)
    (cache / "trees" / f"{lws_tree.name}.json").write_text(json.dumps({"pinned": {"mirror": "debian"}}))
    return cache


@pytest.mark.network
def test_a_changed_cached_tree_is_fetched_again_and_refresh_checks_every_byte(own_tree_cache: Path,
                                                                            lws_tree: Path) -> None:
    tree = own_tree_cache / "trees" / lws_tree.name
    genuine = ["--source", f"dir:{lws_tree}"]
    first = run_cli("fetch", "--json", *genuine, cache=own_tree_cache)  # no manifest yet: the tree id decides
    assert first.returncode == 0 and first.json["cached"], first.stderr
    assert cachestate.manifests(own_tree_cache) == {f"trees/{lws_tree.name}"}  # ... and then records one
    changed = tree / "lib" / "core" / "context.c"
    with changed.open("a") as handle:
        handle.write("/* appended */\n")
    again = run_cli("fetch", "--json", *genuine, cache=own_tree_cache)
    assert again.returncode == 0, again.stderr
    assert "changed since it was made (lib/core/context.c: size changed)" in again.stderr
    assert not again.json["cached"] and changed.read_bytes() == (lws_tree / "lib/core/context.c").read_bytes()

    _same_size_and_time(changed)  # the cheap check cannot see this one ...
    assert run_cli("fetch", "--json", *genuine, cache=own_tree_cache).json["cached"]
    refreshed = run_cli("fetch", "--json", "--refresh", *genuine, cache=own_tree_cache)  # ... --refresh does
    assert refreshed.returncode == 0, refreshed.stderr
    assert "lib/core/context.c: content changed" in refreshed.stderr
    assert changed.read_bytes() == (lws_tree / "lib/core/context.c").read_bytes()


@pytest.mark.network
def test_patch_refresh_repairs_a_changed_prepared_tree(own_tree_cache: Path, lws_tree: Path) -> None:
    made = run_cli("patch", "--json", cache=own_tree_cache)
    assert made.returncode == 0, made.stderr
    prepared = Path(made.json["path"])
    changed = prepared / "lib" / "core-net" / "close.c"
    genuine = changed.read_bytes()
    _same_size_and_time(changed)
    refreshed = run_cli("patch", "--json", "--refresh", "--source", f"dir:{lws_tree}", cache=own_tree_cache)
    assert refreshed.returncode == 0, refreshed.stderr
    assert "prepared tree" in refreshed.stderr and "lib/core-net/close.c: content changed" in refreshed.stderr
    assert Path(refreshed.json["path"]) == prepared and changed.read_bytes() == genuine
    # A deleted file is seen by the cheap check of every use.
    changed.unlink()
    again = run_cli("patch", "--json", cache=own_tree_cache)
    assert "lib/core-net/close.c: missing" in again.stderr and changed.read_bytes() == genuine


# --- any cache path; verify ------------------------------------------------------------------

@pytest.fixture(scope="module")
def odd_cache(lws_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache whose path has spaces and non-ASCII letters, holding only the verified tree."""
    return cachestate.seed(tmp_path_factory.mktemp("odd") / "cache dir ü é", lws_tree)


@pytest.mark.build
@pytest.mark.network
def test_any_cache_path_builds_the_same_bytes_and_a_changed_prefix_is_rebuilt(
        odd_cache: Path, release_wheel: Path, tmp_path: Path) -> None:
    made = run_cli("wheel", "--json", "-o", str(tmp_path / "wheel dir"), cache=odd_cache)
    assert made.returncode == 0, made.stderr
    # Path independence: the session's wheel (another cache, another path) has the same bytes.
    assert Path(made.json["wheel"]).read_bytes() == release_wheel.read_bytes()

    prefix = Path(made.json["build"]["prefix"])
    header = prefix / "include" / "libwebsockets.h"
    genuine = header.read_bytes()
    _same_size_and_time(header)
    served = run_cli("build", "--json", cache=odd_cache)  # sizes and times say nothing changed ...
    assert served.json["cached"] and header.read_bytes() != genuine
    rebuilt = run_cli("build", "--json", "--refresh", cache=odd_cache)  # ... every byte says otherwise
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "include/libwebsockets.h: content changed): discarding it and building it again" in rebuilt.stderr
    assert not rebuilt.json["cached"] and header.read_bytes() == genuine


def _with_one_byte_changed(wheel: Path, member_suffix: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    changed = out / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(changed, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(member_suffix):
                data = data[:4096] + bytes([data[4096] ^ 1]) + data[4097:]
            target.writestr(info, data)
    return changed


@pytest.mark.build
@pytest.mark.network
def test_verify_rebuilds_from_provenance_and_names_what_differs(odd_cache: Path, release_wheel: Path,
                                                                release_prefix: Path, tmp_path: Path) -> None:
    tampered = _with_one_byte_changed(release_wheel, "/lib/libwebsockets.so.19", tmp_path / "tampered")
    # One rebuild serves all three: the artifacts name the same build. The caller's cache is only a
    # seed: this one's path has spaces, the rebuild's is another.
    result = run_cli("verify", "--json", str(release_wheel), str(tampered), str(release_prefix), cache=odd_cache,
                     timeout=1200)
    assert result.returncode == 1, result.stderr
    verdicts = {v["target"]: v for v in result.json["verdicts"]}
    assert verdicts[str(release_wheel)]["identical"] and verdicts[str(release_prefix)]["identical"]
    bad = verdicts[str(tampered)]
    assert not bad["identical"] and bad["provenance_differences"] == []
    assert [d.split(":")[0] for d in bad["differences"]] == ["lwsbuild/_native/lib/libwebsockets.so.19"]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("lwsbuild: error: 1 of 3 artifact(s) differ") and str(tampered) in line
    # The text form says identical for the genuine wheel.
    text = run_cli("verify", str(release_wheel), cache=odd_cache, timeout=1200)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"{release_wheel}: identical to its rebuild (sha256 ")


def test_verify_refuses_what_is_no_build(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("verify", str(tmp_path / "empty"), cache=tmp_path / "cache")
    assert result.returncode == 2 and "is not an lwsbuild install prefix" in error_line(result)


# --- a full cache --------------------------------------------------------------------------

@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs (root: mount it; otherwise the test cannot run here)."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(where)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _exit_9(result: CliResult, cache: Path, needs: str) -> None:
    assert result.returncode == 9, result.stderr
    line = error_line(result)
    assert f"the cache {cache} has no room for {needs}: it needs about " in line and " bytes)" in line, line
    assert "(fix: free space" in line


def test_a_full_cache_fails_the_fetch_with_exit_9_and_the_bytes_needed(small_filesystem: Path, tmp_path: Path) -> None:
    archive = tmp_path / "zeros.tar.gz"  # 64 MiB of zeros unpacked, some 64 KiB packed
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo("lws/big")
        member.size = 64 << 20
        tar.addfile(member, io.BytesIO(bytes(member.size)))
    cache = small_filesystem / "cache"
    result = run_cli("fetch", "--allow-unpinned", "--source", f"archive:{archive}", cache=cache)
    _exit_9(result, cache, "the source tree of zeros.tar.gz")
    assert "64.0 MiB (67108864 bytes)" in result.stderr
    assert cachestate.entries(cache) == set() and cachestate.leftovers(cache) == set()


@pytest.mark.network
def test_a_full_cache_fails_the_build_before_configuring(small_filesystem: Path, lws_tree: Path) -> None:
    cache = small_filesystem / "cache"
    (cache / "trees").mkdir(parents=True)  # the tree (26 MiB) fits, a patched copy of it does not
    copy_tree(lws_tree, cache / "trees" / lws_tree.name, link=False)
    (cache / "trees" / f"{lws_tree.name}.json").write_text(json.dumps({"pinned": {"mirror": "debian"}}))
    result = run_cli("build", cache=cache)
    _exit_9(result, cache, "a patched copy of the source tree")
    assert not [e for e in cachestate.entries(cache) if e.startswith(("prepared/", "builds/"))]


def test_manifests_name_what_changed(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_text("one")
    (tree / "gone").write_text("x")
    (tree / "link").symlink_to("d/f")
    recorded = manifest.take(tree)
    assert manifest.differences(tree, recorded, full=True) == []
    (tree / "gone").unlink()
    (tree / "new").write_text("y")
    (tree / "link").unlink()
    (tree / "link").symlink_to("new")
    (tree / "d" / "f").chmod(0o600)
    assert sorted(manifest.differences(tree, recorded, full=False)) == [
        "d/f: mode changed", "gone: missing", "link: link target changed", "new: added"]
    shutil.rmtree(tree)
    assert manifest.differences(tree, recorded, full=False) == ["the entry itself is gone"]


@pytest.mark.build
@pytest.mark.network
def test_a_library_installed_on_the_machine_does_not_enter_the_build(release_prefix: Path) -> None:
    """lws links libcap whenever the machine has its headers (CI installs them, Debian's Build-Depends
    for tests/test_export.py): variants.toml switches it off, so the library, its NEEDED entries and
    the wheel (auditwheel would graft it) do not depend on what else is installed."""
    library = next((release_prefix / "lib").glob("libwebsockets.so.*[0-9]"))
    dynamic = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True,
                             timeout=60).stdout
    needed = sorted(line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line)
    assert needed and all(name.startswith(("libssl.", "libcrypto.", "libc.", "libm.", "libpthread.", "libdl."))
                          for name in needed), needed
    config = (release_prefix / "include" / "lws_config.h").read_text()
    assert "#define LWS_HAVE_LIBCAP" not in config
