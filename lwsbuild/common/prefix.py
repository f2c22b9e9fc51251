"""The layout of an install prefix, and of a wheel's copy of it: every path lwsbuild and its CMake
project agree on, declared here once. The CMake project gets them through the build spec
(build/cmake.py: LWSBUILD_SHARE_DIR and the file names); pyproject.toml's `wheel.install-dir` is
WHEEL_ROOT (tests/test_layout.py keeps the two equal)."""

from __future__ import annotations

SHARE_DIR = "share/lwsbuild"  # what lwsbuild adds to lws's own install
PROVENANCE_NAME = "provenance.json"
LAYOUT_NAME = "layout.json"  # the struct layout the probe measured, and the library's SONAME
SBOM_NAME = "sbom.cdx.json"
SERIES_NAME = "series.json"  # what a package built by another's tools carries (series/carried.py)
PROVENANCE = f"{SHARE_DIR}/{PROVENANCE_NAME}"
LAYOUT = f"{SHARE_DIR}/{LAYOUT_NAME}"
SBOM = f"{SHARE_DIR}/{SBOM_NAME}"
SERIES = f"{SHARE_DIR}/{SERIES_NAME}"
CONFIG_H = "include/lws_config.h"  # lws's own: which code is compiled in
STATIC_LIBRARY = "lib/libwebsockets.a"  # with -D LWS_WITH_STATIC=ON
STRESS_HARNESS = "bin/lws-stress"
CVE_SERVER = "bin/lws-cve-server"
WHEEL_ROOT = "lwsbuild/_native/"  # where a wheel holds the prefix


def in_wheel(path: str) -> str:
    """A prefix path as a wheel's member name."""
    return WHEEL_ROOT + path
