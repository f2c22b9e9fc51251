"""The `lwsbuild` command line: argument parsing, rendering and exit codes; no pipeline logic.

Heavy modules are imported inside the handlers so `lwsbuild --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwsbuild import __version__
from lwsbuild.common import entry, progress
from lwsbuild.common.settings import add_arguments, given_on_command_line

__all__ = ["main"]  # the public surface (lwsbuild/__init__.py)

if TYPE_CHECKING:
    from lwsbuild.request import BuildRequest
    from lwsbuild.series.fixes import Line

JsonDict = dict[str, Any]


# --- argument groups shared by commands ---------------------------------------------------------
# The build request's own options (source, series, variant, -D, compiler, flags) are declared once,
# in settings.py, with their -C keys and environment variables.


def source_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, ["source"])


def patch_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, ["source", "fix series"])

def json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


# --- the pipeline, driven by parsed arguments ---------------------------------------------------

def _request(args: argparse.Namespace) -> BuildRequest:
    from lwsbuild.request import BuildRequest

    return BuildRequest.from_args(args)


def prefix_from_args(args: argparse.Namespace) -> Path | None:
    """--prefix DIR, else a (cached) build when any build option is given, else None: the library
    bundled in this installed wheel."""
    from lwsbuild.errors import UsageError

    wants_build = given_on_command_line(args)
    if args.prefix is not None and wants_build:
        raise UsageError(f"--prefix and build options ({', '.join(wants_build)}) select different libraries",
                         hint="pass one of them")
    if args.prefix is not None:
        return Path(args.prefix)
    if not wants_build:
        return None
    return _request(args).build().prefix


def emit(args: argparse.Namespace, data: Mapping[str, object], text: str) -> None:
    """`data` as one JSON object under --json (a TypedDict report too), else `text`."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(text)


def _marks(marks: list[str]) -> str:
    return "".join(f" [{m}]" for m in marks)


# --- commands -----------------------------------------------------------------------------------

def _fix_state(line: Line | None) -> JsonDict:
    """One fix on one release, from series.toml alone: ours | upstream | not-needed | uncovered."""
    if line is None:
        return {"status": "uncovered", "versions": None, "upstream": None, "patch": None, "reason": None}
    return {"status": line.form, "versions": line.versions, "upstream": line.upstream or None,
            "patch": line.patch or None, "reason": line.not_needed or None}


def _fix_groups(fixes: dict[str, JsonDict]) -> str:
    """"ours 0004 0005; upstream bd8f69e43 0001 0002": fixes grouped by what they are there."""
    groups: dict[str, list[str]] = {}
    for pid, state in fixes.items():
        label = f"upstream {state['upstream']}" if state["status"] == "upstream" else state["status"]
        groups.setdefault(label, []).append(pid)
    return "; ".join(f"{label} {' '.join(ids)}" for label, ids in groups.items())


def cmd_versions(args: argparse.Namespace) -> int:
    from lwsbuild.series import fixes as series
    from lwsbuild.series import verified
    from lwsbuild.source import releases

    rows: list[JsonDict] = []
    for release in releases.all_releases():
        fixes = {pid: _fix_state(line) for pid, line in series.forms(release).items()}
        supported = series.supported(release)
        rows.append({"version": release.version, "tag": release.tag, "date": release.date,
                     "commit": release.commit, "tree_id": release.tree_id, "fixes": fixes,
                     "needs": [pid for pid, f in fixes.items() if f["status"] == "ours"] if supported else [],
                     "series_supported": supported, "mirrors": list(release.mirrors),
                     "gitlinks": dict(release.gitlinks), "debian_suites": list(release.debian_suites),
                     "default": release.version == releases.default_version(),
                     "verified": verified.summary(release.version)})
    cve_text = _cve_states(rows)
    lines = [(f"{'version':9} {'date':10} {'tree id':12} {'series':9} {'verified by hand':32} "
              "fixes (from patches/series.toml) | CVEs (lwsbuild/resources/cves.toml; ours = our patch, upstream = in the "
              "release; * = compiled out of the default variants: not affected there)")]
    for row in rows:
        lines.append(f"{row['version']:9} {row['date']:10} {row['tree_id'][:12]} "
                     f"{'supported' if row['series_supported'] else 'outside':9} {_verified(row['verified']):32} "
                     f"{_fix_groups(row['fixes'])}"
                     + (" (default)" if row["default"] else "")
                     + (f" (debian: {', '.join(row['debian_suites'])})" if row["debian_suites"] else "")
                     + f" | CVEs: {cve_text[row['version']]}")
    covers = series.covered_ranges(series.select(series.ALL).fixes)
    emit(args, {"versions": rows, "series_covers": covers}, "\n".join(lines))
    return 0


