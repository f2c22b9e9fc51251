"""`archive:URL|PATH` mirrors: streamed, hashed downloads and safe extraction."""

from __future__ import annotations

import hashlib
import http.client
import lzma
import math
import os
import shutil
import socket
import stat
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from lwsbuild.common import cache, progress
from lwsbuild.common.paths import expand_user, sha256_file
from lwsbuild.errors import (
    DownloadDeadline,
    DownloadFailed,
    SourceNotFound,
    UnreadableArchive,
    UnsafeArchive,
    UsageError,
)
from lwsbuild.source import admission
from lwsbuild.source.admission import TreeWriter, shown
from lwsbuild.source.releases import Release

_CHUNK = 1 << 16
READ_TIMEOUT_S = 30  # one stalled read (connect, headers, a body chunk)
DOWNLOAD_DEADLINE_S = 300.0  # one whole download, however the server trickles; env overrides
DOWNLOAD_DEADLINE_ENV = "LWSBUILD_DOWNLOAD_TIMEOUT"
MAX_DOWNLOAD_BYTES = admission.MAX_TREE_BYTES  # an archive is smaller than the tree it expands to


def download_deadline_s() -> float:
    """Seconds one download (or git fetch) may take in total: $LWSBUILD_DOWNLOAD_TIMEOUT or 300."""
    text = os.environ.get(DOWNLOAD_DEADLINE_ENV, "").strip()
    if not text:
        return DOWNLOAD_DEADLINE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{DOWNLOAD_DEADLINE_ENV}={shown(text)} is not a number of seconds above 0",
                         hint=f"set {DOWNLOAD_DEADLINE_ENV} to seconds (e.g. 300), or unset it")
    return value


