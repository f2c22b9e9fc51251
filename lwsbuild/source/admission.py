"""What may enter a source tree, whatever mirror delivered it: one check shared by every mirror kind.

A mirror is untrusted until the tree id says otherwise, and the tree id is computed over what was
written, so the writing itself must be safe. Every mirror builds its tree through `TreeWriter`
(archive members, a `dir:` walk, `git archive` output), which refuses, before anything is written:
  - names that are absolute, climb with `..`, or have a component git treats as `.git` (any case,
    trailing dots/spaces, `git~1`, HFS-ignorable characters): a `.git` in a tree is a repository
    whose config and attributes git obeys (filters, hooks) when anything runs git there;
  - anything but directories, regular files and symbolic links (devices, fifos, sockets);
  - a member under a file or a link, two members of one name, links whose target leaves the tree;
  - more than MAX_TREE_MEMBERS members or MAX_TREE_BYTES bytes (an archive bomb stops early), or
    more than MAX_LINK_TARGET_BYTES of link targets (what resolving the links costs is bounded).
Links are made last and resolved from the writer's own record of what it made: no member is ever
written through a link and no check depends on os.path.realpath (which stops resolving at
PATH_MAX, the hole in some CPython releases' tarfile 'data' filter). Each link is resolved once and
reused by the links through it, so admission is linear in the archive; and it has a deadline.
`audit()` runs the same checks over a finished tree, so a mirror kind that forgot them still fails.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lwsbuild.errors import SourceError, UnsafeSource

MAX_TREE_BYTES = 1 << 30  # 1 GiB; a libwebsockets release tree is ~40 MB
MAX_TREE_MEMBERS = 100_000  # a libwebsockets release tree has ~4,000
MAX_LINK_HOPS = 40  # what Linux follows before ELOOP
MAX_LINK_TARGET_BYTES = 1 << 20  # all link targets together; a libwebsockets release tree has a few dozen bytes
MAX_SHOWN = 120  # characters of a name or spec an error line quotes

# Code points HFS+ ignores in names, so `.g\u200cit` is `.git` there (git refuses them for this).
_IGNORABLE = {*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF}
_CHUNK = 1 << 16


def shown(text: str, quote: bool = True) -> str:
    """`text` for an error line (quoted unless `quote` is False), shortened: a 100 kB path must not
    become a 100 kB line."""
    body = repr(text) if quote else text
    return body if len(body) <= MAX_SHOWN else f"{body[:MAX_SHOWN]}…({len(text)} characters)"


def is_git_name(name: str) -> bool:
    """Whether some filesystem git runs on reads `name` as `.git`."""
    folded = "".join(c for c in name if ord(c) not in _IGNORABLE).rstrip(" .").lower()
    return folded in (".git", "git~1")


class TreeWriter:
    """Builds one source tree under `root` (created here), or only checks one when `dry`."""

    def __init__(self, root: Path, origin: str, error: type[SourceError] = UnsafeSource, *, dry: bool = False,
                 seconds: float | None = None) -> None:
        self.root, self.origin, self.error, self.dry = root, origin, error, dry
        # Extraction has a deadline, as a download has: no member list may cost more than it.
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.members = 0
        self.bytes = 0
        self.link_bytes = 0
        self._kinds: dict[tuple[str, ...], str] = {(): "dir"}  # what was made: "dir" | "file" | "link"
        self._links: dict[tuple[str, ...], str] = {}
        if not dry:
            root.mkdir()

    # --- names and limits ---

    def refuse(self, what: str) -> SourceError:
        return self.error(f"{self.origin} {what}")

    def parts(self, name: str) -> tuple[str, ...]:
        """The checked components of a member name ('/'-separated); () is the tree's top."""
        if "\0" in name:
            raise self.refuse(f"has a member name with a NUL byte: {shown(name)}")
        if name.startswith("/"):
            raise self.refuse(f"has a member that escapes the tree: {shown(name)}")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            raise self.refuse(f"has a member that escapes the tree: {shown(name)}")
        if any(is_git_name(p) for p in set(parts)):
            raise self.refuse(f"has a .git path (a repository whose config git would obey): {shown(name)}")
        if len(os.fsencode(name)) > 4096 or any(len(os.fsencode(p)) > 255 for p in parts):
            raise self.refuse(f"has a member name longer than a filesystem allows: {shown(name)}")
        return parts

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self.refuse(f"took longer than {self.seconds:g} s to admit ({self.members} members so far; "
                              "the limit is LWSBUILD_DOWNLOAD_TIMEOUT's)")

    def _count(self, size: int) -> None:
        if self.members % 256 == 0:
            self.check_deadline()
        self.members += 1
        if self.members > MAX_TREE_MEMBERS:
            raise self.refuse(f"has more than {MAX_TREE_MEMBERS} members, the limit for a source tree")
        self.bytes += size
        if self.bytes > MAX_TREE_BYTES:
            raise self.refuse(f"expands to more than {MAX_TREE_BYTES >> 20} MiB, the limit for a source tree")

    def _claim(self, parts: tuple[str, ...], kind: str) -> Path:
        """Make the parents of `parts` (each a directory of this tree, never a file or a link) and
        reserve its name."""
        for depth in range(1, len(parts)):
            prefix = parts[:depth]
            made = self._kinds.get(prefix)
            if made is None:
                self._kinds[prefix] = "dir"
                if not self.dry:
                    os.mkdir(self.root.joinpath(*prefix), 0o755)
            elif made != "dir":
                raise self.refuse(f"has a member under a {made}: {shown('/'.join(parts))} "
                                  f"(under {shown('/'.join(prefix))})")
        if parts in self._kinds:
            raise self.refuse(f"has two members named {shown('/'.join(parts))}")
        self._kinds[parts] = kind
        return self.root.joinpath(*parts)

    # --- members ---

    def directory(self, name: str) -> None:
        parts = self.parts(name)
        if self._kinds.get(parts) == "dir":  # listed again, or made earlier as a parent
            return
        self._count(0)
        path = self._claim(parts, "dir")
        if not self.dry:
            os.mkdir(path, 0o755)

    def file(self, name: str, size: int, data: IO[bytes] | None, executable: bool, mtime: float | None = None) -> None:
        """A regular file of `size` bytes read from `data` (None when dry), with the mtime the
        mirror gave (as tar and copytree kept it)."""
        parts = self.parts(name)
        if not parts:
            raise self.refuse("has a file where the tree's top directory should be")
        self._count(size)
        path = self._claim(parts, "file")
        if self.dry or data is None:
            return
        # O_EXCL | O_NOFOLLOW: a new file, never one reached through a link (belt and braces:
        # parents are directories this writer made).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755 if executable else 0o644)
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := data.read(_CHUNK):
                written += len(chunk)
                if written > size:
                    raise self.refuse(f"has a member longer than it declares: {shown(name)}")
                out.write(chunk)
            if mtime is not None:
                out.flush()
                os.utime(out.fileno(), (mtime, mtime))
        if written != size:
            raise self.refuse(f"has a member shorter than it declares: {shown(name)}")

    def symlink(self, name: str, target: str) -> None:
        parts = self.parts(name)
        if not parts:
            raise self.refuse("has a link where the tree's top directory should be")
        if not target or "\0" in target or len(os.fsencode(target)) > 4096:
            raise self.refuse(f"has a link with an unusable target: {shown(name)}")
        if target.startswith("/"):
            raise self.refuse(f"has a link leaving the tree: {shown(name)} -> {shown(target)}")
        if any(is_git_name(p) for p in set(target.split("/"))):
            raise self.refuse(f"has a link into a .git path: {shown(name)} -> {shown(target)}")
        self.link_bytes += len(target)
        if self.link_bytes > MAX_LINK_TARGET_BYTES:
            raise self.refuse(f"has more than {MAX_LINK_TARGET_BYTES >> 10} KiB of link targets, the limit for a "
                              "source tree (resolving them is what it costs)")
        self._count(0)
        self._claim(parts, "link")
        self._links[parts] = target

    def hardlink(self, name: str, target_name: str) -> None:
        parts, target = self.parts(name), self.parts(target_name)
        if self._kinds.get(target) != "file":
            raise self.refuse(f"has a hard link to something other than an earlier file: {shown(name)} -> {shown(target_name)}")
        self._count(0)
        path = self._claim(parts, "file")
        if not self.dry:
            os.link(self.root.joinpath(*target), path, follow_symlinks=False)

    def finish(self) -> None:
        """Check every link's target resolves inside the tree, then make the links."""
        _LinkResolver(self).check_all()
        if not self.dry:
            for parts, target in self._links.items():
                os.symlink(target, self.root.joinpath(*parts))


