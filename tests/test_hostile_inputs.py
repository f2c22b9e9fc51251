"""Hostile inputs beyond sources (issue 20): wheels for `audit`/`verify`, data files, series names,
report directories, the smoke client's URL, subprotocol and prefix, link chains, scratch leftovers.

Each case: one error line with the documented exit code, in bounded time (every subprocess has a
timeout far below what the hole cost: 130 s to hours), nothing written outside the named directory,
nothing loaded from outside a named prefix.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, Cli, CliResult, run_cli
from helpers import hostile_files
from helpers.checks import error_line
from lwsbuild.common import prefix

BOUND_S = 60  # every case here answers in a second or two; the holes took minutes to hours


def _refused(result: CliResult, exit_code: int, *words: str) -> str:
    assert result.returncode == exit_code, result.stderr
    line = error_line(result)
    assert "unexpected" not in line and "Traceback" not in result.stderr, line
    for word in words:
        assert word in line, line
    return line


# --- link chains: admission is linear, and has a deadline ----------------------------------------

def test_a_link_chain_archive_is_refused_in_bounded_time(tmp_path: Path) -> None:
    # 200 links of 4 KB, each through the 40 before it: 130 s before (every link re-walked its chain).
    archive = hostile_files.link_chain_tar(tmp_path / "chain.tar.gz", links=200, chain=41)
    result = run_cli("fetch", "--source", f"archive:{archive}", "--allow-unpinned", cache=tmp_path / "c",
                     timeout=BOUND_S)
    _refused(result, 3, "follows more than 40 links")


def test_many_links_are_refused_by_their_total_target_size(tmp_path: Path) -> None:
    # 99,000 links of 4 KB (hours before): all targets together are bounded, so resolution is too.
    archive = hostile_files.link_chain_tar(tmp_path / "many.tar.gz", links=99_000, chain=39)
    result = run_cli("fetch", "--source", f"archive:{archive}", "--allow-unpinned", cache=tmp_path / "c",
                     timeout=BOUND_S)
    _refused(result, 3, "KiB of link targets")


def test_chains_within_the_kernels_limit_are_admitted(tmp_path: Path) -> None:
    from lwsbuild.source import archive

    tar = hostile_files.link_chain_tar(tmp_path / "ok.tar.gz", links=120, chain=39, target_bytes=300)
    archive.extract(tar, tmp_path / "tree")
    assert (tmp_path / "tree" / "l38").resolve() == (tmp_path / "tree").resolve()


def test_extraction_has_the_download_deadline(tmp_path: Path) -> None:
    from helpers.archives import tar_of

    tar = tar_of(tmp_path / "wide.tar", [("file", f"f{i}", b"x") for i in range(2000)])
    result = run_cli("fetch", "--source", f"archive:{tar}", "--allow-unpinned", cache=tmp_path / "c",
                     env={"LWSBUILD_DOWNLOAD_TIMEOUT": "0.000001"}, timeout=BOUND_S)
    _refused(result, 3, "took longer than", "to admit")


def test_a_zip_member_without_a_name_is_refused(tmp_path: Path) -> None:
    """Found by bench/fuzz.py: zipfile's own is_dir() indexes the name."""
    archive = tmp_path / "noname.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("")
        info.create_system, info.external_attr = 3, 0o100644 << 16
        zf.writestr(info, b"a")
    result = run_cli("fetch", "--source", f"archive:{archive}", "--allow-unpinned", cache=tmp_path / "c",
                     timeout=BOUND_S)
    _refused(result, 3, "empty name")


def test_a_home_directory_of_no_user_is_one_line(tmp_path: Path) -> None:
    """Found by bench/fuzz.py: pathlib's expanduser raises RuntimeError for ~nosuchuser."""
    for args in (["fetch", "--source", "dir:~lwsbuild-no-such-user/x"], ["smoke", "--prefix", "~lwsbuild-no-such-user"]):
        _refused(run_cli(*args, cache=tmp_path / "c", timeout=BOUND_S), 2, "no such user's home directory")
    from lwsbuild.errors import UsageError
    from lwsbuild.source import fetch

    with pytest.raises(UsageError, match="NUL byte"):  # found by bench/fuzz.py: pwd's ValueError
        fetch.parse_spec("dir:~\0")
    result = run_cli("versions", env={"LWSBUILD_CACHE": "~lwsbuild-no-such-user/c"}, timeout=BOUND_S)
    assert result.returncode in (0, 2) and "unexpected" not in result.stderr