def _verified(summary: JsonDict) -> str:
    """"proven" (build, smoke, stress clean and the unfixed defect, through the series), else the
    steps checked by hand (lwsbuild/resources/verified.toml)."""
    if summary["proven"]:
        return "proven"
    if summary.get("ci"):
        return "proven in CI (tests/)"
    return ",".join(step.replace("stress-unfixed", "unfixed") for step in summary["steps"]) or "-"


def _cve_states(rows: list[JsonDict]) -> dict[str, str]:
    """Adds each release's CVE status (lwsbuild/resources/cves.toml) to `rows`; version → its text,
    "ours CVE-… CVE-…*; upstream CVE-…" (* = compiled out of the default variants)."""
    from lwsbuild.series import cves
    from lwsbuild.source import releases

    by_version = {r.version: r for r in releases.all_releases()}
    defined = set(cves.default_build().defined)
    off = {c.id for c in cves.known() if not c.is_compiled_in(defined)}
    text = {}
    for row in rows:
        row["cves"] = cves.release_status(by_version[row["version"]])
        groups: dict[str, list[str]] = {}
        for state in row["cves"]:
            label = {"not-needed": "not affected", "uncovered": "no line"}.get(state["form"], state["form"])
            groups.setdefault(label, []).append(state["id"] + ("*" if state["id"] in off else ""))
        text[row["version"]] = "; ".join(f"{label} {' '.join(ids)}" for label, ids in groups.items())
    return text


def cmd_debian_patches(args: argparse.Namespace) -> int:
    from lwsbuild.series import distro

    prepared = _request(args).prepare()
    package = distro.debian_security_patches(prepared)
    emit(args, {"version": prepared.source.release.version, "series": prepared.series.name, **package.to_json()},
         distro.render(package))
    return 0


def export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=("quilt", "debian", "conan", "yocto"),
                        help="quilt: DEP-3 patches and a series file; debian: merged into Debian's source package; "
                             "conan: a recipe folder; yocto: a .bbappend (and Buildroot's NNNN-*.patch)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                        help="a new (or empty) directory for the export; it appears whole or not at all")
    parser.add_argument("--max-smp", type=int, metavar="N",
                        help="debian only: configure lws with N service threads (-DLWS_MAX_SMP=N in debian/rules; "
                             "default: Debian's configure as it is, one service thread)")


def cmd_export(args: argparse.Namespace) -> int:
    from lwsbuild.errors import UsageError
    from lwsbuild.export import formats, output, quilt

    request = _request(args)
    quilt.refuse_unfixed(request.unfixed)  # all three before anything is fetched
    output.check(args.output)
    if args.max_smp is not None and (args.format != "debian" or args.max_smp < 1):
        raise UsageError(f"--max-smp {args.max_smp}: a number of service threads (1 or more) for --format debian",
                         hint="the Conan recipe configures LWS_MAX_SMP 8 itself; quilt and yocto carry no configure")
    summary = formats.export(request.prepare(), args.format, args.output, args.max_smp)
    emit(args, summary, formats.render(summary))
    return 0


def _installed_prefix() -> Path:
    """The native part of this installed lwsbuild: what `audit` without a target audits."""
    from lwsbuild.errors import NativeLibraryError, UsageError
    from lwsbuild.native.library import find_prefix

    try:
        return find_prefix(None)
    except NativeLibraryError as exc:
        raise UsageError(f"nothing to audit: {exc}", hint="pass a wheel or a prefix: lwsbuild audit PATH") from None


