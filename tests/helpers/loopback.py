"""A file server on 127.0.0.1 in a thread, that counts requests and can trickle or hold responses.

Everything is bounded: a trickled response ends when the file does, or when the server stops.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self


def dead_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopbackServer:
    """Serves `files` (URL name → path) at http://127.0.0.1:PORT/<name>.

    trickle = (bytes, pause_s) sends the body in small writes with a pause after each;
    hold_until = n makes every response wait (at most 30 s) until n requests are in flight.
    """

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = dict(files)
        self.requests: list[str] = []
        self.trickle: tuple[int, float] | None = None
        self.hold_until = 0
        self._sent = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return self._sent

    def wait_sent(self, amount: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.bytes_sent >= amount:
                return True
            time.sleep(0.01)
        return False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        with self._lock:
            self._arrived.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                with server._lock:
                    server.requests.append(name)
                    server._arrived.notify_all()
                    deadline = time.monotonic() + 30
                    while (len(server.requests) < server.hold_until and not server._stopping.is_set()
                           and time.monotonic() < deadline):
                        server._arrived.wait(timeout=0.1)
                path = server.files.get(name)
                if path is None:
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                step, pause = server.trickle or (len(data), 0.0)
                try:
                    for offset in range(0, len(data), step):
                        if server._stopping.is_set():
                            return
                        self.wfile.write(data[offset:offset + step])
                        self.wfile.flush()
                        with server._lock:
                            server._sent += min(step, len(data) - offset)
                        if pause:
                            time.sleep(pause)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (killed, or done with us)

        return Handler


class RawServer:
    """A TCP server on 127.0.0.1 answering every connection with fixed bytes (no HTTP parsing: a
    garbage status line, a bad chunk size), optionally one byte per `pause` seconds. Each answer
    ends after its bytes, or when the server stops; the server stops within a second of __exit__."""

    def __init__(self, reply: bytes, pause: float = 0.0) -> None:
        self.reply, self.pause = reply, pause
        self.connections = 0
        self._stopping = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._sock.getsockname()[1]
        return port

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request (one read is enough for urllib's small GET)
                step = 1 if self.pause else len(self.reply)
                for offset in range(0, len(self.reply), step):
                    if self._stopping.is_set():
                        return
                    conn.sendall(self.reply[offset:offset + step])
                    if self.pause:
                        self._stopping.wait(self.pause)
            except OSError:
                pass

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._sock.close()
