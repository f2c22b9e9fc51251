"""The series merged into Debian's own source package of a release, for `dpkg-buildpackage`.

Debian's source package (the newest a security suite, else the release's own suites, carry; found
through this machine's apt configuration at run time, every file verified by the sha256 of the
signed index: series/distro.py) is unpacked as `dpkg-source -x --skip-patches` would. Its own patches stay first, in
their order. A fix of ours whose CVE one of Debian's patches names (the classification
`debian-patches` prints) is recognised as carried and not added again; the others are appended to
debian/patches/series as `lwsbuild-NNNN-*.patch` with DEP-3 headers. A changelog entry
`<Debian's version>+lwsbuild1` sorts after Debian's, and the -dev package installs
usr/share/lwsbuild/series.json (series/carried.py), which `lwsbuild audit /usr` reads.

Debian's configure is left as it is (its debian/rules set no LWS_MAX_SMP: lws's default, one service
thread), unless `max_smp` is given: then `-DLWS_MAX_SMP=N` is added to the options debian/rules passes
`dh_auto_configure --` (its override_dh_auto_configure), and the changelog entry and series.json say so.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

from lwsbuild.common import cache, prefix
from lwsbuild.common.records import Record
from lwsbuild.errors import ExportError
from lwsbuild.export import quilt
from lwsbuild.series import carried, distro
from lwsbuild.series.fixes import PreparedTree
from lwsbuild.source.archive import download, extract
from lwsbuild.source.releases import Release

PATCH_PREFIX = "lwsbuild-"
VERSION_SUFFIX = "+lwsbuild1"  # sorts after Debian's own version (dpkg --compare-versions)
RECORD = "debian/lwsbuild/" + prefix.SERIES_NAME  # installed as usr/<prefix.SERIES>


@dataclass(frozen=True)
class DebianExport(Record):
    source_dir: str  # the merged, unpacked source package: run dpkg-buildpackage in it
    debian_version: str  # Debian's own
    version: str  # ours, Debian's + VERSION_SUFFIX
    suite: str
    debian_patches: tuple[str, ...]  # Debian's own, kept first
    carried: dict[str, str]  # our fix id -> the Debian patch that carries it
    appended: tuple[str, ...]  # our patch files appended to debian/patches/series
    configure: dict[str, str]  # CMake options added to debian/rules ({} = Debian's configure as it is)


def _unpack(files: list[tuple[str, str, str]], tree: Path) -> tuple[Path, Path]:
    """The upstream tarball and Debian's debian/ (a 3.0 (quilt) package: what `dpkg-source -x
    --skip-patches` makes of them), each file verified and cached by the sha256 of the signed index;
    (the .orig tarball copied beside the tree, where `dpkg-source -b` wants it; the cached .debian.tar)."""
    orig = next((f for f in files if re.search(r"\.orig\.tar\.", f[1])), None)
    debian_tar = next((f for f in files if ".debian.tar." in f[1]), None)
    if orig is None or debian_tar is None:
        raise ExportError(f"Debian's source package lists no .orig.tar.* or .debian.tar.* ({', '.join(f[1] for f in files)})")
    with cache.scratch("debian-source") as scratch:
        orig_path = download(*orig, scratch)
        extract(orig_path, tree)
        shutil.copyfile(orig_path, tree.parent / orig[1])
        archive = download(*debian_tar, scratch)
        extract(archive, tree / "debian")
        kept = tree.parent / ".debian.tar"
        shutil.copyfile(archive, kept)  # read again below; removed before the export is published
    return tree.parent / orig[1], kept


def _carried_fixes(archive: Path, prepared: PreparedTree) -> dict[str, str]:
    """Our fix id -> Debian's patch that names its CVE and applies to the release as released."""
    found: dict[str, str] = {}
    for name, text in distro.read_patches(archive):
        patch = distro.classify(name, text, prepared.source.path, prepared, None)
        for ours in patch.ours:
            if ours["fix"] and patch.on_release == "applies":
                found.setdefault(ours["fix"], name)
    return found


def _changelog_entry(source: str, version: str, prepared: PreparedTree, appended: list[quilt.QuiltPatch],
                     carried_by: dict[str, str], configure: dict[str, str]) -> str:
    def item(text: str) -> list[str]:
        return textwrap.wrap(text, width=76, initial_indent="  * ", subsequent_indent="    ")

    lines = item(f"Apply the lwsbuild fix series '{prepared.series.name}' for libwebsockets "
                 f"{prepared.source.release.version} ({len(appended)} patches appended to debian/patches/series): "
                 + "; ".join(f"{p.fix.id} {p.fix.title}" for p in appended) + ".")
    if carried_by:
        lines += item("Already carried by Debian's own patches, not duplicated: "
                      + ", ".join(f"{fix} ({name})" for fix, name in sorted(carried_by.items())) + ".")
    if "LWS_MAX_SMP" in configure:
        lines += item(f"debian/rules: configure with -DLWS_MAX_SMP={configure['LWS_MAX_SMP']} (service threads; "
                      "Debian's own rules leave lws's default, 1).")
    lines += item(f"Install usr/{prefix.SERIES} in the -dev package: what this package carries "
                  "(`lwsbuild audit /usr` reads it).")
    when = max((p.date for p in appended), default=None)
    stamp = format_datetime(when) if when else "Thu, 01 Jan 1970 00:00:00 +0000"
    return (f"{source} ({version}) UNRELEASED; urgency=medium\n\n" + "\n".join(lines)
            + f"\n\n -- {quilt.AUTHOR}  {stamp}\n\n")


def _dev_install(tree: Path) -> Path:
    found = sorted((tree / "debian").glob("*-dev.install"))
    if len(found) != 1:
        raise ExportError(f"Debian's source package has {len(found)} debian/*-dev.install files, lwsbuild expects one "
                          f"(to install {RECORD})")
    return found[0]


def configure_max_smp(tree: Path, threads: int) -> None:
    """Make debian/rules configure lws with `threads` service threads: -DLWS_MAX_SMP=N among the
    options its override_dh_auto_configure passes `dh_auto_configure --` (an override of that name
    is added when the rules have none)."""
    if threads < 1:
        raise ExportError(f"LWS_MAX_SMP {threads}: lws needs one service thread at least")
    rules = tree / "debian" / "rules"
    text = rules.read_text()
    option = f"-DLWS_MAX_SMP={threads}"
    text, set_already = re.subn(r"-DLWS_MAX_SMP=\S*", option, text)
    if not set_already:
        text, added = re.subn(r"^(\t\s*dh_auto_configure\b[^\n]*?--)([ \t]|\\?$)", rf"\1 {option}\2", text,
                              count=1, flags=re.MULTILINE)
        if not added and re.search(r"^override_dh_auto_configure\s*:", text, re.MULTILINE):
            raise ExportError(f"{rules}: override_dh_auto_configure passes no `dh_auto_configure --` options "
                              f"to add {option} to")
        if not added:
            text = text.rstrip("\n") + f"\n\noverride_dh_auto_configure:\n\tdh_auto_configure -- {option}\n"
    rules.write_text(text)


def source_package(release: Release, out: Path) -> tuple[Path, str, str, Path]:
    """Debian's source package of `release`, unpacked under `out` (patches not applied: dpkg-source
    applies debian/patches before it builds): (tree, suite, Debian's version, the .debian.tar kept
    beside the tree for reading its patches; the caller removes it)."""
    suite, debian_version, files = distro.locate_package(release)
    out.mkdir(parents=True, exist_ok=True)
    tree = out / f"libwebsockets-{release.version}"
    _, archive = _unpack(files, tree)
    return tree, suite, debian_version, archive


def merge(prepared: PreparedTree, out: Path, max_smp: int | None = None) -> DebianExport:
    """Debian's source package of the release, with the series merged, unpacked under `out`;
    `max_smp`: configure that many service threads (None: Debian's configure as it is)."""
    quilt.refuse_unfixed(prepared.unfixed)
    tree, suite, debian_version, archive = source_package(prepared.source.release, out)
    configure = {} if max_smp is None else {"LWS_MAX_SMP": str(max_smp)}
    if max_smp is not None:
        configure_max_smp(tree, max_smp)

    carried_by = _carried_fixes(archive, prepared)
    ours = [p for p in quilt.patches(prepared) if p.fix.id not in carried_by]
    patches_dir = tree / "debian" / "patches"
    patches_dir.mkdir(exist_ok=True)
    series = patches_dir / "series"
    debian_patches = tuple(name for name, _ in distro.read_patches(archive))
    for patch in ours:
        (patches_dir / (PATCH_PREFIX + patch.name)).write_text(patch.text)
    listed = series.read_text() if series.exists() else ""
    series.write_text(listed + ("" if not listed or listed.endswith("\n") else "\n")
                      + quilt.series_file(prepared, ours, PATCH_PREFIX + "{file}", {
                          fix: f"carried by Debian: {name}" for fix, name in carried_by.items()}).replace(
                          "# lwsbuild", "# appended by lwsbuild export: the lwsbuild", 1))

    changelog = tree / "debian" / "changelog"
    head = changelog.read_text()
    source = head.split(" ", 1)[0]
    version = debian_version + VERSION_SUFFIX
    changelog.write_text(_changelog_entry(source, version, prepared, ours, carried_by, configure) + head)

    record = tree / RECORD
    record.parent.mkdir(parents=True)
    cache.write_json_atomic(record, carried.of(prepared, f"debian {version}", carried_by, configure).to_json())
    install = _dev_install(tree)
    install.write_text(install.read_text().rstrip("\n") + f"\n{RECORD} usr/{prefix.SHARE_DIR}\n")
    archive.unlink()
    return DebianExport(str(tree), debian_version, version, suite, debian_patches, carried_by,
                        tuple(PATCH_PREFIX + p.name for p in ours), configure)