def cmd_audit(args: argparse.Namespace) -> int:
    from lwsbuild.wheel import audit

    report = audit.audit(Path(args.target) if args.target else _installed_prefix())
    emit(args, report, audit.render(report))
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from lwsbuild.build import variants

    rows = [{"name": v.name, "description": v.description, "cmake": v.cmake, "c_flags": list(v.c_flags),
             "sanitizer": v.sanitizer_name} for v in map(variants.get, variants.names())]
    emit(args, {"variants": rows}, "\n".join(f"{r['name']:8} {r['description']}" for r in rows))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    source = _request(args).source()
    marks = ["UNPINNED"] if source.unpinned else []
    data = {**source.to_json(), "marks": marks}
    emit(args, data, f"libwebsockets {source.release.version}{_marks(marks)}: tree {source.tree_id} "
                     f"from {source.mirror}{' (cached)' if source.cached else ''}\n  {source.path}")
    return 0


def cmd_patch(args: argparse.Namespace) -> int:
    prepared = _request(args).prepare()
    lines = [(f"libwebsockets {prepared.source.release.version}{_marks(prepared.marks)}, series "
              f"'{prepared.series.name}': {prepared.path}")]
    lines += [f"  {r.fix.id} {r.status:10} {r.fix.title}  [{r.line.versions}"
              + (f"; upstream {r.line.upstream}" if r.line.upstream else "")
              + (f"; {r.line.not_needed}" if r.line.not_needed else "")
              + ("; UNEXPECTED: our patch is already there" if r.unexpected else "") + "]"
              for r in prepared.results]
    if prepared.unfixed:
        lines.append("  UNFIXED: this tree carries the multi-threaded client heap-use-after-free on purpose")
    elif not prepared.series.fixes:
        lines.append(f"  NO-FIX: series '{prepared.series.name}' selects no fix: this is the tree as its source gave it")
    emit(args, prepared.to_json(), "\n".join(lines))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    install = _request(args).build()
    data = install.to_json()
    emit(args, data, f"libwebsockets {data['version']} {data['variant']}{_marks(data['marks'])}"
                     f"{' (cached)' if install.cached else ''}\n  prefix  {data['prefix']}\n  library {data['library']}")
    return 0


def wheel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, default=Path("dist"), metavar="DIR",
                        help="directory for the wheel (default: ./dist)")
    parser.add_argument("--check-reproducible", action="store_true",
                        help="build the wheel a second time in a fresh cache and directory and compare the bytes; "
                             "name the differing members if any (exit 1)")


def cmd_wheel(args: argparse.Namespace) -> int:
    from lwsbuild.build import variants
    from lwsbuild.wheel import package as wheel

    request = _request(args)
    wheel.require_tools(variants.get(request.variant).sanitizer)  # before a build, not after it
    install = request.build()
    made = wheel.build_wheel(install, args.output)
    data = made.to_json()
    lines = [f"{made.path.name}{_marks(data['marks'])}", f"  {made.identity.summary}",
             f"  {made.policy.reason}", f"  {made.path}"]
    if made.source_paths:
        lines.append(f"  note: {', '.join(made.source_paths)} name their sources by absolute path (GCC writes them "
                     "into sanitizer metadata; -ffile-prefix-map does not reach them): not reproducible elsewhere")
    comparison = None
    if args.check_reproducible:
        from lwsbuild.wheel import reproducible

        source = install.spec.prepared.source
        comparison = reproducible.check(made.path, request, source.tree_id, source.path)
        data["reproducible"] = comparison.to_json()
        lines.append(f"  reproducible (rebuilt in a fresh cache and directory): {comparison.describe()}")
    emit(args, data, "\n".join(lines))
    if comparison is not None and not comparison.identical:
        from lwsbuild.errors import NotReproducible

        raise NotReproducible(f"{made.path.name} is not reproducible: {len(comparison.differences)} member(s) differ "
                              f"from the rebuild, kept as {comparison.second}")
    return 0


def verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", type=Path, metavar="WHEEL|PREFIX",
                        help="wheels made by lwsbuild (or pip), or install prefixes; artifacts of one build share its rebuild")
    # The rebuild's mirrors (the tree id must be the one the artifact records); the rest is its provenance's.
    add_arguments(parser, ["source"], only=["sources"])
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the rebuilt wheel and prefix in DIR")


