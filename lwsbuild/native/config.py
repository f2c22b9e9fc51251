"""Install prefix → what a C program needs to compile, link and run against it.

Three routes reach the same prefix (the installed wheel's `lwsbuild/_native`, or a build's):
  * `lwsbuild config --cflags --libs`: flags for `cc`, with `-Wl,-rpath` so the program runs
    without LD_LIBRARY_PATH;
  * `pkg-config` with `lwsbuild config --pkg-config-path` on PKG_CONFIG_PATH: libwebsockets.pc
    carries the same rpath (its prefix is ${pcfiledir}-relative, so it is right wherever pip put it);
  * CMake `find_package(libwebsockets)` with `lwsbuild config --cmake-prefix-path` on
    CMAKE_PREFIX_PATH (or libwebsockets_ROOT, which scikit-build-core sets from the `cmake.root`
    entry point): the imported target has an absolute location, so CMake puts its directory on the
    build-tree RPATH; a consumer that installs its program sets CMAKE_INSTALL_RPATH_USE_LINK_PATH.
A sanitizer build's flags carry its -fsanitize options: a program linking an ASan library must be
linked with the ASan runtime itself (the runtime has to come first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwsbuild.errors import NativeLibraryError, NoInstalledLibrary
from lwsbuild.native import library as native


@dataclass(frozen=True)
class ConsumerFlags:
    prefix: Path
    variant: str
    sanitizer_flags: tuple[str, ...]  # -fsanitize=… and friends, for compiling and linking alike

    @property
    def libdir(self) -> Path:
        return self.prefix / "lib"

    @property
    def cflags(self) -> tuple[str, ...]:
        return (f"-I{self.prefix / 'include'}", *self.sanitizer_flags)

    @property
    def libs(self) -> tuple[str, ...]:
        return (*self.sanitizer_flags, f"-L{self.libdir}", f"-Wl,-rpath,{self.libdir}", "-lwebsockets")

    @property
    def pkg_config_path(self) -> Path:
        return self.libdir / "pkgconfig"

    @property
    def cmake_prefix_path(self) -> Path:
        return self.prefix

    def to_json(self) -> dict[str, Any]:
        return {"prefix": str(self.prefix), "variant": self.variant, "cflags": list(self.cflags),
                "libs": list(self.libs), "pkg_config_path": str(self.pkg_config_path),
                "cmake_prefix_path": str(self.cmake_prefix_path)}


def installed_prefix() -> Path:
    """The `_native` prefix of the installed lwsbuild wheel."""
    try:
        return native.find_prefix(None)
    except NativeLibraryError as exc:
        raise NoInstalledLibrary(f"no installed libwebsockets: {exc}") from None


def flags(prefix: Path) -> ConsumerFlags:
    prefix = native.find_prefix(prefix)
    provenance = native.read_provenance(prefix)
    return ConsumerFlags(prefix, provenance.variant, provenance.c_flags)