class _Node:
    """One name of the tree while its links are resolved: a member, or a name a link's target walks
    through that no member has (followed by name, as the kernel would once something made it)."""

    __slots__ = ("children", "hops", "name", "parent", "resolved", "target")

    def __init__(self, name: str, parent: _Node | None, target: str | None = None) -> None:
        self.name, self.parent, self.target = name, parent, target
        self.children: dict[str, _Node] = {}
        self.resolved: _Node | None = None  # where a link ends up, once known
        self.hops = 0  # links followed to get there (Linux stops at MAX_LINK_HOPS)

    def child(self, name: str) -> _Node:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = _Node(name, self)
        return node


class _LinkResolver:
    """Resolves every link of a TreeWriter once, reusing what earlier links resolved to: the cost is
    linear in the total length of the targets, however links chain through each other (a chain of
    40 links, each target 4 KB of `s/..`, no longer costs 40 walks of every earlier target)."""

    def __init__(self, writer: TreeWriter) -> None:
        self.writer = writer
        self.top = _Node("", None)
        self.links: list[tuple[tuple[str, ...], _Node]] = []
        for parts, target in writer._links.items():
            node = self.top
            for part in parts[:-1]:
                node = node.child(part)
            leaf = node.children[parts[-1]] = _Node(parts[-1], node, target)
            self.links.append((parts, leaf))

    def check_all(self) -> None:
        for _parts, link in self.links:
            self._resolve(link, set())

    def _refuse(self, link: _Node, why: str) -> SourceError:
        parts: list[str] = []
        node: _Node | None = link
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return self.writer.refuse(f"has a link {why}: {shown('/'.join(reversed(parts)))} -> {shown(link.target or '')}")

    def _resolve(self, link: _Node, active: set[int]) -> _Node:
        """Where `link` leads (a node that is no link), following links inside its target."""
        if link.resolved is not None:
            return link.resolved
        if id(link) in active:
            raise self._refuse(link, "that loops or leaves the tree (it loops)")
        if len(active) >= MAX_LINK_HOPS:  # nested this deep, it follows more links than the kernel would
            raise self._refuse(link, f"that loops or leaves the tree (it follows more than {MAX_LINK_HOPS} links)")
        assert link.target is not None and link.parent is not None
        self.writer.check_deadline()
        active.add(id(link))
        here, hops = link.parent, 1
        for part in link.target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if here.parent is None:
                    raise self._refuse(link, "leaving the tree")
                here = here.parent
                continue
            node = here.child(part)
            if node.target is not None:
                node_end = self._resolve(node, active)
                hops += node.hops
                if hops > MAX_LINK_HOPS:
                    raise self._refuse(link, f"that loops or leaves the tree (it follows more than {MAX_LINK_HOPS} links)")
                here = node_end
            else:
                here = node
        active.discard(id(link))
        link.resolved, link.hops = here, hops
        return here