def cmd_verify(args: argparse.Namespace) -> int:
    from lwsbuild.errors import NotVerified
    from lwsbuild.wheel import verify

    verdicts = verify.verify(args.targets, tuple(args.sources or ()), args.keep)
    emit(args, {"identical": all(v.identical for v in verdicts), "verdicts": [v.to_json() for v in verdicts]},
         "\n".join(v.describe() for v in verdicts))
    differing = [v for v in verdicts if not v.identical]
    if differing:
        raise NotVerified(f"{len(differing)} of {len(verdicts)} artifact(s) differ from a rebuild of what their "
                          f"provenance says: {', '.join(str(v.target) for v in differing)}")
    return 0


def config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to print (default: all of it)")
    group.add_argument("--cflags", action="store_true", help="compiler flags (include dir, sanitizer flags)")
    group.add_argument("--libs", action="store_true", help="linker flags, with -Wl,-rpath so no LD_LIBRARY_PATH is needed")
    group.add_argument("--pkg-config-path", action="store_true", help="the directory of libwebsockets.pc")
    group.add_argument("--cmake-prefix-path", action="store_true",
                       help="the prefix for CMAKE_PREFIX_PATH (find_package(libwebsockets))")
    parser.add_argument("--prefix", type=Path, metavar="DIR",
                        help="an install prefix (default: the installed wheel's; build options select a build)")
    # A build only when asked for: no build option means the installed wheel's library.
    add_arguments(parser)


def cmd_config(args: argparse.Namespace) -> int:
    from lwsbuild.native import config

    found = config.flags(prefix_from_args(args) or config.installed_prefix())
    wanted = [name for name in ("cflags", "libs", "pkg_config_path", "cmake_prefix_path") if getattr(args, name)]
    words = [w for name in ("cflags", "libs") if name in wanted for w in getattr(found, name)]
    lines = [" ".join(words)] if words else []
    lines += [str(getattr(found, name)) for name in ("pkg_config_path", "cmake_prefix_path") if name in wanted]
    if not wanted:
        lines = [f"{'prefix':18} {found.prefix}", f"{'cflags':18} {' '.join(found.cflags)}",
                 f"{'libs':18} {' '.join(found.libs)}", f"{'pkg-config path':18} {found.pkg_config_path}",
                 f"{'cmake prefix path':18} {found.cmake_prefix_path}"]
    emit(args, found.to_json(), "\n".join(lines))
    return 0


def matrix_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--versions", action="append", metavar="V[,V...]",
                        help="pinned versions, repeatable or comma-separated; 'all' = every pin the series "
                             "supports, 'default' (the default) = the default version; versions below the "
                             "series' range are refused")
    parser.add_argument("--variants", action="append", metavar="NAME[,NAME...]",
                        help="variants, repeatable or comma-separated (default: all)")


def cmd_matrix(args: argparse.Namespace) -> int:
    from lwsbuild.cli import matrix

    plan = matrix.build_matrix(args.versions, args.variants)
    if args.json:
        # One line, so `echo "matrix=$(lwsbuild matrix --json)" >> "$GITHUB_OUTPUT"` works.
        print(json.dumps(plan.to_json(), sort_keys=True, separators=(",", ":")))
    else:
        print(plan.render())
    return 0


def smoke_arguments(parser: argparse.ArgumentParser) -> None:
    from lwsbuild.native.smoke_options import add_arguments

    add_arguments(parser.add_argument_group("smoke"))  # no build option: the bundled library, not a build


def cmd_smoke(args: argparse.Namespace) -> int:
    from lwsbuild.native import smoke

    # The same command as `python -m lwsbuild.native.smoke`; the prefix may be a build, made only after the
    # arguments were checked. An ASan library needs its runtime preloaded: smoke re-executes this
    # very command with it.
    return smoke.command(args, locate=lambda: prefix_from_args(args), reexec_module="lwsbuild", argv=args.argv)


def harness_arguments(parser: argparse.ArgumentParser) -> None:
    from lwsbuild.build import harness  # its table only: no data file, no dataclasses

    harness.add_arguments(parser)


def profile_argument(parser: argparse.ArgumentParser, repeatable: bool) -> None:
    if repeatable:
        parser.add_argument("--profile", action="append", metavar="NAME",
                            help="stress profile (lwsbuild/resources/profiles.toml), repeatable; default: every profile")
    else:
        parser.add_argument("--profile", default="default", metavar="NAME",
                            help="stress profile (lwsbuild/resources/profiles.toml); harness flags given here override its values")


