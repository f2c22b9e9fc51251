"""The environment a build runs in: constructed from a short pass-through list, never inherited.

CMake, the compiler, the linker and pkg-config all read the environment (CFLAGS and LDFLAGS seed
CMake's flags, CMAKE_TOOLCHAIN_FILE runs a file, CPATH and LIBRARY_PATH add search paths,
LD_LIBRARY_PATH changes what the layout probe loads, PKG_CONFIG_PATH what CMake finds). A build
whose key and provenance.json do not name such a variable must not see it. So every configure,
build, install, packaging and repair step runs in `construct()`'s environment:

  * PASSED: what locates the tools and names no build input (the compiler's path and version,
    which PATH selects, are recorded);
  * the settings' own variables (CC, CFLAGS, LDFLAGS, LWSBUILD_VARIANT, ...) are read as settings by
    settings.resolve and recorded; they never reach a build step as variables;
  * the rest is not passed. Those of it that would have changed a build (BUILD_INPUTS) are named in
    one warning line (`warn_dropped`), so nobody believes they took effect; the pip backend refuses
    BACKEND_REFUSED outright (pip hides a successful build's warnings, and these configure
    scikit-build-core or CMake directly).

Standard library only: the pip backend imports it inside pip's isolated build environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from lwsbuild.common import settings

# Names passed as they are, and name prefixes: tools' search path, home, temporary files, messages'
# language, the Python that runs lwsbuild's own install-time steps, and build parallelism.
PASSED = ("PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "CMAKE_BUILD_PARALLEL_LEVEL", "LWSBUILD_VERBOSE")
PASSED_PREFIXES = ("LC_", "PYTHON")
# Not passed, and named when present: variables that change what CMake, the compiler, the linker or
# pkg-config produce (exact names and prefixes).
BUILD_INPUTS = ("CPPFLAGS", "CXXFLAGS", "CXX", "LDLIBS", "ASM", "ASMFLAGS", "CPATH", "C_INCLUDE_PATH",
                "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH",
                "DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES", "GCC_COMPARE_DEBUG", "LD_LIBRARY_PATH", "LD_RUN_PATH",
                "LD_PRELOAD", "LD_AUDIT", "DESTDIR",
                # find_package() roots of what lws looks for (CMake reads <Package>_ROOT from the environment)
                "OPENSSL_ROOT_DIR", "OpenSSL_ROOT", "OPENSSL_ROOT", "ZLIB_ROOT", "MbedTLS_ROOT", "MBEDTLS_ROOT")
BUILD_INPUT_PREFIXES = ("CMAKE_", "SKBUILD_", "PKG_CONFIG", "CCACHE_")
# What the pip backend refuses: scikit-build-core's own settings and CMake's argument and toolchain
# variables. scikit-build-core's logging and verbosity are harmless and stay allowed.
BACKEND_REFUSED = ("CMAKE_ARGS", "CMAKE_TOOLCHAIN_FILE")
BACKEND_REFUSED_PREFIXES = ("SKBUILD_",)
BACKEND_ALLOWED = ("SKBUILD_LOGGING_LEVEL", "SKBUILD_BUILD_VERBOSE")


def _passed(name: str) -> bool:
    return name in PASSED or name.startswith(PASSED_PREFIXES)


def _setting_variable(name: str) -> bool:
    return any(setting.env == name for setting in settings.SETTINGS)


def construct(environ: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The environment of a build step: the passed variables of `environ`, then `extra` (the
    step's own: SOURCE_DATE_EPOCH, the sanitizer's build options, ...)."""
    return {**{name: value for name, value in environ.items() if _passed(name)}, **extra}


def dropped(environ: Mapping[str, str]) -> list[str]:
    """The variables of `environ` that would have changed a build and do not reach it, sorted."""
    return sorted(name for name, value in environ.items()
                  if value and not _passed(name) and not _setting_variable(name)
                  and (name in BUILD_INPUTS or name.startswith(BUILD_INPUT_PREFIXES)))


def backend_refused(environ: Mapping[str, str]) -> list[str]:
    """The variables the pip backend refuses (they would configure scikit-build-core or CMake), sorted."""
    return sorted(name for name, value in environ.items()
                  if value and name not in BACKEND_ALLOWED
                  and (name in BACKEND_REFUSED or name.startswith(BACKEND_REFUSED_PREFIXES)))


def dropped_line(environ: Mapping[str, str]) -> str | None:
    """The one warning line naming the dropped variables, or None."""
    names = dropped(environ)
    if not names:
        return None
    return (f"warning: not passed to the build (it would change what provenance.json records): {', '.join(names)}; "
            "declared settings take their place: --cc/CC, --extra-cflags/CFLAGS, --extra-ldflags/LDFLAGS, "
            "-D LWS_NAME=VALUE (docs/settings.md)")


@cache
def _warned(line: str) -> None:
    from lwsbuild.common import progress

    progress.note(line)


def warn_dropped(environ: Mapping[str, str]) -> None:
    """Say once per process which variables were dropped (nothing when none were)."""
    line = dropped_line(environ)
    if line is not None:
        _warned(line)
