"""Hostile files of the kinds lwsbuild reads from elsewhere: wheels (zip), link-chain archives, deep JSON.

Each builder makes the smallest file that shows one hole of issue 20; tests/test_hostile_inputs.py
and tests/test_fuzz.py use them.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

from lwsbuild.common import prefix

from .planned import provenance

CONFIG_H = b"#define LWS_ROLE_H1\n#define LWS_ROLE_WS\n#define LWS_WITH_CLIENT\n"


def provenance_json() -> bytes:
    """A valid provenance.json of a planned release build (nothing fetched)."""
    return json.dumps(provenance().to_json()).encode()


def nested(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


def wheel(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip whose members are named relative to the wheel's prefix (prefix.in_wheel)."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(prefix.in_wheel(name), data)
    return path


def lwsbuild_wheel(path: Path, *, provenance_bytes: bytes | None = None, sbom: bytes | None = None,
                   config_h: bytes = CONFIG_H, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    members = {prefix.PROVENANCE: provenance_json() if provenance_bytes is None else provenance_bytes,
               prefix.CONFIG_H: config_h}
    if sbom is not None:
        members[prefix.SBOM] = sbom
    return wheel(path, members, compression)


def set_member_header(path: Path, *, method: int | None = None, flag_bits: int = 0, needs_version: int | None = None,
                      local_name_byte: int | None = None) -> Path:
    """Rewrite every member's compression method, OR flag bits into its general-purpose flags, set the
    zip version it needs to extract, or replace the first byte of its local header's name: in the
    local headers and the central directory, as a crafted wheel would declare."""
    data = bytearray(path.read_bytes())
    for signature, version_at, flags_at, method_at in ((b"PK\x03\x04", 4, 6, 8), (b"PK\x01\x02", 6, 8, 10)):
        at = data.find(signature)
        while at >= 0:
            flags = struct.unpack_from("<H", data, at + flags_at)[0] | flag_bits
            struct.pack_into("<H", data, at + flags_at, flags)
            if method is not None:
                struct.pack_into("<H", data, at + method_at, method)
            if needs_version is not None:
                struct.pack_into("<H", data, at + version_at, needs_version)
            if local_name_byte is not None and signature == b"PK\x03\x04":
                data[at + 30] = local_name_byte
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    return path


def link_chain_tar(path: Path, links: int, chain: int, target_bytes: int = 4096) -> Path:
    """`links` symbolic links in one directory, each through the previous one (`chain` long, then a
    new chain), each target padded to `target_bytes` with `s/..` (a directory and its parent)."""
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, kind: bytes, target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, target, 0o755
            tar.addfile(info)

        add("top", tarfile.DIRTYPE)
        add("top/s", tarfile.DIRTYPE)
        add("top/CMakeLists.txt", tarfile.REGTYPE)
        for i in range(links):
            previous = f"l{i - 1}" if i % chain else "."
            padding = "/s/.." * ((target_bytes - len(previous)) // 5)
            add(f"top/l{i}", tarfile.SYMTYPE, (previous + padding)[:target_bytes])
    return path


def inflating_member(size: int) -> bytes:
    """`size` zero bytes: deflated, a few kB per MB."""
    return bytes(size)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()
