"""Cache locations, atomic publication and locks.

Layout under the cache root (platformdirs user cache, or $LWSBUILD_CACHE):
  downloads/<sha256>/<filename>   fetched archives, by content hash
  trees/<tree-id>/                verified pristine source trees (+ trees/<tree-id>.json: where from)
  prepared/<key>/                 patched trees, by (tree id, series hash, mode)
  builds/<key>/{build,prefix}     one build dir and install prefix per build key
  apt/<suites>/                   the private apt state of the debian mirror
  scratch/.<label>-<pid>-<random>/  one run's scratch (git apply's empty repository, a wheel's staging,
                                  a stress run's logs without --report), removed when it ends and swept
                                  by the next run if its process died: nothing goes to the system's /tmp
An entry exists under its final name only once complete: it is made under a dot-prefixed temporary
name beside it and renamed into place while holding the entry's lock, so a killed run leaves
nothing a later run could mistake for complete. Its manifest (`<entry>.manifest.json`, manifest.py)
is written just before the rename; `check` compares the entry with it before the entry is served.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lwsbuild.common import manifest
from lwsbuild.common.paths import expand_user
from lwsbuild.errors import CacheError

_TMP_MARK = ".tmp-"
TREES = "trees"  # the pristine trees' area: fetch publishes there, a rebuild's fresh cache is seeded there
# errnos that mean "this directory cannot be written to" (read-only, immutable, no permission, full)
_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})


def location() -> Path:
    """Where the cache is (nothing is created)."""
    override = os.environ.get("LWSBUILD_CACHE")
    if override:
        return expand_user(override, "LWSBUILD_CACHE").resolve()
    import platformdirs

    return platformdirs.user_cache_path("lwsbuild")


def root() -> Path:
    path = location()
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # it is written into CMake files and JSON: text, not arbitrary bytes
        raise CacheError(f"the cache directory {str(path).encode('utf-8', 'surrogateescape')!r} is not a UTF-8 path",
                         hint="point LWSBUILD_CACHE at a directory whose path is UTF-8 text") from None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create the cache directory {path}: {exc.strerror}") from None
    return path


def _space() -> tuple[int, int] | None:
    """(bytes free for an unprivileged writer, bytes in all) of the cache's file system, None if unknown."""
    try:
        found = os.statvfs(location())
    except OSError:
        return None
    return found.f_bavail * found.f_frsize, found.f_blocks * found.f_frsize


