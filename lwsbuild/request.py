"""What to build, as one typed value: one field per setting of lwsbuild/common/settings.py.

A `BuildRequest` is what every route into the pipeline starts from: the CLI's commands (through
`from_args`), `prove` (one request per build it compares), `wheel --check-reproducible` and `verify`
(which run `argv()` again in a fresh cache), and the CMake project under pip (`python -m
lwsbuild.request --write-spec FILE ...`). A setting is declared in settings.py (option, -C key,
environment variable, help) and held here as a field; the tests in tests/test_request.py fail on a
field without a setting, or a setting without a field, and on one that does not round-trip.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lwsbuild.build import variants
from lwsbuild.common import settings
from lwsbuild.errors import BadSettingError
from lwsbuild.source import releases

__all__ = ["BuildRequest", "main"]  # the public surface (lwsbuild/__init__.py)

if TYPE_CHECKING:
    from lwsbuild.build.cmake import BuildSpec, Install
    from lwsbuild.build.provenance import Provenance
    from lwsbuild.series.fixes import PreparedTree
    from lwsbuild.source.fetch import Source
    from lwsbuild.source.releases import Release

# A flag word: printable ASCII without CMake's list separator (the words are joined into CMake's
# CMAKE_*_FLAGS strings, which a `;` would split and a control character would end).
_FLAG_WORD = re.compile(r"[\x21-\x3a\x3c-\x7e][\x20-\x3a\x3c-\x7e]*")
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")


@dataclass(frozen=True)
class BuildRequest:
    """One build as asked for; `plan()` turns it into a BuildSpec (fetching and patching on the way)."""

    version: str | None = None
    """libwebsockets release ("4.3.5", a leading "v" dropped); None: releases.toml's default."""

    sources: tuple[str, ...] = ()
    """Mirror specs (`--source`), tried in order; empty: the pin's own mirror list."""

    allow_unpinned: bool = False
    """Accept a version or tree outside the pins (marked UNPINNED everywhere)."""

    refresh: bool = False
    """Ask the mirrors and verify what they deliver even when the pinned tree is cached, and check
    every cache entry in full. It changes where the bytes come from, never which bytes are built."""

    series: str = settings.ALL_SERIES
    """Named fix set of patches/series.toml: all, seed, security or none."""

    unfixed: bool = False
    """Build the bug: revert every fix upstream carries and apply none (marked UNFIXED)."""

    variant: str = settings.DEFAULT_VARIANT
    """Build variant of variants.toml (release, asan, tsan, ...)."""

    defines: tuple[tuple[str, str], ...] = ()
    """The user's `-D LWS_NAME=VALUE` options, parsed and validated, in the order given (a name
    given twice keeps its last value)."""

    cc: str = ""
    """The C compiler as given (a name on PATH or a path); "": `cc`. Its resolved path and version
    are what the build key and provenance.json record."""

    extra_cflags: tuple[str, ...] = ()
    """Compiler flags after the variant's (shell words, checked: printable ASCII, no -fsanitize)."""

    extra_ldflags: tuple[str, ...] = ()
    """Linker flags of the library and of lwsbuild's programs (shell words, checked like extra_cflags)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> BuildRequest:
        """The request of a parsed command line: each option given, else its environment variable
        (settings.py), else the field's default. Values are checked here, before anything is fetched."""
        return cls.of(settings.resolve(vars(args), os.environ if environ is None else environ))

    @classmethod
    def of(cls, values: Mapping[str, object]) -> BuildRequest:
        """A request from settings values (None: the default), each parsed and checked."""
        version = values.get("version")
        return cls(version=_version(str(version)) if version is not None else None,
                   sources=tuple(str(spec) for spec in values.get("sources") or ()),  # type: ignore[attr-defined]
                   allow_unpinned=bool(values.get("allow_unpinned")),
                   refresh=bool(values.get("refresh")),
                   series=str(values.get("series") or settings.ALL_SERIES),
                   unfixed=bool(values.get("unfixed")),
                   variant=str(values.get("variant") or settings.DEFAULT_VARIANT),
                   defines=_defines(values.get("defines")),
                   cc=_compiler_name(str(values.get("cc") or "")),
                   extra_cflags=_flag_words("extra_cflags", values.get("extra_cflags")),
                   extra_ldflags=_flag_words("extra_ldflags", values.get("extra_ldflags")))

    @classmethod
    def rebuilding(cls, described: Provenance, sources: tuple[str, ...] = ()) -> BuildRequest:
        """The request that builds what `described` (a build's provenance.json) says it is."""
        return cls(version=described.lws.version, sources=sources, allow_unpinned=described.lws.unpinned,
                   series=described.series, unfixed=described.unfixed, variant=described.variant,
                   defines=tuple(described.extra_options.items()), cc=described.compiler.path,
                   extra_cflags=described.extra_c_flags, extra_ldflags=described.ld_flags)

    def argv(self) -> list[str]:
        """The command-line options that give this request back through `from_args`, in an
        environment without the settings' variables (settings.without_settings)."""
        return settings.argv({name: getattr(self, name) for name in settings.BY_NAME})

    @property
    def release_version(self) -> str:
        return releases.normalize(self.version or releases.default_version())

    def release(self) -> Release:
        return releases.get(self.release_version, self.allow_unpinned)

    def source(self) -> Source:
        """The verified source tree (fetched, or from the cache)."""
        from lwsbuild.source import fetch as sources

        return sources.fetch(self.release(), list(self.sources) or None, self.allow_unpinned, refresh=self.refresh)

    def prepare(self) -> PreparedTree:
        """The source tree with the fix series applied (or reverted, --unfixed)."""
        from lwsbuild.series import fixes as series

        selected = series.select(self.series)  # a bad --series or version fails before any download
        series.check_supported(self.release(), selected, self.unfixed)
        return series.prepare(self.source(), selected, self.unfixed, full_check=self.refresh)

    def plan(self) -> BuildSpec:
        """The BuildSpec: every input of the build, with the prepared tree."""
        from lwsbuild.build import cmake as build
        from lwsbuild.build import environment

        variant = variants.get(self.variant)
        # Validated before any download: a refused -D costs nothing.
        options = variants.options_for(variant, dict(self.defines), self.release_version)
        compiler = build.compiler(self.cc or "cc")
        environment.warn_dropped(os.environ)
        return build.plan(self.prepare(), variant, options, compiler, self.extra_cflags, self.extra_ldflags)

    def build(self) -> Install:
        """The install prefix: built, or served from the cache once checked (in full under --refresh)."""
        from lwsbuild.build import cmake as build

        return build.build(self.plan(), full_check=self.refresh)


