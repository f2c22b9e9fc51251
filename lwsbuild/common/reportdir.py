"""A directory the user names for output (`stress --report DIR`, `prove --report DIR`).

DIR itself is the user's (it may be a link to where they want it); what lwsbuild writes inside it
is its own: subdirectories are real directories it made or found as such, and every file is created
fresh (the old name unlinked, then O_CREAT|O_EXCL|O_NOFOLLOW), so a link planted in DIR under one of
the names it writes is replaced, never written through. DIR is checked before any work starts.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from lwsbuild.errors import ReportDirError


def _refuse(path: Path, what: str) -> ReportDirError:
    return ReportDirError(f"report directory {path}: {what}")


def ready(directory: Path) -> Path:
    """`directory`, created with its parents if missing, and known to take new files."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _refuse(directory, "exists and is not a directory") from None
    except NotADirectoryError:
        raise _refuse(directory, "a part of its path is a file, not a directory") from None
    except OSError as exc:
        raise _refuse(directory, f"cannot create it ({exc.strerror or exc})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".lwsbuild-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _refuse(directory, f"cannot write in it ({exc.strerror or exc})") from None
    return directory


def subdirectory(parent: Path, name: str) -> Path:
    """parent/name as a real directory (made here, or one that is already a directory, not a link)."""
    path = parent / name
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise _refuse(path, "exists and is not a directory (a link or a file is never followed)") from None
    except OSError as exc:
        raise _refuse(path, f"cannot create it ({exc.strerror or exc})") from None
    return path


def create(path: Path) -> BinaryIO:
    """A new, empty file at `path` for writing: whatever had the name (a file, a planted link) is
    unlinked first, and the open refuses to follow a link or reuse a file made meanwhile."""
    try:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except IsADirectoryError:
        raise _refuse(path.parent, f"{path.name} is a directory, where a report file goes") from None
    except OSError as exc:
        raise _refuse(path.parent, f"cannot create {path.name} ({exc.strerror or exc})") from None
    return os.fdopen(fd, "wb")


def write_text(path: Path, text: str) -> None:
    with create(path) as out:
        out.write(text.encode("utf-8"))
