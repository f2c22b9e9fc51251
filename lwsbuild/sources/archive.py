"""`archive:URL|PATH` mirrors: streamed, hashed downloads and safe extraction."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import cache, progress
from ..errors import MirrorFailed, UnsafeArchive
from ..paths import sha256_file
from ..releases import Release

_CHUNK = 1 << 16
_TIMEOUT_S = 30


def download(url: str, filename: str, sha256: str | None, scratch: Path) -> Path:
    """Fetch `url`, streamed and hashed, into downloads/<sha256>/<filename> or into `scratch`.

    Only a download whose sha256 was known beforehand (Debian's signed index, a #sha256= spec) becomes
    a cache entry, and such an entry is reused; any other download stays in `scratch`, which the
    caller removes: bytes nobody vouched for never enter the cache. The partial file lives in
    `scratch` too, so a killed run leaves nothing under downloads/.
    """
    downloads = cache.area("downloads")
    if sha256 and (downloads / sha256 / filename).is_file():
        return downloads / sha256 / filename
    partial = scratch / "download" / filename
    partial.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, partial.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress.download_bar(f"download {filename}", total) as bar:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.advance(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MirrorFailed(f"download of {url} failed: {reason}") from None
    actual = digest.hexdigest()
    if sha256 is None:
        return partial
    if actual != sha256:
        raise MirrorFailed(f"{filename} from {url} has sha256 {actual}, expected {sha256}")
    entry = downloads / actual / filename
    with cache.publishing(entry.parent) as tmp:
        if tmp is not None:
            tmp.mkdir()
            os.replace(partial, tmp / filename)
    return entry


def _check_member(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise UnsafeArchive(f"{archive.name} has a member that escapes the tree: {name!r}")
    return path


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                _check_member(member.name, archive)
            # tarfile stops at the end-of-archive blocks, before gzip's/xz's checksum trailer: read
            # on to the end so a corrupt stream fails here rather than extract as other bytes.
            while tar.fileobj.read(_CHUNK):
                pass
            # The 'data' filter refuses links leaving the tree, device files and odd modes.
            tar.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeArchive(f"{archive.name}: {exc}") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise MirrorFailed(f"{archive.name} is not a readable archive: {exc}") from None


def _inside(path: str, top: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(top))


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            links = []
            for info in zf.infolist():
                _check_member(info.filename, archive)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    links.append(info)
                elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    raise UnsafeArchive(f"{archive.name} has a device member: {info.filename!r}")
            bad = zf.testzip()
            if bad:
                raise MirrorFailed(f"{archive.name} is corrupt at member {bad!r}")
            for info in zf.infolist():
                if info in links:
                    continue
                target = Path(zf.extract(info, dest))
                mode = info.external_attr >> 16
                if not info.is_dir() and mode & 0o111:
                    target.chmod(0o755)
            # Links come last, so no member is ever written through one; each must stay in the tree
            # (upstream's zip archives carry symlinks, like `git archive --format=zip`).
            for info in links:
                link = dest / info.filename.rstrip("/")
                target_text = zf.read(info).decode()
                if not _inside(str(link.parent), dest) or os.path.isabs(target_text) \
                        or not _inside(os.path.join(link.parent, target_text), dest):
                    raise UnsafeArchive(f"{archive.name} has a link leaving the tree: {info.filename!r} -> {target_text!r}")
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target_text, link)
            for info in links:  # a later link may have redirected an earlier one's path
                if not _inside(str(dest / info.filename.rstrip("/")), dest):
                    raise UnsafeArchive(f"{archive.name} has a link leaving the tree: {info.filename!r}")
    except zipfile.BadZipFile as exc:
        raise MirrorFailed(f"{archive.name} is not a readable archive: {exc}") from None
    except UnicodeDecodeError:
        raise UnsafeArchive(f"{archive.name} has a link whose target is not text") from None


def extract(archive: Path, dest: Path) -> None:
    """Extract into `dest` (created), lifting the single top-level directory archives carry."""
    raw = dest.with_name(dest.name + ".raw")
    raw.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, raw)
        else:
            _extract_tar(archive, raw)
        entries = list(raw.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else raw
        os.replace(top, dest)
    finally:
        shutil.rmtree(raw, ignore_errors=True)


@dataclass(frozen=True)
class ArchiveMirror:
    spec: str
    location: str  # URL or local path
    sha256: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ArchiveMirror:
        location, _, fragment = spec.removeprefix("archive:").partition("#sha256=")
        return cls(spec, location, fragment or None)

    def materialize(self, release: Release, dest: Path) -> None:
        if "://" in self.location and not self.location.startswith("file://"):
            filename = Path(urllib.request.url2pathname(self.location.rsplit("/", 1)[-1])).name
            archive = download(self.location, filename or "source.tar.gz", self.sha256, dest.parent)
        else:
            archive = Path(self.location.removeprefix("file://")).expanduser()
            if not archive.is_file():
                raise MirrorFailed(f"no archive at {archive}")
            if self.sha256 and sha256_file(archive) != self.sha256:
                raise MirrorFailed(f"{archive} does not have sha256 {self.sha256}")
        extract(archive, dest)
