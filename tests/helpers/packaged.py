"""A library another tool built (a .deb's files, a Conan package), made runnable by lwsbuild's smoke
client and stress harness: the layout probe and the harness compiled against *its* headers (its
lws_config.h decides the struct layout), linked to *its* library.

smoke and stress also read a provenance.json: the one lwsbuild's own build of the same release,
variant and series would install is put beside (nothing is built for it), for what they take from it
(the release's version, the series, whether a sanitizer runtime is needed and its options). Everything
they run is the package's library; with a sanitizer variant, the probe and the harness are compiled
with its flags (the package must have been built with that sanitizer too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from lwsbuild.build import harness, provenance
from lwsbuild.build.cmake import Install
from lwsbuild.common import prefix as layout
from lwsbuild.request import BuildRequest

HARNESS_DIR = Path(__file__).resolve().parents[2] / "lwsbuild" / "build" / "harness"


def _cc(flags: tuple[str, ...], *args: str | Path) -> None:
    result = subprocess.run(["cc", "-O1", "-Wall", *flags, *map(str, args)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def prefix_for(include: Path, library: Path, dest: Path, variant: str = "release", series: str = "all") -> Install:
    """An install prefix at `dest` around the package's headers and shared library; the Install of
    lwsbuild's own `variant` build of `series` (planned, not built) with its prefix there: what
    `smoke --prefix` and `stress.run` take."""
    spec = BuildRequest(variant=variant, series=series).plan()
    sanitizer = spec.variant.sanitizer
    flags = (*sanitizer.c_flags, *sanitizer.program_flags) if sanitizer else ()
    (dest / "lib").mkdir(parents=True)
    (dest / "bin").mkdir()
    (dest / layout.SHARE_DIR).mkdir(parents=True)
    os.symlink(include, dest / "include")
    shutil.copy2(library, dest / "lib" / library.name)
    os.symlink(library.name, dest / "lib" / "libwebsockets.so")
    provenance.write(dest / layout.PROVENANCE, spec.provenance())
    work = dest / "work"
    work.mkdir()
    _cc(flags, "-I", include, HARNESS_DIR / "layout_probe.c", "-o", work / "probe")
    probe_env = {**os.environ, **sanitizer.build_env(os.environ)} if sanitizer else None
    subprocess.run([work / "probe", work / "layout.json"], check=True, timeout=60, env=probe_env)
    probed = json.loads((work / "layout.json").read_text())
    probed["soname"] = library.name
    (dest / layout.LAYOUT).write_text(json.dumps(probed))
    (work / harness.HEADER).write_text(harness.c_header())
    _cc(flags, "-I", work, "-I", include, "-I", HARNESS_DIR, HARNESS_DIR / "stress_harness.c", "-o", dest / layout.STRESS_HARNESS,
        "-L", dest / "lib", "-lwebsockets", "-pthread", "-Wl,-rpath,$ORIGIN/../lib")
    return Install(spec, dest, work, cached=True)
