"""An export's output directory: filled under a temporary name beside it, renamed into place whole.

`-o DIR` must be new or empty; an export that fails leaves nothing half-written behind (the
temporary directory is removed), and one that succeeds is complete when DIR appears.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lwsbuild.errors import UsageError


def check(out: Path) -> None:
    """Refuse an output directory that holds something, before any work is done."""
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise UsageError(f"-o {out} exists and is not an empty directory: an export never mixes with other files",
                         hint="pass -o a new directory, or remove it first")


@contextlib.contextmanager
def fresh(out: Path) -> Iterator[Path]:
    """A temporary directory to fill; on a clean exit it becomes `out`."""
    check(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        if out.is_dir():
            out.rmdir()  # empty (checked): replaced by the finished export
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