def report_argument(parser: argparse.ArgumentParser) -> None:
    # a command that always writes a report sets its default first (parser.set_defaults(report=...))
    default = parser.get_default("report")
    parser.add_argument("--report", metavar="DIR", help="write the JSON, the raw logs and a plot (PNG) into DIR"
                        + (f" (default: ./{default})" if default else ""))


def cmd_stress(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from lwsbuild.common import cache, reportdir
    from lwsbuild.errors import DefectFound, UsageError
    from lwsbuild.stress import profiles, report
    from lwsbuild.stress import run as stress

    named = profiles.with_overrides(args.profile, vars(args))
    # --report DIR is checked before anything is built. Without it the logs go to a scratch directory
    # in the cache, removed once the run has been judged; a run that could not be judged (an error
    # naming a log in it) leaves it for the user to read until the next run sweeps it.
    directory = reportdir.ready(Path(args.report)) if args.report else None
    install = _request(args).build()
    directory = directory or cache.scratch_dir("stress")
    try:
        with progress.group(f"stress: profile {named.name}"):
            run = stress.run(install, named.profile, directory)
    except UsageError:  # the harness refused its arguments: its words are in the message already
        if not args.report:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    data = {**run.to_json(), "profile_name": named.name}
    text = f"profile {named.name}: {named.description}\n" + stress.render(run)
    if not args.report:
        del data["logs"]  # they were in the scratch directory: --report keeps them
        shutil.rmtree(directory, ignore_errors=True)
    else:
        data["report"] = report.write(directory, run)
        text += f"\n  report: {directory}" + ("" if data["report"]["plot"] else
                                              f" (plot skipped: {data['report']['plot_skipped']})")
    emit(args, data, text)
    progress.step_summary(stress.summary_table(run, named.name))
    first = run.first_finding
    if first is not None:
        raise DefectFound(f"stress run of {run.label}: {len(run.failing)} defect(s), first {first.kind}: {first.summary}")
    return 0


def prove_arguments(parser: argparse.ArgumentParser) -> None:
    # The build options apply to all three builds it compares (their series are its own).
    add_arguments(parser, ["source", "build"], variant_default="asan")
    parser.set_defaults(variant="asan", report="prove-report")  # prove.json names the runs' logs: they are kept


def cmd_prove(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from lwsbuild.common import reportdir
    from lwsbuild.errors import DefectFound, ProofFailed
    from lwsbuild.stress import profiles, prove

    # Always a kept directory (default ./prove-report), checked before anything is fetched: prove.json
    # points at the runs' logs and plots, so they live next to it; absolute, so those paths hold
    # wherever prove.json is read from.
    directory = reportdir.ready(Path(args.report or "prove-report").resolve())
    builds = {"unfixed": ("all", True), "seed": ("seed", False), "all": ("all", False)}
    request = _request(args)
    specs = {label: dataclasses.replace(request, series=series, unfixed=unfixed).plan()
             for label, (series, unfixed) in builds.items()}
    # Frequent samples: an unfixed build often dies within a second, before a 1 s sample.
    overrides = {"sample_ms": 200, **{k: v for k, v in vars(args).items() if v is not None}}
    chosen = [profiles.with_overrides(name, overrides) for name in (args.profile or profiles.names())]
    proofs = prove.run_all(specs, chosen, directory)
    written = prove.write_all(directory, proofs)
    emit(args, {**proofs.to_json(), "report": written},
         proofs.table() + f"\n  written: {written['markdown']}, {written['json']}")
    progress.step_summary(proofs.table())
    if not proofs.fixed:
        name, first = proofs.first_unclean()
        raise DefectFound(f"the `all` build of lws {proofs.version} {proofs.variant} is not clean under profile "
                          f"{name}: {first.kind if first else 'finding'}: {first.summary if first else ''}")
    if not proofs.reproduced:
        raise ProofFailed(f"the unfixed build of lws {proofs.version} {proofs.variant} ran clean under every "
                          "profile: nothing was proven")
    return 0


def upstream_tests_arguments(parser: argparse.ArgumentParser) -> None:
    # The prepared tree's series is --series; the pristine tree's is always `none` (upstream's bytes).
    from lwsbuild.common.settings import SETTINGS

    add_arguments(parser, only=[s.name for s in SETTINGS if s.name != "unfixed"])
    parser.add_argument("--tests", metavar="REGEX", default="",
                        help="only the tests whose names match (ctest -R); default: every registered test")


def cmd_upstream_tests(args: argparse.Namespace) -> int:
    import dataclasses

    from lwsbuild.errors import UpstreamRegression
    from lwsbuild.upstream import compare

    request = _request(args)
    prepared = request.plan()
    pristine = dataclasses.replace(request, series="none").plan()
    result = compare.compare(pristine, prepared, args.tests)
    emit(args, result.to_json(), result.table())
    progress.step_summary(result.table())
    if not result.ok:
        raise UpstreamRegression(f"upstream's tests on lws {result.version} {result.variant}: {result.verdict()}")
    return 0


# --- parser -------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = entry.OneLineParser(prog="lwsbuild", description="A reproducible, verifiably fixed libwebsockets.")
    parser.add_argument("--version", action="version", version=f"lwsbuild {__version__}")
    entry.global_flags(parser)
    debug = entry.OneLineParser(add_help=False)  # the same flags, accepted after the command too
    entry.global_flags(debug, after_command=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                *groups: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[debug])
        for group in groups:
            group(p)
        p.set_defaults(handler=handler)
        return p

    command("versions", cmd_versions, "list the pinned releases, whether the fix series covers each, and what each fix is there",
            json_argument)
    command("variants", cmd_variants, "list the build variants", json_argument)
    command("debian-patches", cmd_debian_patches, "Debian's security patches for a release (read at run time) "
            "and what the series does about each CVE they name", patch_arguments, json_argument)
    command("export", cmd_export, "the fix series of a release for packagers: quilt/DEP-3 patches, Debian's "
            "source package, a Conan recipe, a Yocto .bbappend", patch_arguments, export_arguments, json_argument)
    audit_parser = command("audit", cmd_audit, "the CVE status of an existing build (a wheel or an install prefix; "
                           "default: this installed lwsbuild's library)", json_argument)
    audit_parser.add_argument("target", nargs="?", metavar="WHEEL|PREFIX",
                              help="a wheel made by `lwsbuild wheel`, or a prefix from `lwsbuild build --json`")
    command("fetch", cmd_fetch, "fetch and verify a release's source tree", source_arguments, json_argument)
    command("patch", cmd_patch, "classify and apply the fix series to a verified tree", patch_arguments,
            json_argument)
    command("build", cmd_build, "build a variant into a cached install prefix", add_arguments, json_argument)
    command("wheel", cmd_wheel, "build a variant and package it as a wheel (py3-none-<platform>)",
            add_arguments, wheel_arguments, json_argument)
    command("verify", cmd_verify, "rebuild what a wheel's or prefix's provenance.json says it is, in a private "
            "cache, and compare byte for byte", verify_arguments, json_argument)
    command("config", cmd_config, "compiler, linker, pkg-config and CMake settings for C programs using the library",
            config_arguments, json_argument)
    command("smoke", cmd_smoke, "a real WebSocket round trip through the library, via ctypes",
            add_arguments, smoke_arguments, json_argument)
    command("matrix", cmd_matrix, "print the CI build matrix (version x variant, expected fixes)",
            matrix_arguments, json_argument)
    command("stress", cmd_stress, "run the C stress harness on a build and judge it by its sanitizer reports",
            add_arguments, harness_arguments, lambda p: profile_argument(p, repeatable=False), report_argument,
            json_argument)
    command("prove", cmd_prove, "stress the unfixed, seed and all builds under every stress profile and compare",
            prove_arguments, harness_arguments, lambda p: profile_argument(p, repeatable=True), report_argument,
            json_argument)
    command("upstream-tests", cmd_upstream_tests, "upstream's own CTest suite on the pristine and the prepared "
            "tree, side by side: fails when the series breaks a test that passes upstream",
            upstream_tests_arguments, json_argument)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # what a re-exec must repeat
    return entry.run(lambda: int(args.handler(args)), args)


if __name__ == "__main__":
    raise SystemExit(main())
