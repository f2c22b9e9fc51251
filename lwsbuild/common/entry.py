"""How a command run from the shell ends: one error line and one exit code (lwsbuild/errors.py).

`lwsbuild` (cli.py) and `python -m lwsbuild.native.smoke` (smoke.py) parse with OneLineParser and run their
command through run(), so a failure gives the same line and the same exit code whichever way the
command was started. cibuildwheel's `--debug-traceback` adds the Python traceback for bug reports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from lwsbuild.common import progress
from lwsbuild.errors import USAGE, InternalError, LwsbuildError

DEBUG_HELP = "on an error, print the Python traceback too (for reporting a bug in lwsbuild)"
VERBOSE_HELP = ("stream the output of the build steps (CMake, the compiler, scikit-build-core) live; "
                "otherwise a failed step shows its log's last lines")


class OneLineParser(argparse.ArgumentParser):
    """argparse with lwsbuild's one-line error (argparse's own is the usage text plus a line)."""

    def error(self, message: str) -> NoReturn:
        print(f"lwsbuild: error: {self.prog}: {' '.join(message.split())} (fix: see `{self.prog} --help`)",
              file=sys.stderr)
        raise SystemExit(USAGE.code)


def global_flags(parser: argparse.ArgumentParser, *, after_command: bool = False, builds: bool = True) -> None:
    """--debug-traceback, and --verbose where the command can build (`builds`). After a command (a
    subparser's parent) they default to SUPPRESS, so a subcommand does not reset to False what was
    given before it."""
    flags = [("--debug-traceback", DEBUG_HELP)] + ([("--verbose", VERBOSE_HELP)] if builds else [])
    for flag, help_text in flags:
        if after_command:
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, action="store_true", help=help_text)


def run(command: Callable[[], int], args: argparse.Namespace) -> int:
    """Run a parsed command under lwsbuild's error policy: its exit code, or one error line and the
    code of the error's class; anything unforeseen is a bug (InternalError, exit 1)."""
    debug = bool(getattr(args, "debug_traceback", False))
    if getattr(args, "verbose", False):
        progress.set_verbose()
    try:
        return command()
    except LwsbuildError as exc:
        return fail(exc, debug)
    except KeyboardInterrupt:
        print("lwsbuild: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lwsbuild versions | head`: the reader has all it wanted
        sys.stderr.close()
        return 0
    except OSError as exc:  # a read-only, immutable or full cache, wherever the write was made
        from lwsbuild.common import cache

        return fail(cache.unwritable(exc) or InternalError(describe(exc)), debug)
    except Exception as exc:  # noqa: BLE001 - a bug: one line too, the traceback with --debug-traceback
        return fail(InternalError(describe(exc)), debug)


def fail(error: LwsbuildError, debug: bool) -> int:
    """Report `error` (its log's tail first, unless the log was streamed already) and return its code."""
    if error.log is not None and not progress.verbose():
        progress.log_tail(error.log)
    if debug:
        import traceback

        traceback.print_exc()
    progress.annotate_error(error.one_line(), error.exit_code)
    return error.report()


def describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"unexpected {type(exc).__name__}" + (f": {text[:300]}" if text else "")
