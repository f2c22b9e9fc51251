"""Smoke test of a built libwebsockets: an lws WebSocket client echo round trip.

``run_smoke(url, prefix, timeout)`` loads the lws of a prefix (or the wheel's
bundled one) through :mod:`lwsbuild.native`, connects an lws client to ``url``
(or to an independent echo peer built on the ``websockets`` library, started
here on 127.0.0.1), sends a text, a binary and a large message (larger than
lws's rx buffer, so it arrives in several pieces), checks each echo byte for
byte, closes with status 1000 and reports.

``python -m lwsbuild.native.smoke [--url URL] [--prefix DIR] [--timeout S] [--subprotocol P] [--json]`` is
``lwsbuild smoke`` without the build options: the same code (command()), the same one-line errors
and the same exit codes (lwsbuild/errors.py: 0 ok, 2 usage, 7 smoke).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from lwsbuild.build.provenance import Provenance
from lwsbuild.common.records import Record
from lwsbuild.errors import SmokeFailure, UsageError
from lwsbuild.native.smoke_options import DEFAULT_SUBPROTOCOL, add_arguments
from lwsbuild.source import admission

__all__ = ["main", "run_smoke"]  # the public surface (lwsbuild/__init__.py)

if TYPE_CHECKING:
    import ssl

LARGE_MESSAGE_SIZE = 196_613  # > 48 x lws's default 4 KiB rx buffer, not a round number
# The most the client buffers of one message: far above the largest smoke message, small enough that
# a hostile or broken peer (announcing a 2^63-byte frame and streaming) cannot exhaust memory.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_TIMEOUT_S = 3600.0  # --timeout's upper bound: an hour is far beyond any round trip
_POLL_KICK_S = 0.05  # how often the watchdog wakes lws_service() up


# --------------------------------------------------------------------------- #
# report


@dataclass(frozen=True)
class MessageResult:
    name: str
    kind: str  # "text" | "binary"
    size: int
    ok: bool
    rtt_ms: float | None
    chunks: int  # LWS_CALLBACK_CLIENT_RECEIVE calls it took to arrive
    error: str | None = None


@dataclass(frozen=True)
class SmokeReport(Record):
    ok: bool
    url: str
    lws_version: str | None
    variant: str | None
    provenance: dict[str, Any]  # {"version", "fixes_applied", "series", "unfixed"}
    messages: tuple[MessageResult, ...]
    error: str | None
    duration_ms: float
    peer: str  # "builtin" (the websockets echo peer started here) | "external"
    peer_close_code: int | None = None  # close code the builtin peer received
    prefix: str | None = None
    lws_log: tuple[str, ...] = ()  # lws's own error/warning lines during the run


    def render(self) -> str:
        head = "OK" if self.ok else "FAILED"
        lines = [f"lws smoke: {head}  {self.url}"]
        fixes = ",".join(self.provenance.get("fixes_applied") or []) or "none"
        if self.provenance.get("fixes_upstream"):
            fixes += f" (upstream already: {','.join(self.provenance['fixes_upstream'])})"
        if self.lws_version:
            lines.append(
                f"  lws {self.lws_version}  variant {self.variant}  fixes applied: {fixes}"
                + ("  (UNFIXED build)" if self.provenance.get("unfixed") else "")
            )
        for m in self.messages:
            rtt = f"{m.rtt_ms:8.2f} ms" if m.rtt_ms is not None else "       - ms"
            state = "ok" if m.ok else f"MISMATCH: {m.error}"
            lines.append(
                f"  {m.name:<7} {m.kind:<6} {m.size:>8} B  {m.chunks:>3} chunk{'s' if m.chunks != 1 else ' '}  {rtt}  {state}"
            )
        if self.peer_close_code is not None:
            lines.append(f"  close: peer received status {self.peer_close_code}")
        lines.append(f"  total {self.duration_ms:.1f} ms")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- #
# the builtin echo peer (independent implementation: the websockets library)


class EchoPeer:
    """A websockets echo server on 127.0.0.1:<ephemeral> in a background thread; `tls` makes it a
    wss:// peer (the C consumers' TLS round trips in tests/test_link_tls.py)."""

    def __init__(self, subprotocol: str | None = DEFAULT_SUBPROTOCOL, tls: ssl.SSLContext | None = None) -> None:
        self.subprotocol = subprotocol
        self.tls = tls
        self.port = 0
        self.close_codes: list[int | None] = []
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._loop: Any = None
        self._stop: Any = None
        self._thread = threading.Thread(target=self._run, name="lwsbuild-echo-peer", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/echo"

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise SmokeFailure("the builtin echo peer did not start within 10 s")
        if self._error is not None:
            raise SmokeFailure(f"the builtin echo peer failed to start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(5)

    def wait_closed(self, timeout: float) -> int | None:
        self._done.wait(timeout)
        return self.close_codes[-1] if self.close_codes else None

    def _run(self) -> None:
        import asyncio

        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - whatever stopped the peer is reported via _error
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        import asyncio

        from websockets.asyncio.server import serve
        from websockets.exceptions import ConnectionClosed

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        async def handler(ws: Any) -> None:
            try:
                async for message in ws:
                    await ws.send(message)
            except ConnectionClosed:
                pass
            finally:
                with contextlib.suppress(Exception):  # the close code below is what is asked for
                    await ws.wait_closed()
                proto = getattr(ws, "protocol", None)
                rcvd = getattr(proto, "close_rcvd", None)
                self.close_codes.append(rcvd.code if rcvd is not None else getattr(ws, "close_code", None))
                self._done.set()

        kwargs: dict[str, Any] = {"max_size": 16 * 1024 * 1024, "compression": None}
        if self.subprotocol:
            kwargs["subprotocols"] = [self.subprotocol]
        async with serve(handler, "127.0.0.1", 0, ssl=self.tls, **kwargs) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()


# --------------------------------------------------------------------------- #
# the lws client


def _messages() -> list[tuple[str, str, bytes]]:
    text = "lwsbuild smoke \u2713 h\u00e9llo w\u00f6rld \U0001f310 0123456789".encode()
    binary = bytes(range(256)) * 4 + b"\x00\xff\x00"
    large = random.Random(0x1A55).randbytes(LARGE_MESSAGE_SIZE)
    return [("text", "text", text), ("binary", "binary", binary), ("large", "binary", large)]


@dataclass
class _Session:
    """Mutable state shared by the lws callback and the service loop."""

    native: Any
    host: str
    port: int
    subprotocol: str | None
    messages: list[tuple[str, str, bytes]]
    stage: str = "connecting"
    established: bool = False
    finished: bool = False
    error: str | None = None
    index: int = 0
    sent_at: float | None = None
    awaiting: bool = False
    rx: bytearray = field(default_factory=bytearray)
    rx_binary: bool | None = None
    rx_chunks: int = 0
    results: list[MessageResult] = field(default_factory=list)
    closing: bool = False
    http_status: int | None = None
    peer_close: int | None = None

    def fail(self, msg: str) -> None:
        if self.error is None:
            self.error = msg
        self.finished = True

    # ---------------------------------------------------------------- #

    def callback(self, wsi: int | None, reason: int, user: int | None, in_: int | None, length: int) -> int:
        try:
            return self._callback(wsi, reason, in_, length)
        except BaseException as exc:  # noqa: BLE001 - never let an exception unwind into C
            self.fail(f"internal error in the lws callback: {type(exc).__name__}: {exc}")
            return -1

    def _callback(self, wsi: int | None, reason: int, in_: int | None, length: int) -> int:
        import ctypes

        n = self.native
        c = n.layout.constants
        cdll = n.cdll
        if reason == c.get("LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER"):
            if not self.established:
                self.stage = "handshake"
            return 0
        if reason == c["LWS_CALLBACK_CLIENT_CONNECTION_ERROR"]:
            detail = ctypes.string_at(in_, length).decode("utf-8", "replace") if in_ and length else (
                ctypes.string_at(in_).decode("utf-8", "replace") if in_ else ""
            )
            status = 0
            if wsi:
                with contextlib.suppress(Exception):  # no HTTP status is an answer too: 0
                    status = int(cdll.lws_http_client_http_response(wsi))
            self.http_status = status or None
            self.fail(self._describe_connection_error(detail.strip("\x00 "), status))
            return 0
        if reason == c["LWS_CALLBACK_CLIENT_ESTABLISHED"]:
            self.established = True
            self.stage = "established"
            cdll.lws_callback_on_writable(wsi)
            return 0
        if reason == c["LWS_CALLBACK_CLIENT_WRITEABLE"]:
            if self.finished:
                return -1
            if self.closing:
                n.close_reason(wsi, c["LWS_CLOSE_STATUS_NORMAL"], b"lwsbuild smoke done")
                return -1
            if self.awaiting or self.index >= len(self.messages):
                return 0
            name, kind, payload = self.messages[self.index]
            mode = c["LWS_WRITE_TEXT"] if kind == "text" else c["LWS_WRITE_BINARY"]
            self.rx = bytearray()
            self.rx_chunks = 0
            self.rx_binary = None
            self.sent_at = time.perf_counter()
            self.awaiting = True
            self.stage = f"echo of message {self.index + 1} ({name})"
            wrote = n.write(wsi, payload, mode)
            if wrote < len(payload):
                self.fail(f"lws_write() of the {name} message ({len(payload)} bytes) returned {wrote}")
                return -1
            return 0
        if reason == c["LWS_CALLBACK_CLIENT_RECEIVE"]:
            if not self.awaiting:
                self.fail("received an unexpected message from the server")
                return -1
            if self.rx_chunks == 0:
                self.rx_binary = bool(cdll.lws_frame_is_binary(wsi))
            # What this frame still announces counts too: refuse before buffering, not after.
            announced = len(self.rx) + length + int(cdll.lws_remaining_packet_payload(wsi))
            if announced > MAX_MESSAGE_BYTES:
                name = self.messages[self.index][0]
                self.fail(f"the echo of the {name} message is over the {MAX_MESSAGE_BYTES // (1024 * 1024)} MiB "
                          f"the smoke client buffers (at least {announced} bytes announced, "
                          f"{len(self.messages[self.index][2])} sent): not an echo")
                return -1
            if in_ and length:
                self.rx += ctypes.string_at(in_, length)
            self.rx_chunks += 1
            if cdll.lws_is_final_fragment(wsi) and cdll.lws_remaining_packet_payload(wsi) == 0:
                return self._message_complete(wsi)
            return 0
        if reason == c["LWS_CALLBACK_WS_PEER_INITIATED_CLOSE"]:
            code = None
            if in_ and length >= 2:
                raw = ctypes.string_at(in_, 2)
                code = (raw[0] << 8) | raw[1]
            self.peer_close = code
            if not self.closing:
                self.fail(
                    f"the server closed the connection (status {code}) while waiting for the {self.stage}"
                )
            return 0
        if reason == c["LWS_CALLBACK_CLIENT_CLOSED"]:
            if not self.closing:
                self.fail(f"the connection was closed by the server while waiting for the {self.stage}")
            self.finished = True
            return 0
        return 0

    def _message_complete(self, wsi: int | None) -> int:
        name, kind, payload = self.messages[self.index]
        rtt = (time.perf_counter() - (self.sent_at or time.perf_counter())) * 1000.0
        got = bytes(self.rx)
        err = None
        want_binary = kind == "binary"
        if self.rx_binary != want_binary:
            err = f"echo came back as {'binary' if self.rx_binary else 'text'}, sent as {kind}"
        elif got != payload:
            where = next((i for i, (a, b) in enumerate(zip(got, payload, strict=False)) if a != b), min(len(got), len(payload)))
            err = f"echo differs at byte {where} (got {len(got)} bytes, sent {len(payload)})"
        self.results.append(MessageResult(name, kind, len(payload), err is None, round(rtt, 3), self.rx_chunks, err))
        self.awaiting = False
        self.index += 1
        if err is not None:
            self.fail(f"the {name} message did not round-trip: {err}")
            self.closing = True
        elif self.index >= len(self.messages):
            self.closing = True
            self.stage = "close handshake"
        if self.closing:
            self.native.close_reason(wsi, self.native.const("LWS_CLOSE_STATUS_NORMAL"), b"lwsbuild smoke done")
            return -1
        self.native.cdll.lws_callback_on_writable(wsi)
        return 0

    def _describe_connection_error(self, detail: str, status: int) -> str:
        import errno
        import os
        import re

        where = f"{self.host}:{self.port}"
        low = detail.lower()
        m = re.search(r"(?:conn fail|errno)[: ]+(\d+)", low)
        err_no = int(m.group(1)) if m else None
        if self.stage == "connecting" and (err_no == errno.ECONNREFUSED or "refused" in low):
            return f"connection refused by {where}"
        if self.stage == "connecting" and err_no:
            return f"could not connect to {where}: {os.strerror(err_no)} ({detail})"
        if status and status != 101:
            return f"WebSocket handshake rejected by {where}: HTTP {status}" + (f" ({detail})" if detail else "")
        if "protocol" in low and ("malformed" in low or "match" in low):
            offered = repr(self.subprotocol) if self.subprotocol else "none"
            return (
                f"WebSocket handshake with {where} failed: the server selected a subprotocol that was not offered "
                f"(offered {offered}; lws: {detail})"
            )
        if self.stage == "connecting":
            return f"could not connect to {where}: {detail or 'connection failed'}"
        return f"WebSocket handshake with {where} failed: {detail or 'unknown error'}"


_URL_HINT = "pass --url ws://HOST[:PORT]/PATH (or wss://), e.g. ws://127.0.0.1:8080/echo"


MAX_URL_CHARS = 2048
# RFC 6455 4.1: a subprotocol is an RFC 7230 token; lws takes a comma-separated list of them.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SUBPROTOCOL_HINT = "pass --subprotocol NAME: letters, digits and !#$%&'*+-.^_`|~ (names comma-separated), or '' for none"


def parse_url(url: str) -> tuple[bool, str, int, str]:
    """(secure, host, port, path) of a ws:// or wss:// URL; anything else is one UsageError line.
    No whitespace or control character passes: lws writes host and path into the request as given."""
    try:
        url.encode("utf-8")  # non-UTF-8 argv bytes arrive as surrogate escapes; lws takes C strings
    except UnicodeEncodeError:
        shown = url.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
        raise UsageError(f"URL {shown} is not valid UTF-8", hint=_URL_HINT) from None
    if len(url) > MAX_URL_CHARS:
        raise UsageError(f"URL {admission.shown(url)} is longer than {MAX_URL_CHARS} characters", hint=_URL_HINT)
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UsageError(f"URL {admission.shown(url)} holds whitespace or a control character "
                         "(percent-encode it in the path)", hint=_URL_HINT)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # an unclosed or invalid [IPv6] host, a port out of range
        raise UsageError(f"URL {admission.shown(url)} is malformed ({exc})", hint=_URL_HINT) from None
    if parts.scheme not in ("ws", "wss"):
        raise UsageError(f"unsupported URL {admission.shown(url)}: expected ws://HOST[:PORT]/PATH or wss://...",
                         hint=_URL_HINT)
    if not host:
        raise UsageError(f"URL {admission.shown(url)} has no host", hint=_URL_HINT)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme == "wss", host, port or (443 if parts.scheme == "wss" else 80), path


def check_subprotocol(subprotocol: str | None) -> None:
    """A subprotocol list lws may send as given in the Sec-WebSocket-Protocol header: tokens only
    (a CR or LF would inject a header)."""
    if not subprotocol:
        return
    if len(subprotocol) > 255 or not all(_TOKEN.fullmatch(name.strip(" ")) for name in subprotocol.split(",")):
        raise UsageError(f"--subprotocol {admission.shown(subprotocol)} is not a list of WebSocket subprotocol "
                         "names", hint=_SUBPROTOCOL_HINT)


def check_request(url: str | None, subprotocol: str | None, timeout: float) -> None:
    """Everything a smoke run is given, checked before any library is located or loaded."""
    check_timeout(timeout)
    if url is not None:
        parse_url(url)
    check_subprotocol(subprotocol)


def _provenance_summary(prov: Provenance) -> dict[str, Any]:
    return {
        "version": prov.lws.version,
        "fixes_applied": prov.fixes("applied"),
        "fixes_upstream": prov.fixes("upstream"),
        "series": prov.series,
        "unfixed": prov.unfixed,
    }


def _drive(native: Any, url: str, timeout: float, subprotocol: str | None, deadline: float) -> _Session:
    secure, host, port, path = parse_url(url)
    c = native.layout.constants
    session = _Session(native, host, port, subprotocol, _messages())
    if secure and not native.with_tls:
        session.fail(f"{url} needs TLS but this lws build has none (LWS_WITH_TLS is off)")
        return session

    native.set_log_level(c["LLL_ERR"] | c["LLL_WARN"], capture=True)
    local_name = subprotocol or DEFAULT_SUBPROTOCOL
    table = native.make_protocols([(local_name, session.callback, 0)])
    options = c["LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT"] if secure else 0
    secs = max(1, int(timeout + 0.999))
    ctx = native.create_context(table, options, timeout_secs=secs, connect_timeout_secs=secs)
    stop = threading.Event()

    def kick() -> None:  # lws_service() can block for a long time: wake it up
        while not stop.wait(_POLL_KICK_S):
            native.cdll.lws_cancel_service(ctx)

    watchdog = threading.Thread(target=kick, name="lwsbuild-smoke-kick", daemon=True)
    try:
        ssl_flags = c["LCCSCF_USE_SSL"] if secure else 0
        bracketed = f"[{host}]" if ":" in host else host  # IPv6 literal
        host_hdr = bracketed if port == (443 if secure else 80) else f"{bracketed}:{port}"
        wsi = native.connect(
            ctx, address=host, port=port, path=path, host=host_hdr, origin=host_hdr,
            protocol=subprotocol, ssl_flags=ssl_flags, local_protocol_name=local_name,
        )
        if not wsi and not session.finished:
            session.fail(f"could not start a connection to {host}:{port} (lws_client_connect_via_info failed)")
        watchdog.start()
        while not session.finished and time.monotonic() < deadline:
            if native.cdll.lws_service(ctx, 0) < 0:
                session.fail("lws_service() failed")
        if not session.finished:
            session.fail(_timeout_message(session, timeout))
    finally:
        stop.set()
        if watchdog.is_alive():
            watchdog.join()
        native.cdll.lws_context_destroy(ctx)
        del table  # the callbacks may be called until lws_context_destroy() returns
    return session


def check_timeout(timeout: float) -> float:
    """A finite number of seconds in (0, MAX_TIMEOUT_S]: nan, inf and 1e10 are refused, not run."""
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
        raise UsageError(f"--timeout {timeout:g} is not a time limit: it must be more than 0 and at most "
                         f"{MAX_TIMEOUT_S:g} seconds", hint="pass seconds, e.g. --timeout 10 (the default)")
    return timeout


def _timeout_message(s: _Session, timeout: float) -> str:
    where = f"{s.host}:{s.port}"
    if s.stage == "connecting":
        return f"timed out after {timeout:g} s connecting to {where}"
    if s.stage == "handshake":
        return f"timed out after {timeout:g} s: {where} accepted the TCP connection but never answered the WebSocket handshake"
    return f"timed out after {timeout:g} s waiting for the {s.stage} from {where}"


def run_smoke(
    url: str | None = None,
    prefix: Path | None = None,
    timeout: float = 10.0,
    *,
    subprotocol: str | None = DEFAULT_SUBPROTOCOL,
    reexec_module: str | None = None,
    argv: Sequence[str] | None = None,
) -> SmokeReport:
    """Run the echo smoke test; returns a report (``ok`` False on any failure).

    Raises LwsbuildError subclasses (NativeLibraryError, LayoutMismatchError,
    SanitizerRuntimeError, UsageError) when there is nothing to test: no
    loadable library, an inconsistent layout, or a malformed URL.
    """
    from lwsbuild.native import library as native_mod

    check_request(url, subprotocol, timeout)
    start = time.monotonic()
    t0 = time.perf_counter()
    if argv is None and reexec_module is None:
        argv = [*(["--url", url] if url else []), *(["--prefix", str(prefix)] if prefix else []),
                "--timeout", f"{timeout:g}"]
    lib = native_mod.load(prefix, reexec_module=reexec_module, argv=argv)
    summary = _provenance_summary(lib.provenance)
    native_mod.take_log_lines()  # drop lines of earlier runs

    def report(session: _Session | None, the_url: str, peer: str, close_code: int | None, error: str | None) -> SmokeReport:
        msgs = tuple(session.results) if session else ()
        ok = error is None and session is not None and len(msgs) == len(session.messages) and all(m.ok for m in msgs)
        if ok and peer == "builtin" and close_code != 1000:
            ok = False
            error = f"the echo peer did not receive a clean close (status {close_code}, expected 1000)"
        return SmokeReport(
            ok=ok, url=the_url, lws_version=lib.version, variant=lib.variant, provenance=summary,
            messages=msgs, error=error, duration_ms=round((time.perf_counter() - t0) * 1000.0, 1),
            peer=peer, peer_close_code=close_code, prefix=str(lib.prefix),
            lws_log=tuple(native_mod.take_log_lines()[-20:]),
        )

    deadline = start + timeout
    if url is None:
        try:
            with EchoPeer(subprotocol) as peer:
                session = _drive(lib, peer.url, timeout, subprotocol, deadline)
                code = None
                if session.error is None:
                    code = peer.wait_closed(max(0.0, min(2.0, deadline - time.monotonic())))
                return report(session, peer.url, "builtin", code, session.error)
        except SmokeFailure as exc:
            return report(None, "ws://127.0.0.1/echo", "builtin", None, str(exc))
    session = _drive(lib, url, timeout, subprotocol, deadline)
    return report(session, url, "external", None, session.error)


# --------------------------------------------------------------------------- #
# command line


def command(args: argparse.Namespace, *, locate: Callable[[], Path | None], reexec_module: str,
            argv: Sequence[str]) -> int:
    """The smoke command behind both entry points: the report on stdout (`--json`: one JSON object),
    SmokeFailure (exit 7) when the round trip failed. `locate` gives the prefix (None: the bundled
    library); it runs after the arguments are checked, since for `lwsbuild smoke` it may build. An
    ASan library re-executes `python -m <reexec_module> <argv>` with its runtime preloaded."""
    check_request(args.url, args.subprotocol or None, args.timeout)
    rep = run_smoke(args.url, locate(), args.timeout, subprotocol=args.subprotocol or None,
                    reexec_module=reexec_module, argv=argv)
    if args.json:
        print(json.dumps(rep.to_json(), indent=2, sort_keys=True))
    else:
        print(rep.render())
    if not rep.ok:
        raise SmokeFailure(f"smoke failed: {rep.error or 'echo mismatch'}")
    return 0


def _arg_parser() -> argparse.ArgumentParser:
    from lwsbuild.common import entry

    p = entry.OneLineParser(prog="python -m lwsbuild.native.smoke",
                            description="lws client echo smoke test against a built libwebsockets "
                                        "(the same command as `lwsbuild smoke`)")
    add_arguments(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    entry.global_flags(p, builds=False)  # this command only loads a library: nothing to stream
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from lwsbuild.common import entry

    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _arg_parser().parse_args(args_list)
    except SystemExit as exc:  # --help (0) or a malformed argument (2, its line printed)
        return exc.code if isinstance(exc.code, int) else 2
    return entry.run(lambda: command(args, locate=lambda: args.prefix, reexec_module="lwsbuild.native.smoke",
                                     argv=args_list), args)


if __name__ == "__main__":
    sys.exit(main())
