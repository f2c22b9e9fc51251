"""`lwsbuild export --format F`: one prepared (fixed) tree, written in a packager's conventions.

The output directory appears whole or not at all (export/output.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwsbuild.export import output, quilt
from lwsbuild.series.fixes import PreparedTree

FORMATS = ("quilt", "debian", "conan", "yocto")


def export(prepared: PreparedTree, fmt: str, out: Path, max_smp: int | None = None) -> dict[str, Any]:
    """Write the export; its summary as JSON data (paths relative to `out` where they are inside it).
    `max_smp`: the Debian package's service threads (None: Debian's configure as it is)."""
    quilt.refuse_unfixed(prepared.unfixed)
    with output.fresh(out) as tmp:
        if fmt == "quilt":
            chosen = quilt.write(prepared, tmp)
            summary: dict[str, Any] = {"patches": [f"patches/{p.name}" for p in chosen], "series_file": "patches/series"}
        elif fmt == "debian":
            from lwsbuild.export import debian

            summary = debian.merge(prepared, tmp, max_smp).to_json()
            summary["source_dir"] = str(out / Path(summary["source_dir"]).relative_to(tmp))
        elif fmt == "conan":
            from lwsbuild.export import conan

            summary = conan.write(prepared, tmp).to_json()
            summary["recipe"], summary["download_cache"] = str(out), str(out / conan.DOWNLOAD_CACHE)
        else:
            from lwsbuild.export import yocto

            summary = yocto.write(prepared, tmp).to_json()
    release = prepared.source.release
    return {"format": fmt, "output": str(out), "lws_version": release.version, "tree_id": prepared.source.tree_id,
            "series": prepared.series.name, **summary}


def render(summary: dict[str, Any]) -> str:
    lines = [(f"libwebsockets {summary['lws_version']}, series '{summary['series']}' as {summary['format']}: "
             f"{summary['output']}")]
    if summary["format"] == "debian":
        lines += [f"  Debian {summary['debian_version']} ({summary['suite']}) -> {summary['version']}",
                  f"  Debian's own patches kept: {', '.join(summary['debian_patches']) or 'none'}",
                  "  carried by Debian already: " + (", ".join(f"{k} ({v})" for k, v in summary["carried"].items())
                                                    or "none"),
                  f"  appended: {len(summary['appended'])} patch(es)",
                  "  configure: " + (" ".join(f"-D{k}={v}" for k, v in summary["configure"].items())
                                     or "Debian's debian/rules as they are"),
                  f"  build: cd {summary['source_dir']} && dpkg-buildpackage -b -us -uc"]
    elif summary["format"] == "conan":
        lines += [f"  {len(summary['patches'])} patch(es); source sha256 {summary['sha256']}",
                  (f"  build offline: conan create {summary['recipe']} --version {summary['version']} "
                  f"-c core.sources:download_cache={summary['download_cache']}")]
    elif summary["format"] == "yocto":
        lines += [(f"  {summary['bbappend']}: {len(summary['yocto_patches'])} patch(es), "
                  f"{len(summary['cve_status'])} CVE_STATUS"), (f"  Buildroot: {len(summary['buildroot_patches'])} "
                  "patch(es) under buildroot/package/libwebsockets/")]
    else:
        lines.append(f"  {len(summary['patches'])} patch(es) and {summary['series_file']}")
    return "\n".join(lines)
