"""User-facing progress: rich bars and a live step line on a terminal, silence otherwise.

Everything goes to stderr so `--json` output on stdout stays machine-readable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when a terminal shows progress (start-up stays fast)
    from rich.console import Console
    from rich.progress import Progress, TaskID


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def note(message: str) -> None:
    """A line the user should see even when not on a terminal (mirror failures, warnings)."""
    print(f"lwsbuild: {message}", file=sys.stderr, flush=True)


@contextmanager
def step(description: str) -> Iterator[None]:
    if not interactive():
        yield
        return
    with _console().status(description):
        yield


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
