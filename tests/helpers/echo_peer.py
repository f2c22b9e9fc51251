"""A WebSocket echo peer on 127.0.0.1 (the `websockets` library, in a thread), plain or over TLS, and
a throwaway certificate for it: what the C consumers of tests/test_link_tls.py talk to.

The certificate is made by the `openssl` program (.ci/run installs it) for the name "localhost",
valid for two days, self-signed: the client is given it as its CA file.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self


@dataclass(frozen=True)
class Certificate:
    cert: Path  # PEM, also the client's CA file
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(directory: Path) -> Certificate:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "localhost.pem", directory / "localhost.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return Certificate(cert, key)


class EchoPeer:
    """Echoes every message; `tls` makes it a wss:// peer. Records the close codes it received."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.port = 0
        self.close_codes: list[int | None] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="echo-peer", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10), "the echo peer did not start within 10 s"
        assert self._error is None, f"the echo peer failed to start: {self._error!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except (OSError, RuntimeError, ssl.SSLError, ImportError) as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from websockets.asyncio.server import ServerConnection, serve
        from websockets.exceptions import ConnectionClosed

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        async def echo(ws: ServerConnection) -> None:
            try:
                async for message in ws:
                    await ws.send(message)
            except ConnectionClosed:
                pass
            self.close_codes.append(ws.close_code)

        options: dict[str, Any] = {"compression": None, "open_timeout": 10, "close_timeout": 5}
        async with serve(echo, "127.0.0.1", 0, ssl=self.tls, **options) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()
