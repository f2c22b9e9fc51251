"""Reading what came from elsewhere, bounded: files, JSON and wheels (zip) by size, depth and count.

Every file lwsbuild reads that it did not just write itself (a wheel given to `audit` or `verify`,
its provenance.json and SBOM, a prefix's layout.json, a data file LWSBUILD_VARIANTS_FILE names)
goes through here, so a hostile one costs bounded time and memory and fails as one line of the
caller's error class:
  - only a regular file is read (a FIFO would wait for a writer, /dev/zero never ends), opened
    without blocking and looked at again once open (a swap after the check is seen);
  - at most `limit` bytes (one more is read to tell "too large");
  - JSON nests at most MAX_DEPTH deep, measured before the parser recurses;
  - a zip's end record is read before zipfile builds its member list (a 5-million-entry central
    directory would cost gigabytes), and each member is inflated to its declared size at most,
    streamed, under a per-member cap.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lwsbuild.errors import LwsbuildError

MAX_JSON_BYTES = 4 << 20  # provenance.json and the SBOM are some 10 KB, layout.json some 20 KB
MAX_DEPTH = 64  # lwsbuild's JSON nests 5 deep
MAX_ZIP_BYTES = 1 << 30  # a wheel file; an asan wheel is some 10 MB
MAX_ZIP_MEMBERS = 20_000  # a wheel of lwsbuild has some 120 (and zip's end record counts to 65,535)
MAX_MEMBER_BYTES = 1 << 30  # one member, inflated
_CHUNK = 1 << 16
_EOCD = struct.Struct("<4s4H2LH")  # zip's end-of-central-directory record (APPNOTE 4.3.16)
_EOCD_SIGNATURE = b"PK\x05\x06"
_MAX_COMMENT = 0xFFFF


def _too_large(where: str, limit: int) -> str:
    return f"{where} is larger than {limit:,} bytes, more than lwsbuild reads from such a file"


def open_regular(path: Path, where: str, error: type[LwsbuildError]) -> IO[bytes]:
    """`path` opened for reading if it is a regular file; `error` otherwise (one line)."""
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer; fstat then says what was opened.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error(f"{where} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, where: str, error: type[LwsbuildError], limit: int = MAX_JSON_BYTES) -> bytes:
    """At most `limit` bytes of the regular file `path`."""
    with open_regular(path, where, error) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise error(_too_large(where, limit))
    return data


def text(data: bytes, where: str, error: type[LwsbuildError]) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{where} is not UTF-8 text") from None


def read_text(path: Path, where: str, error: type[LwsbuildError], limit: int = MAX_JSON_BYTES) -> str:
    return text(read_bytes(path, where, error, limit), where, error)


# Strings (with their escapes) are skipped: a bracket inside one is no nesting. An unterminated one
# runs to the end (`"?`), so no text makes the scan start over at every quote: linear time.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def json_depth(document: str) -> int:
    """How deep the arrays and objects of a JSON text nest (what the parser would recurse)."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(document):
        char = token.group()
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_object(document: str | bytes, where: str, error: type[LwsbuildError],
                limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """A JSON object, bounded in size and depth: anything else is `error`."""
    if len(document) > limit:
        raise error(_too_large(where, limit))
    decoded = text(document, where, error) if isinstance(document, bytes) else document
    if json_depth(decoded) > MAX_DEPTH:
        raise error(f"{where} nests arrays or objects more than {MAX_DEPTH} deep, more than any lwsbuild file")
    try:
        data: object = json.loads(decoded)
    except (ValueError, RecursionError) as exc:
        raise error(f"{where} is not valid JSON: {' '.join(str(exc).split())[:160]}") from None
    if not isinstance(data, dict):
        raise error(f"{where} is not a JSON object")
    return data


def read_json(path: Path, where: str, error: type[LwsbuildError], limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    return json_object(read_text(path, where, error, limit), where, error, limit)


# --------------------------------------------------------------------------- zip (wheels)


def _declared_members(handle: IO[bytes], size: int) -> int | None:
    """The member count the end record declares (None: no end record, zipfile says why)."""
    tail_size = min(size, _EOCD.size + _MAX_COMMENT)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(_EOCD_SIGNATURE)
    if at < 0 or at + _EOCD.size > len(tail):
        return None
    # 0xFFFF: the count lives in a zip64 record, which no wheel of 20,000 members needs: as many.
    return int(_EOCD.unpack_from(tail, at)[4])


class Zip:
    """A zip file (a wheel) read under the module's bounds; errors are `error` lines naming `where`."""

    def __init__(self, archive: zipfile.ZipFile, where: str, error: type[LwsbuildError]) -> None:
        self.archive, self.where, self.error = archive, where, error

    def names(self) -> list[str]:
        return self.archive.namelist()

    def infos(self) -> list[zipfile.ZipInfo]:
        return self.archive.infolist()

    @contextmanager
    def _member(self, info: zipfile.ZipInfo, limit: int) -> Iterator[IO[bytes]]:
        if info.file_size > limit:
            raise self.error(_too_large(f"{self.where}: {info.filename}", limit))
        try:
            with self.archive.open(info) as data:
                yield data
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:  # ValueError: a name not UTF-8
            raise self.error(f"{self.where}: {info.filename} is corrupt ({' '.join(str(exc).split())[:120]})") from None
        except NotImplementedError as exc:  # a compression method or zip version zipfile cannot read
            raise self.error(f"{self.where}: {info.filename} uses compression method {info.compress_type} or a "
                             f"zip feature zipfile cannot read ({exc}), which a wheel does not use") from None
        except RuntimeError:  # the encrypted flag: zipfile wants a password
            raise self.error(f"{self.where}: {info.filename} is encrypted, which a wheel never is") from None

    def read(self, name: str | zipfile.ZipInfo, limit: int = MAX_JSON_BYTES) -> bytes:
        """One member's bytes, at most its declared size and `limit`."""
        info = name if isinstance(name, zipfile.ZipInfo) else self.archive.getinfo(name)
        with self._member(info, limit) as data:
            return data.read(limit + 1)

    def chunks(self, info: zipfile.ZipInfo, limit: int = MAX_MEMBER_BYTES) -> Iterator[bytes]:
        """One member's bytes, streamed (zipfile checks its CRC at the end)."""
        with self._member(info, limit) as data:
            while chunk := data.read(_CHUNK):
                yield chunk


@contextmanager
def open_zip(path: Path, where: str, error: type[LwsbuildError]) -> Iterator[Zip]:
    """`path` as a Zip, refused in one line if it is not a regular file, is larger than MAX_ZIP_BYTES
    or declares more than MAX_ZIP_MEMBERS members."""
    with open_regular(path, where, error) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_ZIP_BYTES:
            raise error(_too_large(where, MAX_ZIP_BYTES))
        declared = _declared_members(handle, size)
        if declared is not None and declared > MAX_ZIP_MEMBERS:
            raise error(f"{where} declares {declared:,} members, more than the {MAX_ZIP_MEMBERS:,} lwsbuild reads")
        handle.seek(0)
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise error(f"{where} is not a readable zip file ({' '.join(str(exc).split())[:120]})") from None
        if len(archive.filelist) > MAX_ZIP_MEMBERS:
            raise error(f"{where} has more than the {MAX_ZIP_MEMBERS:,} members lwsbuild reads")
        with archive:
            yield Zip(archive, where, error)