# --- audit and verify on hostile wheels ----------------------------------------------------------

def _audit(target: Path) -> CliResult:
    return run_cli("audit", str(target), timeout=BOUND_S)


@pytest.mark.parametrize("what", ["provenance", "sbom"])
def test_audit_refuses_json_nested_200000_deep(what: str, tmp_path: Path) -> None:
    deep = hostile_files.nested(200_000, '{"a":', "}")
    wheel = hostile_files.lwsbuild_wheel(tmp_path / "deep.whl", provenance_bytes=deep if what == "provenance" else None,
                                         sbom=deep if what == "sbom" else None)
    _refused(_audit(wheel), 2, "nests arrays or objects more than")


@pytest.mark.parametrize("sbom, words", [
    (b'{"vulnerabilities": 5}', "vulnerabilities is 5"),
    (b'{"vulnerabilities": [{"id": "CVE-2025-1", "analysis": [1]}]}', "analysis is [1]"),
    (b'{"vulnerabilities": [{"id": "CVE-2025-1", "analysis": {"state": {"x": 1}}}]}', "analysis state is"),
])
def test_audit_refuses_an_sbom_of_another_shape(sbom: bytes, words: str, tmp_path: Path) -> None:
    wheel = hostile_files.lwsbuild_wheel(tmp_path / "shape.whl", sbom=sbom)
    _refused(_audit(wheel), 2, words)


def test_audit_reads_a_well_formed_wheel(tmp_path: Path) -> None:
    """The refusals above are not of everything: the same builder's wheel with a valid SBOM audits."""
    sbom = json.dumps({"vulnerabilities": [{"id": "CVE-2025-11677", "analysis": {"state": "resolved"}}]}).encode()
    result = run_cli("audit", "--json", str(hostile_files.lwsbuild_wheel(tmp_path / "ok.whl", sbom=sbom)),
                     timeout=BOUND_S)
    assert result.returncode == 0, result.stderr
    assert result.json["sbom"] is True


@pytest.mark.parametrize("header, words", [
    ({"method": 93}, "compression method 93"),  # zstd: zipfile has no decoder
    ({"flag_bits": 0x1}, "is encrypted"),
    ({"needs_version": 64}, "zip file version 6.4"),  # found by bench/fuzz.py
    ({"local_name_byte": 0x80}, "is corrupt"),  # a local name that is not UTF-8: found by bench/fuzz.py
])
def test_audit_refuses_members_zipfile_cannot_read(header: dict[str, int], words: str, tmp_path: Path) -> None:
    wheel = hostile_files.lwsbuild_wheel(tmp_path / "odd.whl", compression=zipfile.ZIP_STORED)
    hostile_files.set_member_header(wheel, **header)
    _refused(_audit(wheel), 2, words)


def test_audit_refuses_a_member_that_inflates_past_the_cap(tmp_path: Path) -> None:
    # 64 MiB of zeros deflate to 64 kB; the cap (4 MiB) is checked on the declared size, before a byte.
    padded = hostile_files.provenance_json() + b" " * (64 << 20)
    wheel = hostile_files.lwsbuild_wheel(tmp_path / "bomb.whl", provenance_bytes=padded)
    assert wheel.stat().st_size < 1 << 20
    _refused(_audit(wheel), 2, "larger than")


def test_audit_refuses_a_central_directory_of_too_many_members(tmp_path: Path) -> None:
    wheel = tmp_path / "wide.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for i in range(30):
            zf.writestr(f"m{i}", b"")
    data = bytearray(wheel.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8:at + 12] = (65_000).to_bytes(2, "little") * 2  # the end record's counts, as a crafted file says
    wheel.write_bytes(bytes(data))
    _refused(_audit(wheel), 2, "declares 65,000 members")


@pytest.mark.parametrize("name", ["fifo", "devzero"])
def test_audit_and_verify_read_only_regular_files(name: str, tmp_path: Path) -> None:
    target = Path("/dev/zero")
    if name == "fifo":
        target = tmp_path / "wheel.whl"
        os.mkfifo(target)
    for command in ("audit", "verify"):
        result = run_cli(command, str(target), cache=tmp_path / "c", timeout=BOUND_S)
        assert result.returncode == 2, result.stderr
        assert "unexpected" not in error_line(result)


