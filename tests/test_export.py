"""`lwsbuild export`: the fix series in packagers' conventions (lwsbuild/export/), and the proofs
with their own tools: Debian's source package built by dpkg-buildpackage, a Conan recipe built by
`conan create` offline, each library then run by lwsbuild's smoke client (and, for the .deb, the
stress harness). Yocto and Buildroot cannot be built here: their files are checked for form.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import Cli, Json
from helpers.packaged import prefix_for
from lwsbuild.build.cmake import Install
from lwsbuild.common import cache
from lwsbuild.errors import ExportError
from lwsbuild.export import debian, quilt
from lwsbuild.request import BuildRequest
from lwsbuild.series import carried
from lwsbuild.series.fixes import series_dir
from lwsbuild.stress import profiles
from lwsbuild.stress import run as stress
from lwsbuild.stress.run import StressRun

DEP3_REQUIRED = ("Description", "Author", "Origin", "Forwarded", "Last-Update")


def _export(cli: Cli, fmt: str, out: Path, *more: str) -> Json:
    result = cli("export", "--format", fmt, "-o", str(out), "--json", *more, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.json


def _dep3(text: str) -> dict[str, str]:
    """The DEP-3 header's fields (up to the first line that starts with ---)."""
    head = text.split("\n---\n", 1)[0]
    return dict(re.findall(r"^([A-Za-z-]+): (.*)$", head, re.MULTILINE))


@pytest.fixture(scope="session")
def quilt_export(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quilt") / "out"
    _export(cli, "quilt", out)
    return out


def test_quilt_patches_carry_dep3_headers_and_apply_in_series_order(quilt_export: Path, lws_tree: Path,
                                                                    tmp_path: Path) -> None:
    series = [line for line in (quilt_export / "patches" / "series").read_text().splitlines()
              if line and not line.startswith("#")]
    assert series and series == sorted(series)
    tree = tmp_path / "tree"
    shutil.copytree(lws_tree, tree, symlinks=True)
    for name in series:
        text = (quilt_export / "patches" / name).read_text()
        fields = _dep3(text)
        assert all(fields.get(key) for key in DEP3_REQUIRED), (name, fields)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["Last-Update"])
        if "CVE-" in name:
            assert fields["Bug"].endswith(fields["CVE"].split()[0]) and fields["Upstream-Status"]
        # quilt's own apply: GNU patch, no fuzz, in series order
        applied = subprocess.run(["patch", "-p1", "-F0", "--no-backup-if-mismatch", "-s"], input=text, text=True,
                                 cwd=tree, capture_output=True, check=False)
        assert applied.returncode == 0, (name, applied.stdout, applied.stderr)


