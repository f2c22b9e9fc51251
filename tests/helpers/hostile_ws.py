"""A hostile WebSocket peer on 127.0.0.1: it completes the handshake, takes the client's first
message, then announces one 2^63-1 byte binary frame and streams zeros.

Everything is bounded: one connection, at most `limit_bytes` sent and `limit_s` seconds; it stops
as soon as the client hangs up. `sent` says how much the client was made to read.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from typing import Self

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HUGE_FRAME = 2**63 - 1  # the largest length RFC 6455 allows (its top bit must be 0)


class OversizedFramePeer:
    def __init__(self, subprotocol: str = "lwsbuild-smoke", limit_bytes: int = 256 * 1024 * 1024,
                 limit_s: float = 30.0) -> None:
        self.subprotocol = subprotocol
        self.limit_bytes = limit_bytes
        self.limit_s = limit_s
        self.sent = 0
        self.announced = False
        self.error: str | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(limit_s)
        self._thread = threading.Thread(target=self._serve, name="hostile-ws-peer", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/echo"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self._thread.join(self.limit_s + 5)

    def _serve(self) -> None:
        deadline = time.monotonic() + self.limit_s
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:
            self.error = f"no client: {exc}"
            return
        with conn:
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                self._handshake(conn)
                self._read_frame(conn)
                conn.sendall(bytes([0x82, 127]) + HUGE_FRAME.to_bytes(8, "big"))
                self.announced = True
                chunk = bytes(64 * 1024)
                while self.sent < self.limit_bytes and time.monotonic() < deadline:
                    conn.sendall(chunk)
                    self.sent += len(chunk)
            except OSError:
                pass  # the client hung up: what a client that refuses the frame does

    def _recv_exactly(self, conn: socket.socket, count: int) -> bytes:
        data = b""
        while len(data) < count:
            more = conn.recv(count - len(data))
            if not more:
                raise ConnectionError("client closed")
            data += more
        return data

    def _handshake(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            more = conn.recv(4096)
            if not more or len(request) > 64 * 1024:
                raise ConnectionError("no handshake")
            request += more
        headers = {}
        for line in request.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + _GUID).digest())
        response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept + b"\r\n")
        if self.subprotocol and b"sec-websocket-protocol" in headers:
            response += b"Sec-WebSocket-Protocol: " + self.subprotocol.encode() + b"\r\n"
        conn.sendall(response + b"\r\n")

    def _read_frame(self, conn: socket.socket) -> None:
        """The client's first (masked) frame: so the huge one arrives while it awaits an echo."""
        head = self._recv_exactly(conn, 2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(self._recv_exactly(conn, 2), "big")
        elif length == 127:
            length = int.from_bytes(self._recv_exactly(conn, 8), "big")
        mask = 4 if head[1] & 0x80 else 0
        if length > 1024 * 1024:
            raise ConnectionError("first client frame is implausibly large")
        self._recv_exactly(conn, mask + length)