def test_verify_refuses_a_deep_provenance_before_rebuilding(tmp_path: Path) -> None:
    wheel = hostile_files.lwsbuild_wheel(tmp_path / "deep.whl", provenance_bytes=hostile_files.nested(200_000))
    result = run_cli("verify", str(wheel), cache=tmp_path / "c", timeout=BOUND_S)
    _refused(result, 2, "nests arrays or objects")
    assert not (tmp_path / "c" / "builds").exists()


# --- data files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["deep", "devzero", "fifo", "large"])
def test_a_hostile_variants_file_is_one_line(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "variants.toml"
    if kind == "deep":
        path.write_text("[variant.x]\ncmake_defines = " + "[" * 100_000 + "]" * 100_000 + "\n")
    elif kind == "devzero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"# " + b"x" * (5 << 20) + b"\n")
    result = run_cli("variants", env={"LWSBUILD_VARIANTS_FILE": str(path)}, timeout=BOUND_S)
    _refused(result, 2, "LWSBUILD_VARIANTS_FILE")


# --- series names --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["build", "wheel", "patch"])
def test_a_series_name_is_bounded_before_any_work(command: str, tmp_path: Path) -> None:
    name = "all-0007" * 1250 + "all"  # 10,003 characters, each term valid: it built the library before
    result = run_cli(command, "--series", name, cache=tmp_path / "c", timeout=BOUND_S)
    _refused(result, 2, "64 characters at most")
    assert not any((tmp_path / "c" / area).exists() for area in ("trees", "prepared", "builds"))


# --- report directories --------------------------------------------------------------------------

def _report_targets(tmp_path: Path) -> dict[str, Path]:
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    return {"/dev/null": Path("/dev/null"), "an existing file": afile, "a path under a file": afile / "sub",
            "a directory in /proc": Path(f"/proc/{os.getpid()}/report")}


@pytest.mark.parametrize("command", ["stress", "prove"])
def test_a_report_directory_that_cannot_be_one_is_refused_before_building(command: str, tmp_path: Path) -> None:
    for label, target in _report_targets(tmp_path).items():
        result = run_cli(command, "--report", str(target), cache=tmp_path / "c", timeout=BOUND_S)
        line = _refused(result, 2, "report directory")
        assert str(target) in line, (label, line)
        assert not (tmp_path / "c" / "builds").exists(), f"{label}: it built before checking --report"
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_report_files_replace_planted_links_instead_of_writing_through_them(tmp_path: Path) -> None:
    from lwsbuild.common import reportdir
    from lwsbuild.errors import ReportDirError

    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    report = reportdir.ready(tmp_path / "report")
    for name in ("stdout.log", "stress.json"):
        (report / name).symlink_to(outside)
    with reportdir.create(report / "stdout.log") as out:
        out.write(b"log\n")
    reportdir.write_text(report / "stress.json", "{}\n")
    assert outside.read_text() == "precious\n"
    assert not (report / "stdout.log").is_symlink() and (report / "stdout.log").read_text() == "log\n"
    (report / "profile").symlink_to(tmp_path)
    with pytest.raises(ReportDirError, match="is never followed"):
        reportdir.subdirectory(report, "profile")


@pytest.mark.build
@pytest.mark.network
def test_a_stress_report_with_planted_links_writes_nothing_outside(cli: Cli, release_prefix: Path,
                                                                   tmp_path: Path) -> None:
    outside = {name: tmp_path / f"outside-{name}" for name in ("stdout.log", "stderr.log", "stress.json", "stress.png")}
    report = tmp_path / "report"
    report.mkdir()
    for name, target in outside.items():
        target.write_text("precious\n")
        (report / name).symlink_to(target)
    result = cli("stress", "--report", str(report), "--duration", "2", "--threads", "2", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert all(target.read_text() == "precious\n" for target in outside.values())
    for name in ("stdout.log", "stderr.log", "stress.json"):
        assert stat.S_ISREG((report / name).lstat().st_mode), name


# --- the smoke client --------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--url", "ws://[::1"], "is malformed"),
    (["--url", "ws://[zz::1]:80/"], "is malformed"),
    (["--url", "ws://127.0.0.1/a\r\nX-Injected: 1"], "control character"),
    (["--url", "ws://127.0.0.1:99999/"], "is malformed"),
    (["--subprotocol", "a\r\nX-Injected: 1"], "is not a list of WebSocket subprotocol names"),
    (["--subprotocol", "a b"], "is not a list of WebSocket subprotocol names"),
])
def test_smoke_refuses_urls_and_subprotocols_it_cannot_send_as_given(args: list[str], words: str,
                                                                   tmp_path: Path) -> None:
    for command in ([sys.executable, "-m", "lwsbuild", "smoke"], [sys.executable, "-m", "lwsbuild.native.smoke"]):
        result = subprocess.run([*command, *args, "--prefix", str(tmp_path / "none")], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO), "LWSBUILD_CACHE": str(tmp_path / "c")},
                                timeout=BOUND_S, check=False)
        _refused(CliResult(result.returncode, result.stdout, result.stderr), 2, words)