def _mib(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB"


def full(needed: int, what: str, free: int | None = None) -> CacheError:
    """The error of a cache without room for `what` (`needed` bytes). `free`: what was free before
    the attempt (a check beforehand); after a failed write only the file system's size is said."""
    space = _space()
    room = (f"{_mib(free)} free" if free is not None
            else f"its file system holds {_mib(space[1])} in all" if space is not None else "it is full")
    return CacheError(f"the cache {location()} has no room for {what}: it needs about {_mib(needed)} ({needed} bytes), "
                      f"{room}", hint=f"free space on {location()}'s file system, or point LWSBUILD_CACHE at a "
                                      "directory with room")


def require_free(needed: int, what: str) -> None:
    """Fail before writing when the cache cannot hold `what` (`needed` bytes, an estimate)."""
    space = _space()
    if space is not None and space[0] < needed:
        raise full(needed, what, free=space[0])


def is_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def unwritable(exc: OSError) -> CacheError | None:
    """The CacheError for an OSError on a path inside the cache (read-only, immutable, full), else None.

    The CLI's last resort: every write into the cache goes through here when it fails, wherever it
    was made, so the user learns which directory and what to do instead of reading a traceback."""
    if exc.errno not in _UNWRITABLE:
        return None
    where = location()
    for name in (exc.filename, exc.filename2):
        if name is None:
            continue
        path = Path(os.fsdecode(name))
        if path == where or where in path.parents:
            no_room = is_full(exc)
            directory = path if path.is_dir() else path.parent  # the one that refused (temporaries come and go)
            return CacheError(f"cannot write in the cache directory {directory} ({path.name}: {exc.strerror or exc})",
                              hint=f"free space on {where}'s file system, or point LWSBUILD_CACHE at another "
                                   "directory" if no_room else None)
    return None


def area(name: str) -> Path:
    path = root() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create {path}: {exc.strerror}") from None
    return path


SCRATCH = "scratch"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def scratch_dir(label: str, area_name: str = SCRATCH) -> Path:
    """A new directory `.<label>-<pid>-<random>` in the cache area `area_name`. Such directories of
    processes that are gone (killed before they could remove theirs) are swept first."""
    parent = area(area_name)
    for stale in parent.glob(f".{label}-*-*"):
        pid = stale.name[len(label) + 2:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(stale)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{label}-{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise unwritable(exc) or CacheError(f"cannot create a scratch directory in {parent}: {exc.strerror or exc}") from None


@contextmanager
def scratch(label: str) -> Iterator[Path]:
    """A scratch directory under the cache (scratch_dir) for the `with` block, removed after it."""
    path = scratch_dir(label)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def lock(entry: Path) -> Iterator[None]:
    """Hold `entry`'s file lock (a read-only cache cannot hold one: a CacheError says where)."""
    from filelock import FileLock

    path = entry.parent / f".{entry.name}.lock"
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        held = FileLock(str(path))
        held.acquire()
    except OSError as exc:
        raise CacheError(f"cannot take the lock {path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        held.release()


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
            # Taken from the temporary copy: a rename keeps every file's time, so it holds for `entry`.
            record_manifest(entry, tmp)
            try:
                os.replace(tmp, entry)
            except OSError as exc:
                raise CacheError(f"cannot publish {entry}: {exc.strerror or exc}") from None
        finally:
            if tmp.exists():
                _remove(tmp)


_MANIFEST_FORMAT = 1


def manifest_path(entry: Path) -> Path:
    """Where an entry's manifest is: beside it, `<entry>.manifest.json`."""
    return entry.with_name(entry.name + ".manifest.json")


def record_manifest(entry: Path, contents: Path | None = None) -> None:
    """Write `entry`'s manifest, taken from `contents` (default: the entry itself)."""
    write_json_atomic(manifest_path(entry), {"format": _MANIFEST_FORMAT,
                                             "entries": manifest.take(contents or entry)})


def load_manifest(entry: Path) -> manifest.Manifest | None:
    """`entry`'s recorded manifest, or None when it has none (or it is unreadable)."""
    data = read_json(manifest_path(entry))
    entries = data.get("entries") if data and data.get("format") == _MANIFEST_FORMAT else None
    return entries if isinstance(entries, dict) else None


def recorded_contents(entry: Path) -> manifest.Manifest:
    """What `entry` holds, file by file: its manifest as recorded at publication, or taken now when it
    has none. Only for an entry this run has just made (a rebuild's): others are hashed again."""
    return load_manifest(entry) or manifest.take(entry)


def check(entry: Path, full: bool) -> list[str] | None:
    """What changed in `entry` since it was published ([] when nothing did), or None when it has no
    manifest (an older lwsbuild's entry, or one whose writing was cut short). The cheap check looks
    at sizes and times; when only those differ, the content decides (and the new times are recorded);
    `full` hashes everything."""
    recorded = load_manifest(entry)
    if recorded is None:
        return None
    changes = manifest.differences(entry, recorded, full=full)
    if changes and not full:
        changes = manifest.differences(entry, recorded, full=True)
        if not changes:  # the same bytes with other times (a copy, a touch): remember the times
            record_manifest(entry)
    return changes


def intact(entry: Path, full: bool, *, what: str, redo: str, identity: tuple[Callable[[], str], str] | None = None,
           damage: str | None = None) -> bool:
    """Whether `entry` is as it was published (`check`); when not, it is discarded with one line
    naming what changed ("the {what} ENTRY changed since it was made (...): discarding it and {redo}").

    `identity` (compute, expected) is the entry's own identity (a tree id): computed when the entry
    has no manifest (then recorded, if it matches) and under `full`, so a manifest rewritten with a
    file cannot hide the change. `damage`: what the caller found wrong already (a missing library)."""
    changes = [damage] if damage else check(entry, full)
    if identity is not None and (changes is None or (full and not changes)):
        compute, expected = identity
        actual = compute()
        if actual != expected:
            changes = (changes or []) + [f"its id is {actual}, not {expected}"]
        elif changes is None:
            record_manifest(entry)
            changes = []
    if changes is None:
        changes = ["it has no manifest"]
    if not changes:
        return True
    from lwsbuild.common import progress

    progress.note(f"the {what} {entry} changed since it was made ({manifest.summary(changes)}): discarding it and "
                  f"{redo}")
    discard(entry)
    return False


def discard(entry: Path) -> None:
    """Take a broken entry out of use: renamed aside under its lock (atomic for readers), then removed
    with its manifest."""
    with lock(entry):
        manifest_path(entry).unlink(missing_ok=True)
        if not entry.exists():
            return
        aside = Path(tempfile.mktemp(prefix=f".{entry.name}{_TMP_MARK}broken-", dir=entry.parent))
        try:
            os.replace(entry, aside)
        except OSError as exc:
            raise CacheError(f"cannot remove the broken cache entry {entry}: {exc.strerror or exc}",
                             hint=f"remove {entry} by hand, or point LWSBUILD_CACHE at a writable directory") from None
        _remove(aside)


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


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object this package wrote with write_json_atomic, or None if it cannot be read."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data
