"""The build request's options (request.BuildRequest's fields), declared once for every command.

A module of its own, like smoke_options.py: building the `lwsbuild` parser (`lwsbuild --help`)
must not import dataclasses, the data modules (releases, variants) or read a data file. The field
each option sets is documented on BuildRequest; `from_args` reads them and `argv` writes them back.
"""

from __future__ import annotations

import argparse

# The values of the data modules, here without importing them (tests/test_request.py keeps them equal).
ALL_SERIES = "all"  # series.ALL
DEFAULT_VARIANT = "release"  # variants.DEFAULT


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """version, sources, allow_unpinned, refresh."""
    group = parser.add_argument_group("source")
    group.add_argument("--lws-version", metavar="V", help="libwebsockets release (default: releases.toml's default, "
                       "4.3.5: the newest one this machine's network can fetch)")
    group.add_argument("--source", action="append", metavar="SPEC",
                       help="mirror to use, repeatable, tried in order: git+URL[@REF], archive:URL|PATH[#sha256=HEX], "
                            "dir:PATH, debian (default: the pin's mirror list)")
    group.add_argument("--allow-unpinned", action="store_true",
                       help="accept a version or tree outside the pins (marked UNPINNED everywhere)")
    group.add_argument("--refresh", action="store_true",
                       help="ask the mirrors and verify what they deliver even when the pinned tree is cached")


def add_series_arguments(parser: argparse.ArgumentParser) -> None:
    """series, unfixed."""
    group = parser.add_argument_group("fix series")
    group.add_argument("--series", default=ALL_SERIES,
                       help="named fix set: all (default), seed (the original four) or none (no patch: hand checks)")
    group.add_argument("--unfixed", action="store_true",
                       help="build the bug: apply nothing and revert the fixes upstream already carries (marked UNFIXED)")


def add_build_arguments(parser: argparse.ArgumentParser, default_variant: str = DEFAULT_VARIANT,
                        defines_for: str = "") -> None:
    """variant, defines."""
    group = parser.add_argument_group("build")
    # Not listed from variants.toml: building the parser must not read (nor fail on) a data file.
    group.add_argument("--variant", default=default_variant,
                       help=f"a variant `lwsbuild variants` lists (default: {default_variant})")
    group.add_argument("-D", dest="defines", action="append", default=[], metavar="LWS_NAME=VALUE",
                       help="further libwebsockets CMake option, repeatable (e.g. -D LWS_WITH_SSL=OFF)" + defines_for)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every field's option."""
    add_source_arguments(parser)
    add_series_arguments(parser)
    add_build_arguments(parser)
