"""User-facing progress: rich bars and a live step line on a terminal, silence otherwise, and
GitHub Actions' own folds, annotations and step summary there.

Everything goes to stderr so `--json` output on stdout stays machine-readable. Under `CI` (or when
stderr is no terminal) nothing animates: a step says nothing while it runs, and when it fails the
entry point shows the tail of its log (log_tail) before the error line, so a CI job's output
explains the failure without the cache the log was in. `--verbose` (LWSBUILD_VERBOSE=1) streams a
step's output live instead.

Under GitHub Actions (GITHUB_ACTIONS=true) every logged step (configure, build, install,
packaging, a stress run) streams into a `::group::` fold and says its time after it, the one error
line is also an `::error::` annotation, and `stress` and `prove` append their verdict tables to
$GITHUB_STEP_SUMMARY. The runner reads workflow commands from stderr as from stdout.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when a terminal shows progress (start-up stays fast)
    from pathlib import Path

    from rich.console import Console
    from rich.progress import Progress, TaskID

VERBOSE_ENV = "LWSBUILD_VERBOSE"  # set by --verbose; the environment carries it to nested lwsbuild runs
TAIL_LINES = 40  # of a failed step's log: enough for CMake's error block or a compiler's diagnostics
_TAIL_WIDTH = 400  # a line of the tail is cut there (compiler command lines run to kilobytes)


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose() -> None:
    """Stream every logged step's output from now on, in this process and the lwsbuild runs it starts."""
    os.environ[VERBOSE_ENV] = "1"


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def note(message: str) -> None:
    """A line the user should see even when not on a terminal (mirror failures, warnings)."""
    print(f"lwsbuild: {message}", file=sys.stderr, flush=True)


@contextmanager
def step(description: str) -> Iterator[None]:
    if not interactive() or verbose():  # a spinner would tear the streamed lines apart
        yield
        return
    with _console().status(description):
        yield


def github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _command_data(text: str) -> str:
    """A workflow command's data, escaped as the runner reads it back."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


@contextmanager
def group(title: str) -> Iterator[None]:
    """Under GitHub Actions, what is printed inside goes into a fold titled `title`, and a line after
    it says how long it took; elsewhere nothing is added."""
    if not github_actions():
        yield
        return
    import time

    print(f"::group::{_command_data(title)}", file=sys.stderr, flush=True)
    began = time.monotonic()
    try:
        yield
    finally:
        print("::endgroup::", file=sys.stderr)
        print(f"lwsbuild: {title}: {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)


def annotate_error(line: str, exit_code: int) -> None:
    """Under GitHub Actions, the error line as an annotation of the job."""
    if github_actions():
        print(f"::error title=lwsbuild (exit {exit_code})::{_command_data(line)}", file=sys.stderr, flush=True)


def step_summary(markdown: str) -> None:
    """Under GitHub Actions, `markdown` appended to the job's summary page."""
    path = os.environ.get("GITHUB_STEP_SUMMARY") if github_actions() else None
    if path:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(markdown.rstrip("\n") + "\n\n")


def run_logged(description: str, command: list[str], log: Path, env: dict[str, str],
               cwd: Path | None = None) -> int:
    """Run `command` with its output (stdout and stderr, in order) appended to `log`; the exit status.
    Verbose (and under GitHub Actions, inside a fold): each line goes to stderr too, as it comes."""
    import subprocess  # here: the CLI imports this module before any command runs

    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        if github_actions():
            with group(description.rstrip("…")):
                return _streamed(command, out, env, cwd)
        if not verbose():
            with step(description):
                return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      check=False).returncode
        note(f"{description} $ {' '.join(command)}")
        return _streamed(command, out, env, cwd)


def _streamed(command: list[str], out: IO[str], env: dict[str, str], cwd: Path | None) -> int:
    """Run `command`, each line of its output into `out` and onto stderr as it comes."""
    import subprocess

    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                          text=True, errors="replace") as proc:
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            out.write(line)
            sys.stderr.write(line)
            sys.stderr.flush()
        out.flush()
        return proc.wait()


def log_tail(log: Path, count: int = TAIL_LINES) -> None:
    """The last `count` lines of `log` on stderr, between lines naming it."""
    try:
        with log.open(errors="replace") as handle:
            lines = deque((line.rstrip("\n") for line in handle), maxlen=count)
    except OSError as exc:
        note(f"the log {log} cannot be read: {exc.strerror or exc}")
        return
    print(f"lwsbuild: the last {len(lines)} lines of {log}:", file=sys.stderr)
    for line in lines:
        print(f"  | {line[:_TAIL_WIDTH]}", file=sys.stderr)
    print(f"lwsbuild: end of {log}", file=sys.stderr, flush=True)


class _Bar:
    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress, self._task = progress, task

    def advance(self, amount: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=amount)


@contextmanager
def download_bar(description: str, total: int | None) -> Iterator[_Bar]:
    if not interactive():
        yield _Bar(None, None)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=_console(), transient=True) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