class _Deadline:
    """Shuts down every socket of one download when its total time is up, so no phase (connect, TLS,
    headers, a body trickled a byte at a time) can outlast it: a per-read timeout alone cannot."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)
        return sock

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """urllib's opener (proxies, redirects, TLS as usual) whose connections `deadline` can cut."""
    def tracked(connection: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        # mypy takes no class held in a variable as a base; the one passed is an HTTPConnection.
        class Tracked(connection):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:  # HTTPConnection's, passed on
                super().__init__(*args, **kwargs)
                self._create_connection = lambda *a, **k: deadline.track(socket.create_connection(*a, **k))
        return Tracked

    http_connection, https_connection = tracked(http.client.HTTPConnection), tracked(http.client.HTTPSConnection)

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(http_connection, req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            # The stock https_open passes the same private _context, which typeshed does not declare.
            return self.do_open(https_connection, req, context=self._context)  # type: ignore[attr-defined]

    return urllib.request.build_opener(Http, Https)


def download(url: str, filename: str, sha256: str | None, scratch: Path) -> Path:
    """Fetch `url`, streamed and hashed, into downloads/<sha256>/<filename> or into `scratch`.

    Only a download whose sha256 was known beforehand (Debian's signed index, a #sha256= spec) becomes
    a cache entry, and such an entry is reused; any other download stays in `scratch`, which the
    caller removes: bytes nobody vouched for never enter the cache. The partial file lives in
    `scratch` too, so a killed run leaves nothing under downloads/. The whole download has one
    deadline (download_deadline_s) and a size limit.
    """
    downloads = cache.area("downloads")
    if sha256 and (downloads / sha256 / filename).is_file():
        return downloads / sha256 / filename
    partial = scratch / "download" / filename
    partial.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    limit = download_deadline_s()
    received = 0
    with _Deadline(limit) as deadline:
        try:
            with _opener(deadline).open(url, timeout=min(READ_TIMEOUT_S, limit)) as response, \
                    partial.open("wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with progress.download_bar(f"download {filename}", total) as bar:
                    while chunk := response.read1(_CHUNK):
                        received += len(chunk)
                        if received > MAX_DOWNLOAD_BYTES:
                            raise DownloadFailed(f"download of {shown(url)} exceeds {MAX_DOWNLOAD_BYTES >> 20} MiB, "
                                                 "the limit for a source archive")
                        digest.update(chunk)
                        out.write(chunk)
                        bar.advance(len(chunk))
                    if deadline.expired:  # a cut connection looks like the end of the body
                        raise DownloadDeadline(f"download of {shown(url)} took longer than {limit:g} s "
                                               f"({received} bytes received)")
                    if total is not None and received != total:
                        raise DownloadFailed(f"download of {shown(url)} ended after {received} of {total} bytes")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            if isinstance(exc, OSError) and cache.is_full(exc):
                raise cache.full(total or received, f"the download of {filename}") from None
            if deadline.expired:
                raise DownloadDeadline(f"download of {shown(url)} took longer than {limit:g} s "
                                       f"({received} bytes received)") from None
            reason = getattr(exc, "reason", None) or exc
            text = " ".join(str(reason).split())[:200] or type(reason).__name__
            if isinstance(exc, http.client.HTTPException):  # a garbage status line, a bad chunk size
                text = f"the server's answer is not valid HTTP ({type(exc).__name__}{': ' + text if text != type(exc).__name__ else ''})"
            raise DownloadFailed(f"download of {shown(url)} failed: {text}") from None
    actual = digest.hexdigest()
    if sha256 is None:
        return partial
    if actual != sha256:
        raise DownloadFailed(f"{filename} from {shown(url)} has sha256 {actual}, expected {sha256}",
                             hint="the mirror serves other bytes than the ones vouched for: use another mirror")
    entry = downloads / actual / filename
    with cache.publishing(entry.parent) as tmp:
        if tmp is not None:
            tmp.mkdir()
            os.replace(partial, tmp / filename)
    return entry


def feed_tar(tar: tarfile.TarFile, writer: TreeWriter) -> None:
    """Every member of `tar`, in order, through `writer` (which checks and bounds each)."""
    for member in tar:
        if member.isdir():
            writer.directory(member.name)
        elif member.isreg() and not member.issparse():
            writer.file(member.name, member.size, tar.extractfile(member), bool(member.mode & 0o100), member.mtime)
        elif member.issym():
            writer.symlink(member.name, member.linkname)
        elif member.islnk():
            writer.hardlink(member.name, member.linkname)
        else:
            raise writer.refuse(f"has a device, fifo or other special member: {shown(member.name)}")
    writer.finish()


def _extract_tar(archive: Path, dest: Path) -> None:
    writer = TreeWriter(dest, archive.name, UnsafeArchive, seconds=download_deadline_s())
    try:
        # Random access (not a stream): gzip's and xz's own readers check the stream's checksums.
        with tarfile.open(archive) as tar:
            feed_tar(tar, writer)
            # tarfile stops at the end-of-archive blocks, before gzip's/xz's checksum trailer: read
            # on to the end so a corrupt stream fails here rather than extract as other bytes.
            while tar.fileobj.read(_CHUNK):
                pass
    except OSError as exc:
        if cache.is_full(exc):
            raise cache.full(_unpacked_bytes(archive), f"the source tree of {archive.name}") from None
        raise UnreadableArchive(f"{archive.name} is not a readable archive: {' '.join(str(exc).split())[:200]}") from None
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, UnicodeError) as exc:
        raise UnreadableArchive(f"{archive.name} is not a readable archive: {' '.join(str(exc).split())[:200]}") from None


def _extract_zip(archive: Path, dest: Path) -> None:
    writer = TreeWriter(dest, archive.name, UnsafeArchive, seconds=download_deadline_s())
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            # The central directory declares every size up front: a bomb is refused before a byte.
            if len(infos) > admission.MAX_TREE_MEMBERS or sum(i.file_size for i in infos) > admission.MAX_TREE_BYTES:
                raise writer.refuse(f"declares more than {admission.MAX_TREE_MEMBERS} members or "
                                    f"{admission.MAX_TREE_BYTES >> 20} MiB, "
                                    "the limits for a source tree")
            for info in infos:
                if not info.filename:  # zipfile's own is_dir() indexes the name
                    raise writer.refuse("has a member with an empty name")
                mode = info.external_attr >> 16 if info.create_system == 3 else 0
                kind = stat.S_IFMT(mode)
                if stat.S_ISLNK(mode):
                    if info.file_size > 4096:
                        raise writer.refuse(f"has a link with an unusable target: {shown(info.filename)}")
                    writer.symlink(info.filename, zf.read(info).decode())
                elif info.is_dir() or stat.S_ISDIR(mode):
                    writer.directory(info.filename)
                elif kind in (0, stat.S_IFREG):
                    with zf.open(info) as data:  # zipfile checks each member's CRC at its end
                        writer.file(info.filename, info.file_size, data, bool(mode & 0o100),
                                    time.mktime((*info.date_time, 0, 0, -1)))
                else:
                    raise writer.refuse(f"has a device, fifo or other special member: {shown(info.filename)}")
            writer.finish()
    except OSError as exc:
        if cache.is_full(exc):
            raise cache.full(_unpacked_bytes(archive), f"the source tree of {archive.name}") from None
        raise UnreadableArchive(f"{archive.name} is not a readable archive: {' '.join(str(exc).split())[:200]}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise UnreadableArchive(f"{archive.name} is not a readable archive: {' '.join(str(exc).split())[:200]}") from None
    except UnicodeError:
        raise UnsafeArchive(f"{archive.name} has a member name or link target that is not text") from None


def _unpacked_bytes(archive: Path) -> int:
    """What the archive's files take unpacked, as its headers declare (asked only when the cache is
    full: a tar is read through once more)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return sum(info.file_size for info in zf.infolist())
    with tarfile.open(archive) as tar:
        return sum(member.size for member in tar if member.isreg())


def extract(archive: Path, dest: Path) -> None:
    """Extract into `dest` (created), lifting the single top-level directory archives carry."""
    raw = dest.with_name(dest.name + ".raw")
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, raw)
        else:
            _extract_tar(archive, raw)
        entries = list(raw.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() else raw
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
        scheme = location.split("://", 1)[0].lower() if "://" in location else "file"
        if scheme not in ("http", "https", "file"):  # the download deadline covers these
            raise UsageError(f"--source {shown(spec)}: {scheme}:// archives are not supported",
                             hint="use archive: with an http://, https:// or file:// URL, or a local path")
        return cls(spec, location, fragment or None)

    def materialize(self, release: Release, dest: Path) -> None:
        if "://" in self.location and not self.location.startswith("file://"):
            filename = Path(urllib.request.url2pathname(self.location.rsplit("/", 1)[-1].split("?")[0])).name
            if filename in ("", ".", "..") or len(os.fsencode(filename)) > 200:
                filename = "source.tar.gz"  # a name only for the scratch file: the content decides the format
            archive = download(self.location, filename, self.sha256, dest.parent)
        else:
            archive = expand_user(self.location.removeprefix("file://"), "the source archive")
            if not archive.is_file():
                raise SourceNotFound(f"no archive at {shown(str(archive))}")
            if self.sha256 and sha256_file(archive) != self.sha256:
                raise UnreadableArchive(f"{shown(str(archive))} does not have sha256 {self.sha256}",
                                        hint="the file is not the archive vouched for: use another copy or mirror")
        extract(archive, dest)
