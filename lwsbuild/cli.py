"""The `lwsbuild` command line: argument parsing, rendering and exit codes; no pipeline logic.

Heavy modules are imported inside the handlers so `lwsbuild --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import __version__
from .errors import LwsbuildError

if TYPE_CHECKING:
    from .build import BuildSpec
    from .series import PreparedTree
    from .sources import Source


# --- argument groups shared by commands ---------------------------------------------------------

def source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("source")
    group.add_argument("--lws-version", metavar="V", help="libwebsockets release (default: the newest fetchable pin, 4.3.5)")
    group.add_argument("--source", action="append", metavar="SPEC",
                       help="mirror to use, repeatable, tried in order: git+URL[@REF], archive:URL|PATH[#sha256=HEX], "
                            "dir:PATH, debian (default: the pin's mirror list)")
    group.add_argument("--allow-unpinned", action="store_true",
                       help="accept a version or tree outside the pins (marked UNPINNED everywhere)")


def series_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fix series")
    group.add_argument("--series", default="all", help="named patch set: all (default) or seed (the original four)")
    group.add_argument("--unfixed", action="store_true",
                       help="build the bug: apply nothing and revert the fixes upstream already carries (marked UNFIXED)")


def spec_arguments(parser: argparse.ArgumentParser) -> None:
    source_arguments(parser)
    series_arguments(parser)
    group = parser.add_argument_group("build")
    group.add_argument("--variant", default="release", help="release (default), asan or tsan")
    group.add_argument("-D", dest="defines", action="append", default=[], metavar="LWS_NAME=VALUE",
                       help="further libwebsockets CMake option, repeatable (e.g. -D LWS_WITH_SSL=OFF)")


def json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


# --- the pipeline, driven by parsed arguments ---------------------------------------------------

def source_from_args(args: argparse.Namespace) -> Source:
    from . import releases, sources

    release = releases.get(args.lws_version or releases.default_version(), args.allow_unpinned)
    return sources.fetch(release, args.source, args.allow_unpinned)


def prepare_from_args(args: argparse.Namespace) -> PreparedTree:
    from . import releases, series

    selected = series.select(args.series)  # a bad --series or version fails before any download
    releases.check_series_supported(releases.get(args.lws_version or releases.default_version(), args.allow_unpinned))
    return series.prepare(source_from_args(args), selected, args.unfixed)


def plan_from_args(args: argparse.Namespace) -> BuildSpec:
    from . import build, variants

    variant = variants.get(args.variant)
    defines = variants.parse_defines(args.defines)
    variants.options_for(variant, defines)  # bad options fail before any download
    return build.plan(prepare_from_args(args), variant, defines)


def emit(args: argparse.Namespace, data: dict, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(text)


def _marks(marks: list[str]) -> str:
    return "".join(f" [{m}]" for m in marks)


# --- commands -----------------------------------------------------------------------------------

def cmd_versions(args: argparse.Namespace) -> int:
    from . import releases, series

    rows = []
    for release in releases.all_releases():
        needs = [pid for pid, status in release.expected.items() if status == "missing"]
        extra = [p.id for p in series.select(series.ALL).patches if p.id not in release.expected]
        try:
            releases.check_series_supported(release)
            supported = True
        except LwsbuildError:
            supported = False
        rows.append({"version": release.version, "tag": release.tag, "date": release.date,
                     "commit": release.commit, "tree_id": release.tree_id, "expected": release.expected,
                     "needs": needs + (extra if supported else []), "series_supported": supported,
                     "mirrors": list(release.mirrors) if not release.debian_suites
                     else list(release.mirrors), "debian_suites": list(release.debian_suites),
                     "default": release.version == releases.default_version()})
    lines = [f"{'version':9} {'date':10} {'tree id':12} needs"]
    for row in rows:
        needs = ", ".join(row["needs"]) if row["series_supported"] else "(outside the series' range)"
        lines.append(f"{row['version']:9} {row['date']:10} {row['tree_id'][:12]} {needs}"
                     + (" (default)" if row["default"] else "")
                     + (f" (debian: {', '.join(row['debian_suites'])})" if row["debian_suites"] else ""))
    emit(args, {"versions": rows}, "\n".join(lines))
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from . import variants

    rows = [{"name": v.name, "description": v.description, "cmake": v.cmake, "c_flags": list(v.c_flags),
             "sanitizer": v.sanitizer} for v in map(variants.get, variants.names())]
    emit(args, {"variants": rows}, "\n".join(f"{r['name']:8} {r['description']}" for r in rows))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    source = source_from_args(args)
    marks = ["UNPINNED"] if source.unpinned else []
    data = {**source.to_json(), "marks": marks}
    emit(args, data, f"libwebsockets {source.release.version}{_marks(marks)}: tree {source.tree_id} "
                     f"from {source.mirror}{' (cached)' if source.cached else ''}\n  {source.path}")
    return 0


def cmd_patch(args: argparse.Namespace) -> int:
    prepared = prepare_from_args(args)
    lines = [f"libwebsockets {prepared.source.release.version}{_marks(prepared.marks)}, series "
             f"'{prepared.series.name}': {prepared.path}"]
    lines += [f"  {r.patch.id} {r.status:9} {r.patch.title}" for r in prepared.results]
    if prepared.unfixed:
        lines.append("  UNFIXED: this tree carries the multi-threaded client heap-use-after-free on purpose")
    emit(args, prepared.to_json(), "\n".join(lines))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from . import build

    install = build.build(plan_from_args(args))
    data = install.to_json()
    emit(args, data, f"libwebsockets {data['version']} {data['variant']}{_marks(data['marks'])}"
                     f"{' (cached)' if install.cached else ''}\n  prefix  {data['prefix']}\n  library {data['library']}")
    return 0


# --- parser -------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lwsbuild", description="A reproducible, verifiably fixed libwebsockets.")
    parser.add_argument("--version", action="version", version=f"lwsbuild {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                *groups: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        for group in groups:
            group(p)
        p.set_defaults(handler=handler)
        return p

    command("versions", cmd_versions, "list the pinned releases and the fixes each needs", json_argument)
    command("variants", cmd_variants, "list the build variants", json_argument)
    command("fetch", cmd_fetch, "fetch and verify a release's source tree", source_arguments, json_argument)
    command("patch", cmd_patch, "classify and apply the fix series to a verified tree",
            source_arguments, series_arguments, json_argument)
    command("build", cmd_build, "build a variant into a cached install prefix", spec_arguments, json_argument)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except LwsbuildError as exc:
        print(f"lwsbuild: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lwsbuild: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
