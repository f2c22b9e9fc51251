"""Archives of a source tree, as upstream and Debian ship them: one top-level directory.

Compression is the fastest level: these tests are about bytes and trees, not sizes.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "libwebsockets-4.3.5"


def _walk(tree: Path) -> Iterator[Path]:
    """Every path under `tree` (symlinks not followed), parents before children, sorted."""
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            yield base / name


def write_tar(tree: Path, out: Path, *, prefix: str = PREFIX, replace: dict[str, bytes] | None = None,
              extra: dict[str, bytes] | None = None) -> Path:
    """A tar (.tar, .tar.gz or .tar.xz by `out`'s name) of `tree` under `prefix`/.

    replace: relative path → new content; extra: raw member names (anything, e.g. '../x') → content.
    """
    name = out.name
    mode, options = "w", {}
    if name.endswith(".tar.gz"):
        mode, options = "w:gz", {"compresslevel": 1}
    elif name.endswith(".tar.xz"):
        mode, options = "w:xz", {"preset": 0}
    replace = dict(replace or {})
    with tarfile.open(out, mode, **options) as tar:  # type: ignore[call-overload]  # mode and its options vary
        tar.addfile(tar.gettarinfo(str(tree), prefix))
        for path in _walk(tree):
            rel = path.relative_to(tree).as_posix()
            info = tar.gettarinfo(str(path), f"{prefix}/{rel}")
            if info.isfile():
                data = replace.pop(rel) if rel in replace else path.read_bytes()
                payload = data.encode() if isinstance(data, str) else data
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
        for member, data in (extra or {}).items():
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    assert not replace, f"not in the tree: {sorted(replace)}"
    return out


def write_zip(tree: Path, out: Path, *, prefix: str = PREFIX) -> Path:
    """A zip of `tree` under `prefix`/, symlinks stored as links (as `git archive --format=zip` does)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.write(tree, f"{prefix}/")
        for path in _walk(tree):
            arcname = f"{prefix}/{path.relative_to(tree).as_posix()}"
            if path.is_symlink():
                info = zipfile.ZipInfo(arcname)
                info.create_system = 3  # unix: external_attr carries the mode
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, os.readlink(path))
            elif path.is_dir():
                zf.write(path, f"{arcname}/")
            else:
                zf.write(path, arcname)
    return out


def flip_byte(src: Path, out: Path) -> Path:
    """A copy of `src` with the byte in the middle inverted."""
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def copy_tree(tree: Path, out: Path, *, link: bool = False) -> Path:
    """A copy of a source tree (symlinks kept); `link` hard-links files: cheap, but never edit them."""
    shutil.copytree(tree, out, symlinks=True, copy_function=os.link if link else shutil.copy2)
    return out


def edited(tree: Path, rel: str, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in a file of a (possibly hard-linked) copy of a tree,
    without touching the file it is linked to."""
    path = tree / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} does not occur exactly once in {rel}"
    path.unlink()
    path.write_text(text.replace(old, new))


# --- small hostile inputs: no libwebsockets tree needed ------------------------------------------

FAKE_FILES = {
    "CMakeLists.txt": b"project(libwebsockets C)\n",
    "README.md": b"a small stand-in for a libwebsockets tree\n",
    "lib/core-net/client/connect3.c": b"int connect3(void) { return 0; }\n",
}


def fake_tree(root: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A tiny tree shaped like libwebsockets' top (CMakeLists.txt, the file patch 0001 touches)."""
    for rel, data in {**FAKE_FILES, **(extra or {})}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def evil_git_dir(marker: Path) -> dict[str, bytes]:
    """The files of a `.git` directory git accepts as a repository, whose config defines a clean
    filter (touching `marker`) and whose info/attributes applies it to every file."""
    return {
        "HEAD": b"ref: refs/heads/main\n",
        "config": (f"[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
                   f"[filter \"x\"]\n\tclean = sh -c 'touch {marker}; cat'\n\tsmudge = sh -c 'touch {marker}; cat'\n"
                   f"\trequired = true\n").encode(),
        "info/attributes": b"* filter=x\n",
        "objects/info/.keep": b"",
        "refs/heads/.keep": b"",
    }


def tar_of(out: Path, entries: list[tuple[str, str, bytes | str]], *, prefix: str = PREFIX) -> Path:
    """A tar of raw entries (kind, name under `prefix`/, data or link target), kind in
    file | dir | symlink | hardlink | fifo; '' as prefix puts names at the top."""
    with tarfile.open(out, "w:gz" if out.name.endswith(".gz") else "w") as tar:
        if prefix:
            top = tarfile.TarInfo(prefix)
            top.type, top.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(top)
        for kind, name, data in entries:
            info = tarfile.TarInfo(f"{prefix}/{name}" if prefix else name)
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "file":
                payload = data.encode() if isinstance(data, str) else data
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = data if isinstance(data, str) else data.decode()
            tar.addfile(info)
    return out


def zip_of(out: Path, entries: list[tuple[str, str, bytes | str]], *, prefix: str = PREFIX) -> Path:
    """A zip of raw entries (kind file | dir | symlink, name under `prefix`/, data or link target)."""
    with zipfile.ZipFile(out, "w") as zf:
        for kind, name, data in entries:
            info = zipfile.ZipInfo(f"{prefix}/{name}" + ("/" if kind == "dir" else ""))
            info.create_system = 3
            info.external_attr = {"file": stat.S_IFREG | 0o644, "dir": stat.S_IFDIR | 0o755,
                                  "symlink": stat.S_IFLNK | 0o777}[kind] << 16
            zf.writestr(info, data.encode() if isinstance(data, str) else data)
    return out


def tree_entries(tree: Path) -> list[tuple[str, str, bytes | str]]:
    """`tree` as tar_of/zip_of entries (files and directories)."""
    found: list[tuple[str, str, bytes | str]] = []
    for path in _walk(tree):
        rel = path.relative_to(tree).as_posix()
        found.append(("dir", rel, b"") if path.is_dir() else ("file", rel, path.read_bytes()))
    return found