def _entries(top: Path, skip_top_git: bool) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative name, entry) of everything under `top`, parents first, links not followed."""
    stack = [("", top)]
    while stack:
        prefix, directory = stack.pop()
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            if skip_top_git and not prefix and entry.name == ".git":
                continue
            name = f"{prefix}{entry.name}"
            yield name, entry
            if entry.is_dir(follow_symlinks=False):
                stack.append((f"{name}/", Path(entry.path)))


def _special(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
             (stat.S_ISBLK, "block device"))
    return next((label for test, label in kinds if test(mode)), "special file")


def copy_in(source: Path, writer: TreeWriter, *, skip_top_git: bool = False) -> None:
    """Feed the tree at `source` to `writer` (copying when it is not dry)."""
    for name, entry in _entries(source, skip_top_git):
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            writer.directory(name)
        elif stat.S_ISLNK(st.st_mode):
            writer.symlink(name, os.readlink(entry.path))
        elif stat.S_ISREG(st.st_mode):
            executable = bool(st.st_mode & stat.S_IXUSR)
            if writer.dry:
                writer.file(name, st.st_size, None, executable)
                continue
            # O_NONBLOCK | O_NOFOLLOW: if the file was swapped for a fifo or a link since the
            # listing, opening it neither blocks nor follows; fstat then sees what it is.
            fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as data:
                now = os.fstat(data.fileno())
                if not stat.S_ISREG(now.st_mode):
                    raise writer.refuse(f"has a {_special(now.st_mode)}, which no source tree holds: {shown(name)}")
                writer.file(name, now.st_size, data, executable, now.st_mtime)
        else:
            raise writer.refuse(f"has a {_special(st.st_mode)}, which no source tree holds: {shown(name)}")
    writer.finish()


def audit(tree: Path, origin: str) -> None:
    """The same checks over a finished tree: whatever wrote it, nothing unsafe stays."""
    copy_in(tree, TreeWriter(tree, origin, dry=True))
