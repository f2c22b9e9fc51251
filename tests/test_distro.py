"""debian-patches: a distribution's security patches read at run time (lwsbuild/series/distro.py).

The fast tests use a package and a tree made here (no distribution content); the network test
reads the real security suite through this machine's apt configuration.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import cast

import pytest

from conftest import Cli
from lwsbuild.series import distro
from lwsbuild.series.fixes import PreparedTree
from lwsbuild.source import debian

PATCH = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: A Tester <tester@example.invalid>
Subject: [PATCH] hpack: bounds (CVE-2026-19773)

---
diff --git a/lib/x.c b/lib/x.c
--- a/lib/x.c
+++ b/lib/x.c
@@ -1,3 +1,4 @@
 int a;
+int guard;
 int b;
 int c;
"""


def _package(tmp_path: Path, patches: dict[str, str], series: str) -> Path:
    path = tmp_path / "pkg.debian.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for name, text in {"debian/patches/series": series,
                           **{f"debian/patches/{n}": t for n, t in patches.items()}}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_read_patches_follows_the_series_file(tmp_path: Path) -> None:
    archive = _package(tmp_path, {"a.patch": PATCH, "b.patch": "x"}, "# comment\nb.patch\n\na.patch -p1\n")
    assert [name for name, _ in distro.read_patches(archive)] == ["b.patch", "a.patch"]


def test_subject_from_dep3_and_from_git_log_headers() -> None:
    assert distro._subject(distro._header(PATCH)) == "hpack: bounds (CVE-2026-19773)"
    log = "Author: Someone\nDate: today\n\nNN-1: a title: with colons\n\nbody\n--- a/f\n"
    assert distro._subject(distro._header(log)) == "NN-1: a title: with colons"


def test_security_archive_from_deb822_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "x.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: trixie-security\nComponents: main\n"
        "Signed-By: /k.gpg\n")
    monkeypatch.setattr(debian, "_SOURCES", [tmp_path / "none", tmp_path / "sources.list.d"])
    assert distro.security_archive() == debian.AptEntry("http://mirror.invalid/debian-security", "/k.gpg")
    (tmp_path / "sources.list.d" / "x.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [signed-by=/s.gpg] http://mirror.invalid/sec bookworm-security main\n")
    monkeypatch.setattr(debian, "_SOURCES", [tmp_path / "sources.list"])
    assert distro.security_archive() == debian.AptEntry("http://mirror.invalid/sec", "/s.gpg")


class _Stand:
    """What classify() reads of a PreparedTree: the results (fix id → status)."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.results = [type("R", (), {"fix": type("F", (), {"id": k})(), "status": v})() for k, v in statuses.items()]


def _Prepared(statuses: dict[str, str]) -> PreparedTree:
    return cast(PreparedTree, _Stand(statuses))


def test_classify_names_the_cve_and_our_fix(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "x.c").write_text("int a;\nint b;\nint c;\n")
    patch = distro.classify("CVE-2026-19773.patch", PATCH, tree, _Prepared({"0105": "applied"}), {"LWS_ROLE_H2"})
    assert patch.cves == ("CVE-2026-19773",) and patch.files == ("lib/x.c",) and patch.on_release == "applies"
    assert patch.ours == ({"cve": "CVE-2026-19773", "fix": "0105", "status": "applied", "compiled_in": False},)
    subprocess.run(["git", "apply", "-p1", "-"], input=PATCH, text=True, cwd=tree, check=True)
    assert distro.classify("p", PATCH, tree, _Prepared({}), None).on_release == "present"
    unknown = distro.classify("CVE-2030-0001.patch", PATCH.replace("CVE-2026-19773", "CVE-2030-0001"), tree,
                              _Prepared({}), None)
    assert unknown.ours[0]["fix"] is None and "cves.toml" in unknown.ours[0]["status"]


@pytest.mark.network
def test_debian_435_security_patches_are_each_covered_by_a_fix_of_ours(cli: Cli) -> None:
    result = cli("debian-patches", "--json", timeout=600)
    if result.returncode == 3 and "security" in result.stderr:
        pytest.skip(f"no Debian security suite reachable here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    for patch in result.json["patches"]:
        assert patch["on_release"] == "applies", patch
        assert patch["cves"] and all(o["status"] in ("applied", "upstream") for o in patch["ours"]), patch
