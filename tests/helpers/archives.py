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
    if name.endswith(".tar.gz"):
        tar = tarfile.open(out, "w:gz", compresslevel=1)
    elif name.endswith(".tar.xz"):
        tar = tarfile.open(out, "w:xz", preset=0)
    else:
        tar = tarfile.open(out, "w")
    replace = dict(replace or {})
    with tar:
        tar.addfile(tar.gettarinfo(str(tree), prefix))
        for path in _walk(tree):
            rel = path.relative_to(tree).as_posix()
            info = tar.gettarinfo(str(path), f"{prefix}/{rel}")
            if info.isfile():
                data = replace.pop(rel) if rel in replace else path.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
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