def _constructor_library(tmp_path: Path, marker: Path, name: str) -> Path:
    """A shared library whose constructor writes `marker`: loading it is what must not happen."""
    source = tmp_path / "evil.c"
    source.write_text('#include <stdio.h>\n__attribute__((constructor)) static void run(void) {\n'
                      f'  FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("loaded", f); fclose(f); }}\n}}\n')
    out = tmp_path / "evil" / name
    out.parent.mkdir(exist_ok=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out), str(source)], check=True, timeout=120)
    return out


def test_a_layout_soname_leaving_the_prefix_is_refused_unloaded(tmp_path: Path) -> None:
    marker = tmp_path / "loaded"
    _constructor_library(tmp_path, marker, "libwebsockets.so.19")
    root = tmp_path / "prefix"
    (root / "lib").mkdir(parents=True)
    (root / prefix.LAYOUT).parent.mkdir(parents=True, exist_ok=True)
    (root / prefix.LAYOUT).write_text(json.dumps({"soname": "../../evil/libwebsockets.so.19"}))
    result = run_cli("smoke", "--prefix", str(root), timeout=BOUND_S)
    _refused(result, 7, "is not a file name libwebsockets.so.N")
    assert not marker.exists()


@pytest.mark.build
@pytest.mark.network
def test_a_prefix_library_linked_outside_is_refused_unloaded(release_prefix: Path, tmp_path: Path) -> None:
    import shutil

    from lwsbuild.native import library

    marker = tmp_path / "loaded"
    name = library.soname(release_prefix)
    evil = _constructor_library(tmp_path, marker, name)
    root = tmp_path / "prefix"
    shutil.copytree(release_prefix, root, symlinks=True)
    (root / "lib" / name).unlink()
    (root / "lib" / name).symlink_to(evil)
    result = run_cli("smoke", "--prefix", str(root), timeout=BOUND_S)
    _refused(result, 7, "leads outside the prefix")
    assert not marker.exists()


def test_a_sanitizer_runtime_is_preloaded_only_by_its_name_from_a_system_file(tmp_path: Path) -> None:
    import dataclasses

    from helpers.planned import provenance
    from lwsbuild.errors import SanitizerRuntimeError
    from lwsbuild.native import library

    asan = provenance("asan")
    assert asan.sanitizer is not None
    renamed = dataclasses.replace(asan, sanitizer=dataclasses.replace(asan.sanitizer, runtime="evil.so"))
    with pytest.raises(SanitizerRuntimeError, match="not a sanitizer runtime's name"):
        library.runtime_path(renamed)
    planted = tmp_path / asan.sanitizer.runtime
    planted.write_bytes(b"")
    planted.chmod(0o666)  # anyone may change it: not a system file
    elsewhere = dataclasses.replace(asan, sanitizer=dataclasses.replace(asan.sanitizer, runtime_path=str(planted)))
    try:
        assert library.runtime_path(elsewhere) != planted.resolve()
    except SanitizerRuntimeError:
        pass  # no compiler to ask: refused, not the planted file


# --- scratch belongs under the cache ----------------------------------------------------------

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.network
def test_patch_leaves_nothing_in_the_system_temp_directory_even_when_killed(lws_tree: Path, tmp_path: Path) -> None:
    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
    cache = tmp_path / "cache"
    stale = cache / "scratch" / f".apply-{_dead_pid()}-stale"
    stale.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "LWSBUILD_CACHE": str(cache), "TMPDIR": str(system_tmp)}
    command = [sys.executable, "-m", "lwsbuild", "patch", "--source", f"dir:{lws_tree}"]
    for delay in (0.5, 1.0, 1.5, 2.0):  # killed at several points of copying and applying
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=BOUND_S)
    assert sorted(p.name for p in system_tmp.iterdir()) == []
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert finished.returncode == 0, finished.stderr
    assert sorted(p.name for p in system_tmp.iterdir()) == []
    assert not stale.exists(), "a dead run's scratch was not swept"
    assert list((cache / "scratch").iterdir()) == []
