"""`lwsbuild wheel`: names that say what a wheel holds, provenance, repair, installing, reproducibility.

The build tests use the session's builds and wheels (tests/conftest.py). Builds beyond those
fixtures: the rebuild of --check-reproducible, an --unfixed release, and pip's own build.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import DEFAULT_LWS, REPO, Cli, Json, Venv
from helpers import planned
from lwsbuild.build import variants
from lwsbuild.build.provenance import Provenance, repair_policy
from lwsbuild.native import library as native
from lwsbuild.source import releases
from lwsbuild.wheel.meta import Identity, check
from lwsbuild.wheel.reproducible import compare, find_paths

LWS = DEFAULT_LWS
PROVENANCE = "lwsbuild/_native/share/lwsbuild/provenance.json"


def _provenance(variant: str = "release", series: str = "all", unfixed: bool = False, unpinned: bool = False,
                **extra_options: str) -> Provenance:
    return planned.provenance(variant, series_name=series, unfixed=unfixed, unpinned=unpinned, defines=extra_options,
                              version=LWS)


def _members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _metadata(wheel: Path) -> dict[str, str]:
    text = next(data for name, data in _members(wheel).items() if name.endswith(".dist-info/METADATA")).decode()
    return dict(re.findall(r"^(Version|Summary|Name): (.*)$", text, re.MULTILINE))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data)
    return path


# --------------------------------------------------------------------------- #
# names and the checks behind them (no build)


def test_each_kind_of_build_gets_its_own_version_label() -> None:
    labels = {
        "release": Identity.of_provenance(_provenance()).local,
        "asan": Identity.of_provenance(_provenance("asan")).local,
        "unfixed": Identity.of_provenance(_provenance(unfixed=True)).local,
        "seed": Identity.of_provenance(_provenance(series="seed")).local,
        "define": Identity.of_provenance(_provenance(LWS_WITH_HTTP2="OFF")).local,
        "unpinned": Identity.of_provenance(_provenance(unpinned=True)).local,
    }
    assert labels["release"] == f"lws{LWS}"
    assert labels["asan"] == f"lws{LWS}.asan"
    assert labels["unfixed"] == f"lws{LWS}.unfixed"
    assert labels["seed"] == f"lws{LWS}.seed"
    assert re.fullmatch(rf"lws{LWS}\.d[0-9a-f]{{8}}", labels["define"])
    assert labels["unpinned"] == f"lws{LWS}.unpinned"
    assert len(set(labels.values())) == len(labels)
    # What pip builds without a spec is the default pin, fixed: the same name as the CLI's.
    assert Identity.default("release").local == f"lws{releases.default_version()}"


def test_an_unfixed_summary_cannot_be_read_as_a_fixed_one() -> None:
    unfixed = Identity.of_provenance(_provenance("asan", unfixed=True))
    assert unfixed.summary.startswith("UNFIXED, DO NOT SHIP")
    assert "UNFIXED" not in Identity.of_provenance(_provenance("asan")).summary


def test_the_cmake_name_check_refuses_a_wheel_named_for_another_build(tmp_path: Path) -> None:
    provenance = tmp_path / "provenance.json"
    provenance.write_text(json.dumps(_provenance("asan").to_json()))
    assert check(Identity.of_provenance(_provenance("asan")).version, provenance) is None
    problem = check(Identity.of_provenance(_provenance()).version, provenance)
    assert problem is not None and "variant asan" in problem
    result = subprocess.run([sys.executable, "-m", "lwsbuild.wheel.meta", "check", "0.1.0+lws4.3.5", str(provenance)],
                            capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 6
    assert "-C lwsbuild.variant=NAME" in result.stderr


def test_only_release_wheels_are_repaired_and_openssl_is_not_grafted() -> None:
    release = repair_policy(variants.get("release").sanitizer)
    assert release.repair and set(release.excluded) == {"libssl.so.3", "libcrypto.so.3"}
    for name, runtime in (("asan", "libasan.so"), ("tsan", "libtsan.so")):
        policy = repair_policy(variants.get(name).sanitizer)
        assert not policy.repair and "not repaired" in policy.reason and runtime in policy.reason


def test_compare_names_the_differing_members(tmp_path: Path) -> None:
    a = _zip(tmp_path / "a.whl", {"x/same": b"1", "x/lib.so": b"abc", "x/gone": b"g"})
    b = _zip(tmp_path / "b.whl", {"x/same": b"1", "x/lib.so": b"abd", "x/new": b"n"})
    assert compare(a, _zip(tmp_path / "a2.whl", {"x/same": b"1", "x/lib.so": b"abc", "x/gone": b"g"})).identical
    comparison = compare(a, b)
    assert {(d.member, d.what) for d in comparison.differences} == {
        ("x/lib.so", "content"), ("x/gone", "only in first"), ("x/new", "only in second")}
    assert "x/lib.so: content differs" in comparison.describe()


def test_find_paths_reports_the_member_holding_a_build_path(tmp_path: Path) -> None:
    wheel = _zip(tmp_path / "w.whl", {"ok.txt": b"/usr/include", "bad.cmake": f"set(X {tmp_path}/build)".encode()})
    assert find_paths(wheel, [tmp_path]) == [("bad.cmake", str(tmp_path))]


# --------------------------------------------------------------------------- #
# real builds


@pytest.mark.build
@pytest.mark.network
def test_release_wheel_holds_library_headers_package_files_and_provenance(release_wheel_info: Json,
                                                                           release_build: Json) -> None:
    wheel = Path(release_wheel_info["wheel"])
    assert re.fullmatch(rf"lwsbuild-0\.1\.0\+lws{LWS}-py3-none-manylinux_2_\d+_x86_64\.whl", wheel.name), wheel.name
    members = _members(wheel)
    for name in ("lwsbuild/__init__.py", "lwsbuild/cli/main.py", "lwsbuild/_native/lib/libwebsockets.so.19",
                 "lwsbuild/_native/lib/libwebsockets.so", "lwsbuild/_native/include/libwebsockets.h",
                 "lwsbuild/_native/include/lws_config.h", "lwsbuild/_native/lib/pkgconfig/libwebsockets.pc",
                 "lwsbuild/_native/lib/cmake/libwebsockets/libwebsockets-config.cmake",
                 "lwsbuild/_native/share/lwsbuild/layout.json", PROVENANCE, "lwsbuild/patches/series.toml"):
        assert name in members, name
    # OpenSSL comes from the system: nothing grafted, no rewritten DT_NEEDED.
    assert not any(".libs/" in name for name in members)
    assert not any(name.startswith("lwsbuild/__pycache__") for name in members)

    provenance = json.loads(members[PROVENANCE])
    release = releases.get(LWS)
    assert provenance["lws"] == {"version": LWS, "tag": release.tag, "commit": release.commit,
                                 "tree_id": release.tree_id, "unpinned": False}
    assert provenance["series"] == "all" and provenance["variant"] == "release"
    # Where the bytes came from is the cache's record: the same tree from any mirror is the same build.
    assert "mirror" not in provenance
    assert (provenance["extra_c_flags"], provenance["ld_flags"]) == ([], []) and provenance["tools"]["cmake"]
    assert provenance["patches"] and all({"id", "status", "sha256"} <= set(p) for p in provenance["patches"])
    assert provenance["cmake_options"]["LWS_MAX_SMP"] == "8"
    assert provenance["compiler"]["version"] and provenance["source_date_epoch"] == release.source_date_epoch
    assert provenance["wheel"]["repair"] is True
    assert provenance["build_key"] == release_build["build_key"]

    metadata = _metadata(wheel)
    assert metadata["Version"] == f"0.1.0+lws{LWS}" == release_wheel_info["version"]
    assert metadata["Summary"].startswith(f"libwebsockets {LWS} (release), all fixes.")
    assert release_wheel_info["repair"]["repair"] is True


@pytest.mark.build
@pytest.mark.network
def test_sanitizer_wheel_is_named_apart_and_not_repaired(asan_wheel_info: Json, release_wheel: Path) -> None:
    wheel = Path(asan_wheel_info["wheel"])
    assert wheel.name == f"lwsbuild-0.1.0+lws{LWS}.asan-py3-none-linux_x86_64.whl"
    assert _metadata(wheel)["Version"] != _metadata(release_wheel)["Version"]
    provenance = json.loads(_members(wheel)[PROVENANCE])
    assert provenance["variant"] == "asan" and provenance["wheel"]["repair"] is False
    assert "not repaired" in provenance["wheel"]["reason"]
    assert asan_wheel_info["repair"]["reason"] == provenance["wheel"]["reason"]
    # GCC names sanitizer binaries' sources by absolute path; nothing else may carry a build path.
    assert all(m.startswith(("lwsbuild/_native/lib/", "lwsbuild/_native/bin/")) for m in asan_wheel_info["source_paths"])


@pytest.mark.build
@pytest.mark.network
def test_tsan_wheel_is_named_for_its_variant(cli: Cli, tsan_build: Json, tmp_path: Path) -> None:
    result = cli("wheel", "--json", "--variant", "tsan", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert Path(result.json["wheel"]).name == f"lwsbuild-0.1.0+lws{LWS}.tsan-py3-none-linux_x86_64.whl"
    assert result.json["build"]["build_key"] == tsan_build["build_key"] and result.json["repair"]["repair"] is False


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_release_wheel_loads_from_a_fresh_venv(release_venv: Venv) -> None:
    code = ("import json; from lwsbuild.native import library; lib = library.load(); "
            "print(json.dumps({'prefix': str(lib.prefix), 'version': lib.version, 'variant': lib.variant}))")
    result = release_venv.run(release_venv.python, "-c", code)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert Path(loaded["prefix"]).is_relative_to(release_venv.root), loaded
    assert loaded["version"].startswith(LWS) and loaded["variant"] == "release"
    assert release_venv.run(release_venv.root / "bin" / "lwsbuild", "--version").returncode == 0


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_an_installed_lwsbuild_makes_the_same_wheel_outside_any_checkout(release_venv: Venv, release_wheel: Path,
                                                                       session_cache: Path, tmp_path: Path) -> None:
    # The README's install, then `lwsbuild wheel` from the installed copy: no checkout, no PYTHONPATH.
    out = tmp_path / "out"
    result = release_venv.run(release_venv.root / "bin" / "lwsbuild", "wheel", "--json", "-o", out, cwd=tmp_path,
                              timeout=1200, LWSBUILD_CACHE=str(session_cache))
    assert result.returncode == 0, result.stderr[-4000:]
    made = Path(json.loads(result.stdout)["wheel"])
    assert made.parent == out.resolve() and made.name == release_wheel.name
    ours, theirs = _members(made), _members(release_wheel)
    assert sorted(ours) == sorted(theirs)
    assert ours["lwsbuild/_native/share/lwsbuild/provenance.json"] == \
        theirs["lwsbuild/_native/share/lwsbuild/provenance.json"]
    assert "lwsbuild/_project/pyproject.toml" in ours


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_asan_wheel_loads_from_a_fresh_venv_with_the_runtime_preloaded(asan_venv: Venv, asan_prefix: Path) -> None:
    runtime = native.runtime_path(native.read_provenance(asan_prefix))
    code = ("import ctypes, importlib.resources as r; "
            "lib = ctypes.CDLL(str(r.files('lwsbuild') / '_native' / 'lib' / 'libwebsockets.so.19')); "
            "lib.lws_get_library_version.restype = ctypes.c_char_p; print(lib.lws_get_library_version().decode())")
    result = asan_venv.run(asan_venv.python, "-c", code, LD_PRELOAD=str(runtime), ASAN_OPTIONS="detect_leaks=0")
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.startswith(LWS) and "asan" in result.stdout
    assert "ERROR: AddressSanitizer" not in result.stderr


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_no_build_path_in_any_installed_file(release_venv: Venv, release_wheel_info: Json,
                                            session_cache: Path) -> None:
    build = release_wheel_info["build"]
    needles = {str(session_cache), str(REPO), build["build_dir"], build["prefix"]}
    site = release_venv.site_lwsbuild.parent
    installed = [p for top in (site / "lwsbuild", *site.glob("lwsbuild-*.dist-info")) for p in top.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]
    assert any(p.name == "libwebsockets.so.19" for p in installed)
    leaks = [(str(p), n) for p in installed for n in needles if n.encode() in p.read_bytes()]
    assert not leaks


@pytest.mark.build
@pytest.mark.network
def test_two_wheel_builds_in_different_caches_and_directories_are_byte_identical(
        cli: Cli, release_wheel: Path, tmp_path: Path) -> None:
    # The first wheel is packaged from the session build; --check-reproducible builds it again
    # from the verified tree in a fresh cache and working directory, and compares the bytes.
    result = cli("wheel", "--json", "--check-reproducible", "-o", str(tmp_path), cwd=tmp_path)
    report = result.json.get("reproducible", {}) if result.stdout else {}
    assert result.returncode == 0, json.dumps(report.get("differences"), indent=1) or result.stderr
    assert report["identical"] and report["first_sha256"] == report["second_sha256"]
    # Packaging the same build twice gives the same bytes too.
    assert compare(release_wheel, Path(result.json["wheel"])).identical


@pytest.mark.build
@pytest.mark.network
def test_unfixed_never_reuses_a_fixed_build_or_wheel_name(cli: Cli, asan_build: Json, asan_unfixed_build: Json,
                                                          asan_wheel_info: Json, tmp_path: Path) -> None:
    assert asan_unfixed_build["build_key"] != asan_build["build_key"]
    assert asan_unfixed_build["prefix"] != asan_build["prefix"]
    result = cli("wheel", "--json", "--variant", "asan", "--unfixed", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    unfixed = result.json
    assert unfixed["build"]["build_key"] == asan_unfixed_build["build_key"]
    wheel = Path(unfixed["wheel"])
    assert wheel.name == f"lwsbuild-0.1.0+lws{LWS}.unfixed.asan-py3-none-linux_x86_64.whl"
    assert wheel.name != Path(asan_wheel_info["wheel"]).name and unfixed["marks"] == ["UNFIXED"]
    assert _metadata(wheel)["Summary"].startswith("UNFIXED, DO NOT SHIP")
    provenance = json.loads(_members(wheel)[PROVENANCE])
    assert provenance["unfixed"] is True and "UNFIXED" in provenance["marks"]
    assert all(p["status"] in ("reverted", "absent", "not-needed") for p in provenance["patches"])


@pytest.mark.build
@pytest.mark.network
def test_pip_wheel_builds_the_same_library_and_names_its_variant(release_prefix: Path, release_wheel: Path,
                                                                 session_cache: Path, tmp_path: Path) -> None:
    # pip's own path: the project's backend fetches, verifies and patches, scikit-build-core builds in
    # a directory of its own (no lwsbuild build directory is reused). No build isolation
    # here (it would ask a registry for the build requirements); the environment already has them.
    pip = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    result = subprocess.run(pip, capture_output=True, text=True, cwd=tmp_path, timeout=1200,
                            env={**_without_pythonpath(), "LWSBUILD_CACHE": str(session_cache)}, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name == f"lwsbuild-0.1.0+lws{LWS}-py3-none-linux_x86_64.whl"
    library = _members(wheel)["lwsbuild/_native/lib/libwebsockets.so.19"]
    assert library == (release_prefix / "lib" / "libwebsockets.so.19").read_bytes()
    # cibuildwheel's repair step (pyproject.toml [tool.cibuildwheel]) makes it `lwsbuild wheel`'s wheel.
    repair = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["cibuildwheel"]["repair-wheel-command"]
    command = repair.format(package=REPO, wheel=wheel, dest_dir=tmp_path / "repaired")
    repaired = subprocess.run(["sh", "-c", command], check=False, capture_output=True, text=True, timeout=300)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert (tmp_path / "repaired" / release_wheel.name).read_bytes() == release_wheel.read_bytes()

    # lwsbuild's own CMake variables are the backend's to set: refused before anything is built.
    wrong = subprocess.run([*pip[:-2], "-w", str(tmp_path / "wrong"), "-C", "cmake.define.LWSBUILD_VARIANT=asan"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=1200,
                           env={**_without_pythonpath(), "LWSBUILD_CACHE": str(session_cache)}, check=False)
    assert wrong.returncode != 0
    assert "-C lwsbuild.variant=NAME" in wrong.stdout + wrong.stderr
    assert not list((tmp_path / "wrong").glob("*.whl"))


def _without_pythonpath() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
