"""Cache locations, atomic publication and locks.

Layout under the cache root (platformdirs user cache, or $LWSBUILD_CACHE):
  downloads/<sha256>/<filename>   fetched archives, by content hash
  trees/<tree-id>/                verified pristine source trees (+ trees/<tree-id>.json: where from)
  prepared/<key>/                 patched trees, by (tree id, series hash, mode)
  builds/<key>/{build,prefix}     one build dir and install prefix per build key
  apt/<suites>/                   the private apt state of the debian mirror
An entry exists under its final name only once complete: it is made under a dot-prefixed temporary
name beside it and renamed into place while holding the entry's lock, so a killed run leaves
nothing a later run could mistake for complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CacheError

_TMP_MARK = ".tmp-"


def root() -> Path:
    override = os.environ.get("LWSBUILD_CACHE")
    if override:
        path = Path(override).expanduser().resolve()
    else:
        import platformdirs

        path = platformdirs.user_cache_path("lwsbuild")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create the cache directory {path}: {exc.strerror}") from None
    return path


def area(name: str) -> Path:
    path = root() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create {path}: {exc.strerror}") from None
    return path


def lock(entry: Path):
    from filelock import FileLock

    entry.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(entry.parent / f".{entry.name}.lock"))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def publishing(entry: Path) -> Iterator[Path | None]:
    """Hold `entry`'s lock; yield None if it is complete already, else a temporary path to fill.

    The caller creates a file or directory at the yielded path; on a clean exit it is renamed to
    `entry`, on an exception it is removed. Leftovers of killed runs are swept under the lock.
    """
    with lock(entry):
        if entry.exists():
            yield None
            return
        for stale in entry.parent.glob(f".{entry.name}{_TMP_MARK}*"):
            _remove(stale)
        tmp = Path(tempfile.mktemp(prefix=f".{entry.name}{_TMP_MARK}", dir=entry.parent))
        try:
            yield tmp
            if not tmp.exists():
                raise CacheError(f"nothing was produced for cache entry {entry}")
            os.replace(tmp, entry)
        finally:
            if tmp.exists():
                _remove(tmp)


def write_json_atomic(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{_TMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
