"""What to build, as one typed value: release, mirrors, fix series, variant and -D options.

A `BuildRequest` is what every route into the pipeline starts from: the CLI's commands (through
`from_args`), `prove` (one request per build it compares), `wheel --check-reproducible` (which runs
`argv()` again in a fresh cache) and the CMake project under pip (`python -m lwsbuild.request
--write-spec FILE ...`). A new field is added here (the field, `from_args`, `argv`) and its option
in request_options.py, which stays free of dataclasses and data files so that `lwsbuild --help`
does not import them; the round-trip test in tests/test_request.py fails on a field any of them
forgets.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import releases, variants
from .request_options import ALL_SERIES, add_arguments

if TYPE_CHECKING:
    from .build import BuildSpec
    from .releases import Release
    from .series import PreparedTree
    from .sources import Source

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
    """Ask the mirrors and verify what they deliver even when the pinned tree is cached. It changes
    where the bytes come from, never which bytes are built (the tree id is checked either way)."""

    series: str = ALL_SERIES
    """Named fix set of patches/series.toml: all, seed, security or none."""

    unfixed: bool = False
    """Build the bug: revert every fix upstream carries and apply none (marked UNFIXED)."""

    variant: str = variants.DEFAULT
    """Build variant of variants.toml (release, asan, tsan, ...)."""

    defines: tuple[tuple[str, str], ...] = ()
    """The user's `-D LWS_NAME=VALUE` options, parsed and validated, in the order given (a name
    given twice keeps its last value)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BuildRequest:
        """The request of a parsed command line. A field whose option the command does not declare
        (`fetch` has no --variant) keeps its default; so does a declared option left unset
        (`smoke` and `config` default --variant to None: "no build asked for")."""
        given = vars(args)
        version = given.get("lws_version")
        return cls(version=releases.normalize(str(version)) if version else None,
                   sources=tuple(str(spec) for spec in given.get("source") or ()),
                   allow_unpinned=bool(given.get("allow_unpinned")),
                   refresh=bool(given.get("refresh")),
                   series=str(given.get("series") or ALL_SERIES),
                   unfixed=bool(given.get("unfixed")),
                   variant=str(given.get("variant") or variants.DEFAULT),
                   # Parsed here: a malformed -D is refused before anything is fetched.
                   defines=tuple(variants.parse_defines([str(d) for d in given.get("defines") or ()]).items()))

    def argv(self) -> list[str]:
        """The command-line options that give this request back through `from_args` (every field;
        `--option=value`, so a value starting with "-" is not read as an option)."""
        args = [f"--variant={self.variant}", f"--series={self.series}"]
        args += [f"--lws-version={self.version}"] if self.version is not None else []
        args += [f"--source={spec}" for spec in self.sources]
        args += ["--allow-unpinned"] if self.allow_unpinned else []
        args += ["--refresh"] if self.refresh else []
        args += ["--unfixed"] if self.unfixed else []
        return args + [f"-D{name}={value}" for name, value in self.defines]

    @property
    def release_version(self) -> str:
        return releases.normalize(self.version or releases.default_version())

    def release(self) -> Release:
        return releases.get(self.release_version, self.allow_unpinned)

    def source(self) -> Source:
        """The verified source tree (fetched, or from the cache)."""
        from . import sources

        return sources.fetch(self.release(), list(self.sources) or None, self.allow_unpinned, refresh=self.refresh)

    def prepare(self) -> PreparedTree:
        """The source tree with the fix series applied (or reverted, --unfixed)."""
        from . import series

        selected = series.select(self.series)  # a bad --series or version fails before any download
        series.check_supported(self.release(), selected, self.unfixed)
        return series.prepare(self.source(), selected, self.unfixed)

    def plan(self) -> BuildSpec:
        """The BuildSpec: every input of the build, with the prepared tree."""
        from . import build

        variant = variants.get(self.variant)
        # Validated before any download: a refused -D costs nothing.
        options = variants.options_for(variant, dict(self.defines), self.release_version)
        return build.plan(self.prepare(), variant, options)


# --- the CMake project's entry point under pip ------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """`python -m lwsbuild.request --write-spec FILE [request options]`: what cmake/CMakeLists.txt
    runs when scikit-build-core configures without a spec: fetch, verify, patch, write the spec."""
    from .errors import LwsbuildError

    parser = argparse.ArgumentParser(prog="python -m lwsbuild.request")
    parser.add_argument("--write-spec", type=Path, required=True)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        from . import build

        spec = BuildRequest.from_args(args).plan()
        written = build.write_spec(spec, args.write_spec.parent)
        if written != args.write_spec:
            os.replace(written, args.write_spec)
    except LwsbuildError as exc:
        return exc.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
