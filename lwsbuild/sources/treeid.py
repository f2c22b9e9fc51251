"""The identity of a source: its git tree id, whatever mirror delivered the bytes."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path


def isolated_git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which git sees no user/system config and no enclosing repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_TERMINAL_PROMPT="0")
    env.update(extra or {})
    return env


def _blob_id(header: bytes, chunks: Iterable[bytes]) -> bytes:
    digest = hashlib.sha1(header)
    for chunk in chunks:
        digest.update(chunk)
    return digest.digest()


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


def _tree(path: str) -> bytes | None:
    """The binary id of the tree object for directory `path`; None when it holds no file (git
    records no empty trees)."""
    entries = []
    with os.scandir(path) as listing:
        for entry in listing:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if entry.name == ".git":  # git never tracks a .git path component
                    continue
                sub = _tree(entry.path)
                if sub is None:
                    continue
                mode, oid, key = b"40000", sub, os.fsencode(entry.name) + b"/"
            elif stat.S_ISLNK(st.st_mode):
                target = os.fsencode(os.readlink(entry.path))
                mode, oid, key = b"120000", _blob_id(b"blob %d\0" % len(target), [target]), os.fsencode(entry.name)
            elif stat.S_ISREG(st.st_mode):
                mode = b"100755" if st.st_mode & stat.S_IXUSR else b"100644"
                oid = _blob_id(b"blob %d\0" % st.st_size, _file_chunks(entry.path))
                key = os.fsencode(entry.name)
            else:  # sockets, fifos, devices: git does not track them either
                continue
            entries.append((key, mode + b" " + os.fsencode(entry.name) + b"\0" + oid))
    if not entries:
        return None
    # git orders entries by name, a directory's name compared as if it ended in '/'.
    body = b"".join(record for _, record in sorted(entries))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).digest()


def tree_id(path: Path) -> str:
    """What `git add -A -f . && git write-tree` gives over every file of `path` (.gitignore ignored).

    Computed from git's object format directly: the same id, without writing every blob into a
    scratch object store (an order of magnitude faster on a libwebsockets tree). Nested
    repositories are hashed as plain directories, not as submodule links.
    """
    return (_tree(str(path)) or hashlib.sha1(b"tree 0\0").digest()).hex()
