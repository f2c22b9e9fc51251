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


# --- submodule links -----------------------------------------------------------------------------
# A release tree may hold gitlinks (mode 160000: a submodule pinned to a commit). No archive and no
# plain directory can carry one; releases.toml lists the pin's, and verification adds them back
# where the path is absent or an empty directory (what an archive or an uninitialised checkout has).

def _leaf(entry: os.DirEntry[str]) -> tuple[bytes, bytes] | None:
    """(sort key, tree record) of a file or symlink, as _tree encodes them; None for anything else."""
    st = entry.stat(follow_symlinks=False)
    name = os.fsencode(entry.name)
    if stat.S_ISLNK(st.st_mode):
        target = os.fsencode(os.readlink(entry.path))
        return name, b"120000 " + name + b"\0" + _blob_id(b"blob %d\0" % len(target), [target])
    if stat.S_ISREG(st.st_mode):
        mode = b"100755" if st.st_mode & stat.S_IXUSR else b"100644"
        return name, mode + b" " + name + b"\0" + _blob_id(b"blob %d\0" % st.st_size, _file_chunks(entry.path))
    return None


def _tree_with_gitlinks(path: str | None, links: dict[tuple[str, ...], bytes]) -> bytes | None:
    """_tree of `path` (None: absent) with `links` (relative path parts -> commit) added."""
    here = {parts[0]: commit for parts, commit in links.items() if len(parts) == 1}
    below: dict[str, dict[tuple[str, ...], bytes]] = {}
    for parts, commit in links.items():
        if len(parts) > 1:
            below.setdefault(parts[0], {})[parts[1:]] = commit
    entries = []
    seen: set[str] = set()
    if path is not None and os.path.isdir(path):
        with os.scandir(path) as listing:
            for entry in listing:
                seen.add(entry.name)
                if entry.is_dir(follow_symlinks=False):
                    if entry.name == ".git":
                        continue
                    sub = (_tree_with_gitlinks(entry.path, below[entry.name]) if entry.name in below
                           else _tree(entry.path))
                    if sub is None and entry.name in here:  # an empty directory where the link goes
                        encoded = os.fsencode(entry.name)
                        entries.append((encoded, b"160000 " + encoded + b"\0" + here[entry.name]))
                    elif sub is not None:
                        encoded = os.fsencode(entry.name)
                        entries.append((encoded + b"/", b"40000 " + encoded + b"\0" + sub))
                elif (leaf := _leaf(entry)) is not None:
                    entries.append(leaf)
    for name in sorted(set(here) - seen):  # absent: the link alone
        encoded = os.fsencode(name)
        entries.append((encoded, b"160000 " + encoded + b"\0" + here[name]))
    for name in sorted(set(below) - seen):  # absent directories on the way to a link
        sub = _tree_with_gitlinks(None, below[name])
        assert sub is not None  # a link lies below: the tree is never empty
        encoded = os.fsencode(name)
        entries.append((encoded + b"/", b"40000 " + encoded + b"\0" + sub))
    if not entries:
        return None
    body = b"".join(record for _, record in sorted(entries))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).digest()


def tree_id_with_gitlinks(path: Path, gitlinks: Iterable[tuple[str, str]]) -> str:
    """tree_id(path) with the pin's gitlinks (path, commit) added where the path is absent or an
    empty directory; a checked-out submodule (a non-empty directory) stays a plain directory."""
    links = {tuple(p.strip("/").split("/")): bytes.fromhex(commit) for p, commit in gitlinks}
    if not links:
        return tree_id(path)
    return (_tree_with_gitlinks(str(path), links) or hashlib.sha1(b"tree 0\0").digest()).hex()