def test_an_export_refuses_a_used_directory_and_the_unfixed_tree(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    result = cli("export", "--format", "quilt", "-o", str(tmp_path / "used"))
    assert result.returncode == 2 and "not an empty directory" in result.stderr
    result = cli("export", "--format", "quilt", "--unfixed", "-o", str(tmp_path / "new"))
    assert result.returncode == 2 and "UNFIXED" in result.stderr
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new*"))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _same_export_twice(cli: Cli, tmp_path: Path, fmt: str, *more: str, first: Path | None = None) -> None:
    """Two exports into differently named directories (`first`: one made already), the patch files'
    modification times changed in between (as a fresh checkout changes them): the same bytes."""
    second = tmp_path / "elsewhere" / "export"
    if first is None:
        first = tmp_path / "a" / "out"
        _export(cli, fmt, first, *more)
    patch_files = list(series_dir().rglob("*.patch"))
    times = {p: (p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in patch_files}
    try:
        for path in patch_files:
            os.utime(path, ns=(times[path][0], times[path][1] + 86_400 * 10**9 * 400))
        _export(cli, fmt, second, *more)
    finally:
        for path, (atime, mtime) in times.items():
            os.utime(path, ns=(atime, mtime))
    files = _files(first)
    assert files and files == _files(second)
    assert not any(str(second.parent).encode() in data for data in files.values())  # no output path written in


def test_a_quilt_export_is_the_same_bytes_wherever_and_whenever_it_is_made(cli: Cli, quilt_export: Path,
                                                                          tmp_path: Path) -> None:
    _same_export_twice(cli, tmp_path, "quilt", first=quilt_export)


@pytest.mark.network
def test_debian_and_conan_exports_are_the_same_bytes_wherever_they_are_made(
        cli: Cli, conan_export: tuple[Path, Json], tmp_path: Path) -> None:
    # (yocto's and buildroot's files are the quilt patches and a bbappend of the same data)
    _same_export_twice(cli, tmp_path / "debian", "debian", "--max-smp", "8")
    _same_export_twice(cli, tmp_path / "conan", "conan", first=conan_export[0])


def test_a_patch_is_dated_by_its_own_header_never_by_its_file(tmp_path: Path) -> None:
    # every patch of the series carries its Date: (when it was added), so every export can date it
    undated = [p for p in series_dir().rglob("*.patch") if not re.search(r"^Date: ", p.read_text(), re.MULTILINE)]
    assert undated == []
    patch = tmp_path / "0001-x.patch"
    patch.write_text("Date: Tue, 1 Dec 2026 00:00:00 +0000\n\ndiff --git a/x b/x\n")
    os.utime(patch, (0, 0))  # a checkout's time says nothing about the patch
    assert quilt.patch_date(patch, patch.read_text()).isoformat() == "2026-12-01T00:00:00+00:00"
    for text in ("diff --git a/x b/x\n+Date: Tue, 1 Dec 2026 00:00:00 +0000\n", "Date: yesterday\n\ndiff --git a/x b/x\n"):
        with pytest.raises(ExportError, match=r"0001-x.patch has no Date: header"):
            quilt.patch_date(patch, text)


@pytest.mark.network
def test_yocto_bbappend_and_buildroot_patches(cli: Cli, tmp_path: Path) -> None:
    summary = _export(cli, "yocto", tmp_path / "out")
    bbappend = (tmp_path / "out" / summary["bbappend"]).read_text()
    uris = re.findall(r"file://(\S+)", bbappend)
    assert uris and all((tmp_path / "out" / "yocto" / "files" / u).is_file() for u in uris)
    for uri in uris:
        fields = _dep3((tmp_path / "out" / "yocto" / "files" / uri).read_text())
        assert re.match(r"(Pending|Backport|Submitted|Inappropriate)", fields["Upstream-Status"])
    status = dict(re.findall(r'^CVE_STATUS\[(CVE-[\d-]+)\] = "([a-z-]+): ', bbappend, re.MULTILINE))
    assert status == dict.fromkeys(summary["cve_status"], "backported-patch") and status
    buildroot = sorted(p.name for p in (tmp_path / "out" / "buildroot" / "package" / "libwebsockets").iterdir())
    assert buildroot == sorted(uris) and all(re.fullmatch(r"\d{4}-[A-Za-z0-9._-]+\.patch", n) for n in buildroot)
    assert all("\nUpstream: " in (tmp_path / "out" / "buildroot" / "package" / "libwebsockets" / n).read_text()
               for n in buildroot)


@pytest.fixture(scope="session")
def conan_export(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Json]:
    out = tmp_path_factory.mktemp("conan") / "recipe"
    return out, _export(cli, "conan", out)


@pytest.mark.network
def test_conandata_pins_the_source_and_describes_every_patch(conan_export: tuple[Path, Json]) -> None:
    out, summary = conan_export
    data = yaml.safe_load((out / "conandata.yml").read_text())
    version = summary["version"]
    source = data["sources"][version]
    assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"]) and source["url"]
    assert (out / "download-cache" / "s" / source["sha256"]).is_file()
    entries = data["patches"][version]
    assert [e["patch_file"] for e in entries] == list(summary["patches"])
    for entry in entries:
        assert set(entry) == {"patch_file", "patch_description", "patch_type", "patch_source"}
        assert entry["patch_type"] in ("bugfix", "vulnerability", "official") and (out / entry["patch_file"]).is_file()
    assert {e["patch_type"] for e in entries} == {"bugfix", "vulnerability"}
    record = json.loads(data["lwsbuild"][version])
    assert record["schema"] == carried.SCHEMA and record["series"] == summary["series"]


def _smoke(cli: Cli, prefix: Path) -> Json:
    result = cli("smoke", "--prefix", str(prefix), "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    smoke: Json = result.json
    assert smoke["ok"]
    return smoke


def _dpkg_build(tree: Path, root: Path, **env: str) -> Path:
    """`dpkg-buildpackage -b -us -uc` in Debian's source tree (its Build-Depends from apt, .ci/run),
    the library and -dev .debs of the result extracted under `root`; returns root/usr."""
    # only trixie's dpkg-dev version, for its t64 substitution variables, is not met on Debian 12 (-d)
    unmet = subprocess.run(["dpkg-checkbuilddeps"], cwd=tree, capture_output=True, text=True, check=False)
    assert re.sub(r"dpkg-dev \([^)]*\)", "", unmet.stderr.split("dependencies:")[-1]).strip() == "", unmet.stderr
    env = {**os.environ, "DEB_BUILD_OPTIONS": "nocheck parallel=2", **env}
    built = subprocess.run(["nice", "-n", "10", "dpkg-buildpackage", "-b", "-us", "-uc", "-d"], cwd=tree, env=env,
                           capture_output=True, text=True, check=False, timeout=1500)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    for deb in sorted(tree.parent.glob("libwebsockets*.deb")):
        if re.match(r"libwebsockets(\d+t64|-dev)_", deb.name):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root / "usr"


def _library(usr: Path) -> Path:
    return next(p for p in (usr / "lib").glob("*/libwebsockets.so.*") if not p.is_symlink())


def _stress(install: Install, profile: str, logs: Path, duration: int) -> StressRun:
    """One harness run of `install` under a profile of profiles.toml, as `lwsbuild stress` runs it."""
    return stress.run(install, profiles.with_overrides(profile, {"duration": duration}).profile, logs / profile)


@pytest.mark.network
def test_debian_export_leaves_debians_configure_alone_unless_asked(cli: Cli, tmp_path: Path) -> None:
    summary = _export(cli, "debian", tmp_path / "src")
    tree = Path(summary["source_dir"])
    # Debian's rules set no LWS_MAX_SMP: lws's own default, one service thread, on which the stress
    # harness (two at least) cannot run and the series' defects cannot occur (docs/packagers.md)
    assert summary["configure"] == {} and "LWS_MAX_SMP" not in (tree / "debian" / "rules").read_text()
    assert re.search(r"if \(NOT LWS_MAX_SMP\)\s+set\(LWS_MAX_SMP 1\)",
                     (tree / "CMakeLists-implied-options.txt").read_text())
    result = cli("export", "--format", "quilt", "--max-smp", "8", "-o", str(tmp_path / "q"))
    assert result.returncode == 2 and "--max-smp" in result.stderr and len(result.stderr.strip().splitlines()) <= 2


@pytest.mark.build
@pytest.mark.network
def test_debian_package_with_the_export_builds_and_runs_clean(cli: Cli, tmp_path: Path) -> None:
    summary = _export(cli, "debian", tmp_path / "src", "--max-smp", "8")
    assert summary["version"] == summary["debian_version"] + "+lwsbuild1"
    assert set(summary["carried"]) <= {"0101", "0102", "0103", "0104", "0105"}
    tree = Path(summary["source_dir"])
    listed = [x for x in (tree / "debian" / "patches" / "series").read_text().splitlines() if x and x[0] != "#"]
    assert listed == [*summary["debian_patches"], *summary["appended"]]  # Debian's first, ours after, none twice
    assert not {f"lwsbuild-{fix}" for fix in summary["carried"]} & {name[:13] for name in listed}
    assert summary["configure"] == {"LWS_MAX_SMP": "8"}
    assert "-DLWS_MAX_SMP=8" in (tree / "debian" / "changelog").read_text().split("\n -- ", 1)[0]
    usr = _dpkg_build(tree, tmp_path / "root")
    assert "#define LWS_MAX_SMP 8\n" in (usr / "include" / "lws_config.h").read_text()
    audit = cli("audit", str(usr), "--json")
    assert audit.returncode == 0, audit.stderr
    assert audit.json["variant"] == f"debian {summary['version']}" and audit.json["exploitable"] == []
    assert carried.read(usr / "share" / "lwsbuild" / "series.json").configure == {"LWS_MAX_SMP": "8"}
    install = prefix_for(usr / "include", _library(usr), tmp_path / "prefix")
    assert _smoke(cli, install.prefix)["lws_version"].startswith("4.3.5")
    # the harness against the package's library, under every profile (each a schedule of a release
    # build; `lwsbuild prove` runs them all), judged by lwsbuild's findings: clean
    for name in profiles.names():
        run = _stress(install, name, tmp_path / "logs", 3)  # 3 s x every profile: CI's budget
        assert run.summary is not None and run.connections > 0 and run.failing == [], (name, run.to_json())


@pytest.mark.build
@pytest.mark.network
def test_debians_own_package_shows_the_defect_under_asan(session_cache: Path, tmp_path: Path) -> None:
    # Debian's source package as Debian ships it (its own patches only, none of ours), configured
    # with 8 service threads the way the export does it, built with AddressSanitizer by Debian's own
    # build flags, in the cache's scratch (outside the repository)
    release = BuildRequest().prepare().source.release
    with cache.scratch("debian-asan") as scratch:
        tree, _, _, archive = debian.source_package(release, scratch)
        archive.unlink()
        debian.configure_max_smp(tree, 8)
        usr = _dpkg_build(tree, scratch / "root", DEB_CFLAGS_APPEND="-fsanitize=address -fno-omit-frame-pointer",
                          DEB_LDFLAGS_APPEND="-fsanitize=address")
        assert "#define LWS_MAX_SMP 8\n" in (usr / "include" / "lws_config.h").read_text()
        install = prefix_for(usr / "include", _library(usr), scratch / "prefix", variant="asan", series="none")
        runs: list[StressRun] = []
        for _ in range(3):  # measured: the first run shows it, within a second or two
            runs.append(_stress(install, "original-bug", scratch / f"logs{len(runs)}", 10))
            if runs[-1].failing:
                break
        first = runs[-1].first_finding
        assert first is not None, [r.to_json() for r in runs]
        print(f"Debian's package, LWS_MAX_SMP 8, ASan, profile original-bug: run {len(runs)}: {first.kind}: "
              f"{first.summary}")


@pytest.mark.build
@pytest.mark.network
def test_conan_create_offline_builds_the_recipe_and_its_round_trip(cli: Cli, conan_export: tuple[Path, Json],
                                                                  tmp_path: Path) -> None:
    out, summary = conan_export
    home = tmp_path / "conan-home"
    env = {**os.environ, "CONAN_HOME": str(home)}
    subprocess.run(["conan", "profile", "detect"], env=env, capture_output=True, check=True)
    (home / "global.conf").write_text(f"core.sources:download_cache={summary['download_cache']}\n")
    created = subprocess.run(["nice", "-n", "10", "conan", "create", str(out), "--version", summary["version"],
                              "--build=missing", "--no-remote", "-c", "tools.build:jobs=2", "--format", "json"],
                             env=env, capture_output=True, text=True, check=False, timeout=1500)
    assert created.returncode == 0, created.stderr[-4000:]
    assert "retrieved from local download cache" in created.stderr
    assert "round trip on 127.0.0.1" in created.stderr + created.stdout and "echoed" in created.stderr + created.stdout
    nodes = json.loads(created.stdout)["graph"]["nodes"].values()
    package = Path(next(n["package_folder"] for n in nodes if n.get("ref", "").startswith("libwebsockets/")))
    library = next(p for p in (package / "lib").glob("libwebsockets.so.*") if not p.is_symlink())
    assert carried.read(package / "share" / "lwsbuild" / "series.json").series == summary["series"]
    install = prefix_for(package / "include", library, tmp_path / "prefix")
    assert _smoke(cli, install.prefix)["lws_version"].startswith(summary["version"])
