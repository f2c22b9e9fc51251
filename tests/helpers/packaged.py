"""A library another tool built (a .deb's files, a Conan package), made runnable by lwsbuild's smoke
client and stress harness: the layout probe and the harness compiled against *its* headers (its
lws_config.h decides the struct layout), linked to *its* library.

smoke and stress also read a provenance.json: the one of lwsbuild's own release build of the same
release is put beside, for the two things they take from it (the release's version, and that no
sanitizer runtime is needed). Everything they run is the package's library.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

from lwsbuild.build import harness
from lwsbuild.build.cmake import Install
from lwsbuild.common import prefix as layout
from lwsbuild.request import BuildRequest

HARNESS_DIR = Path(__file__).resolve().parents[2] / "lwsbuild" / "build" / "harness"


def _cc(*args: str | Path) -> None:
    result = subprocess.run(["cc", "-O1", "-Wall", *map(str, args)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def prefix_for(include: Path, library: Path, dest: Path) -> Install:
    """An install prefix at `dest` around the package's headers and shared library; the release
    build's Install with its prefix moved there (what `stress.run` takes)."""
    release = BuildRequest(variant="release").build()
    (dest / "lib").mkdir(parents=True)
    (dest / "bin").mkdir()
    (dest / layout.SHARE_DIR).mkdir(parents=True)
    os.symlink(include, dest / "include")
    shutil.copy2(library, dest / "lib" / library.name)
    os.symlink(library.name, dest / "lib" / "libwebsockets.so")
    shutil.copy2(release.prefix / layout.PROVENANCE, dest / layout.PROVENANCE)
    work = dest / "work"
    work.mkdir()
    _cc("-I", include, HARNESS_DIR / "layout_probe.c", "-o", work / "probe")
    subprocess.run([work / "probe", work / "layout.json"], check=True, timeout=60)
    probed = json.loads((work / "layout.json").read_text())
    probed["soname"] = library.name
    (dest / layout.LAYOUT).write_text(json.dumps(probed))
    (work / harness.HEADER).write_text(harness.c_header())
    _cc("-I", work, "-I", include, "-I", HARNESS_DIR, HARNESS_DIR / "stress_harness.c", "-o", dest / layout.STRESS_HARNESS,
        "-L", dest / "lib", "-lwebsockets", "-pthread", "-Wl,-rpath,$ORIGIN/../lib")
    return dataclasses.replace(release, prefix=dest, build_dir=work, cached=True)
