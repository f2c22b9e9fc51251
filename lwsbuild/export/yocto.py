"""The series for embedded build systems, which cannot be built here (their files are checked for form).

Yocto: `libwebsockets_<version>.bbappend` adding the patches to SRC_URI (from `files/`), with a
CVE_STATUS for each CVE a patch of the series closes ("backported-patch"); every patch carries
`Upstream-Status:` and `CVE:` in its header, which Yocto's patch QA and cve-check read.
Buildroot: `package/libwebsockets/NNNN-*.patch` (our four-digit ids keep the order), each with its
`Upstream:` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lwsbuild.common.records import Record
from lwsbuild.export import quilt
from lwsbuild.series.fixes import PreparedTree

BUILDROOT_DIR = "buildroot/package/libwebsockets"
YOCTO_DIR = "yocto"


@dataclass(frozen=True)
class EmbeddedExport(Record):
    bbappend: str
    yocto_patches: tuple[str, ...]
    buildroot_patches: tuple[str, ...]
    cve_status: dict[str, str]


def bbappend(prepared: PreparedTree, chosen: list[quilt.QuiltPatch]) -> tuple[str, dict[str, str]]:
    release = prepared.source.release
    status = {cve: f"backported-patch: lwsbuild fix {p.fix.id} ({p.name})" for p in chosen for cve in p.cves}
    lines = [f"# libwebsockets {release.version} with the lwsbuild fix series '{prepared.series.name}'",
             "# (written by `lwsbuild export --format yocto`; the patches' headers say why each is there)",
             'FILESEXTRAPATHS:prepend := "${THISDIR}/files:"', "", "SRC_URI += \" \\"]
    lines += [f"    file://{p.name} \\" for p in chosen]
    lines += ['"', ""]
    lines += [f'CVE_STATUS[{cve}] = "{text}"' for cve, text in sorted(status.items())]
    return "\n".join(lines) + "\n", status


def write(prepared: PreparedTree, out: Path) -> EmbeddedExport:
    chosen = quilt.patches(prepared)
    version = prepared.source.release.version
    files = out / YOCTO_DIR / "files"
    buildroot = out / BUILDROOT_DIR
    files.mkdir(parents=True)
    buildroot.mkdir(parents=True)
    for patch in chosen:
        (files / patch.name).write_text(patch.text)
        (buildroot / patch.name).write_text(patch.text)
    text, status = bbappend(prepared, chosen)
    name = f"libwebsockets_{version}.bbappend"
    (out / YOCTO_DIR / name).write_text(text)
    return EmbeddedExport(f"{YOCTO_DIR}/{name}", tuple(f"{YOCTO_DIR}/files/{p.name}" for p in chosen),
                          tuple(f"{BUILDROOT_DIR}/{p.name}" for p in chosen), status)
