"""What a tree holds, file by file: a cache entry's record, taken when it is published (cache.py
stores it beside the entry), checked before it is served; and a comparison of two trees (verify).

A manifest records, per path under the entry, its kind, size, modification time, mode and content
(a file's sha256, a link's target). Checking costs one `lstat` per path when `full` is false (the
cheap check every use makes: a changed size, time or mode, a file gone or added); `full` hashes
every file again (what `--refresh` asks for). Only a change is reported, path by path, so the line
that says an entry is rebuilt can name what changed.

An entry whose sizes and times changed but whose content did not (a copy that kept no times, a
`touch`) passes the full check; `refreshed` then records the new times so the next cheap check
passes again.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20

# path -> [kind, size, mtime_ns, mode, content]: kind "file" | "link" | "dir"; content is a file's
# sha256, a link's target, "" for a directory.
Manifest = dict[str, list[object]]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _walk(root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of everything under `root` (which may be a single file)."""
    top = os.lstat(root)
    if not stat.S_ISDIR(top.st_mode):
        yield "", str(root), top
        return
    pending = [("", str(root))]
    while pending:
        relative, absolute = pending.pop()
        with os.scandir(absolute) as listing:
            for item in listing:
                name = f"{relative}/{item.name}" if relative else item.name
                st = item.stat(follow_symlinks=False)
                yield name, item.path, st
                if stat.S_ISDIR(st.st_mode):
                    pending.append((name, item.path))


def _kind(st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if stat.S_ISREG(st.st_mode) else "other"


def _record(absolute: str, st: os.stat_result, content: bool) -> list[object]:
    kind = _kind(st)
    if kind == "dir":  # a directory's size and time change with its entries: its presence is the fact
        return [kind, 0, 0, stat.S_IMODE(st.st_mode), ""]
    data = os.readlink(absolute) if kind == "link" else _sha256(absolute) if content and kind == "file" else ""
    return [kind, st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), data]


def take(root: Path) -> Manifest:
    """The manifest of `root` as it is now (every file hashed)."""
    return {name: _record(absolute, st, True) for name, absolute, st in _walk(root)}


def differences(root: Path, recorded: Manifest, *, full: bool) -> list[str]:
    """What changed under `root` since `recorded`, one "path: what" per change. Cheap (`full` false):
    kinds, sizes, times, modes and link targets; full: the same but times, and every file's sha256."""
    found: list[str] = []
    seen: set[str] = set()
    try:
        listing = list(_walk(root))
    except FileNotFoundError:
        return ["the entry itself is gone"]
    for name, absolute, st in listing:
        seen.add(name)
        was = recorded.get(name)
        shown = name or root.name
        if was is None:
            found.append(f"{shown}: added")
            continue
        kind, size, mtime_ns, mode, content = was
        now = _record(absolute, st, False)
        if now[0] != kind:
            found.append(f"{shown}: a {now[0]} where a {kind} was")
        elif now[3] != mode:
            found.append(f"{shown}: mode changed")
        elif kind == "link" and now[4] != content:
            found.append(f"{shown}: link target changed")
        elif kind == "file" and (now[1] != size or (not full and now[2] != mtime_ns)):
            found.append(f"{shown}: {'size' if now[1] != size else 'modification time'} changed")
        elif kind == "file" and full and _sha256(absolute) != content:
            found.append(f"{shown}: content changed")
    found += [f"{name or root.name}: missing" for name in sorted(set(recorded) - seen)]
    return found


def compare(first: Manifest, second: Manifest) -> list[str]:
    """How two trees' manifests differ in what they hold (kind, mode, bytes, link target; not times)."""
    found: list[str] = []
    for name in sorted(first.keys() | second.keys()):
        a, b = first.get(name), second.get(name)
        if a is None or b is None:
            found.append(f"{name}: only in the {'second' if a is None else 'first'}")
        elif a[0] != b[0]:
            found.append(f"{name}: a {a[0]} in the first, a {b[0]} in the second")
        elif a[3] != b[3]:
            found.append(f"{name}: mode {int(str(a[3])):o} vs {int(str(b[3])):o}")
        elif a[4] != b[4]:
            what = "link target" if a[0] == "link" else f"content (sha256 {str(a[4])[:12]} vs {str(b[4])[:12]})"
            found.append(f"{name}: {what} differs")
    return found


def summary(changes: list[str], limit: int = 3) -> str:
    """"a: content changed, b: missing (and 4 more)"."""
    shown = ", ".join(changes[:limit])
    return shown + (f" (and {len(changes) - limit} more)" if len(changes) > limit else "")