def _version(text: str) -> str:
    version = releases.normalize(text)
    if not _VERSION.fullmatch(version):  # ASCII digits: "4.3.５" must not sort as 4.3.5
        raise BadSettingError(f"--lws-version {text!r} is not a version number (digits and dots)",
                              hint="run `lwsbuild versions` for the pinned releases")
    return version


def _defines(given: object) -> tuple[tuple[str, str], ...]:
    items = [str(item) for item in given or ()]  # type: ignore[attr-defined]
    return tuple(variants.parse_defines(items).items())


def _compiler_name(name: str) -> str:
    if name and not _FLAG_WORD.fullmatch(name):
        raise BadSettingError(f"--cc {name!r} is not a program name or path in printable ASCII",
                              hint="pass --cc gcc, --cc clang or a path (or set CC)")
    return name


def _flag_words(name: str, given: object) -> tuple[str, ...]:
    """Shell words of --extra-cflags/--extra-ldflags (a string, or words already split)."""
    setting = settings.BY_NAME[name]
    if not given:
        return ()
    try:
        words = tuple(shlex.split(given)) if isinstance(given, str) else tuple(str(w) for w in given)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise BadSettingError(f"{setting.option} {given!r} is not a list of shell words ({exc})",
                              hint="quote as a shell would: --extra-cflags='-O2 -g'") from None
    for word in words:
        if not _FLAG_WORD.fullmatch(word):
            raise BadSettingError(f"{setting.option}: {word!r} is not printable ASCII without ';' (the flags are "
                                  "written into CMake's flag strings, which a ';' or a control character would "
                                  "change)", hint=f"pass {setting.option} with printable ASCII words")
        if word.startswith(("-fsanitize", "-fno-sanitize")):
            raise BadSettingError(f"{setting.option}: {word} would instrument the build against its variant "
                                  "(the variant names its sanitizer and provenance.json records it)",
                                  hint="choose a sanitizer with --variant asan or --variant tsan")
    return words


# --- the CMake project's entry point under pip ------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """`python -m lwsbuild.request --write-spec FILE [request options]`: what cmake/CMakeLists.txt
    runs when scikit-build-core configures without a spec, and what the pip backend runs: fetch,
    verify, patch, write the spec."""
    from lwsbuild.errors import LwsbuildError

    parser = argparse.ArgumentParser(prog="python -m lwsbuild.request")
    parser.add_argument("--write-spec", type=Path, required=True)
    settings.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        from lwsbuild.build import cmake as build

        spec = BuildRequest.from_args(args).plan()
        written = build.write_spec(spec, args.write_spec.parent)
        if written != args.write_spec:
            os.replace(written, args.write_spec)
    except LwsbuildError as exc:
        return exc.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
