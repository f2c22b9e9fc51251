"""Tests of lwsbuild.native (locate / load / layout) and lwsbuild.native.smoke.

Integration tests take the fixtures ``release_prefix`` / ``asan_prefix``
(Path of an install prefix built by the real pipeline, provided by
tests/conftest.py).  Everything talks only to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import pytest

from conftest import Json, Venv
from helpers import planned
from lwsbuild.common import prefix as prefix_layout
from lwsbuild.errors import LayoutMismatchError, NativeLibraryError, SanitizerRuntimeError, SmokeFailure, UsageError
from lwsbuild.native import library as native
from lwsbuild.native.smoke import MessageResult, SmokeReport, main, run_smoke

REPO = Path(__file__).resolve().parents[1]
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error", "ERROR: LeakSanitizer")


# --------------------------------------------------------------------------- #
# helpers


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


class RawServer:
    """A tiny asyncio TCP server on 127.0.0.1 misbehaving in one of a few ways.

    mode: "http403" (answers the upgrade with HTTP 403), "silent" (accepts,
    reads, never answers), "wrongproto" (101 with a subprotocol that was not
    offered), "close" (reads the upgrade request, then closes the connection
    without a word).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self.connections = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if self.mode == "silent":
                await self._stop.wait()
                return
            if self.mode == "close":
                return
            if self.mode == "http403":
                body = b"forbidden\n"
                writer.write(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
                return
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n"
                b"Sec-WebSocket-Protocol: not-what-you-offered\r\n\r\n"
            )
            await writer.drain()
            await self._stop.wait()
        except BaseException:  # noqa: BLE001, S110 - test server: any way the connection ends is fine
            pass
        finally:
            writer.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()


def _run_cli(*args: str, timeout: float = 120, entry: tuple[str, ...] = ("lwsbuild.native.smoke",)
             ) -> subprocess.CompletedProcess[str]:
    """`python -m lwsbuild.native.smoke ARGS`; entry=("lwsbuild", "smoke") runs `lwsbuild smoke ARGS`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-m", *entry, *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO), check=False,
    )


def _same_failure(*args: str, code: int) -> tuple[str, list[subprocess.CompletedProcess[str]]]:
    """Run ARGS through both entry points; both fail with `code` and the same one error line."""
    runs = [_run_cli(*args), _run_cli(*args, entry=("lwsbuild", "smoke"))]
    for proc in runs:
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
    assert runs[0].stderr == runs[1].stderr
    lines = runs[0].stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lwsbuild: error: ") and "(fix: " in lines[0], lines
    return lines[0], runs


def _copy_prefix(src: Path, dst: Path) -> Path:
    for sub in ("lib", "share"):
        shutil.copytree(src / sub, dst / sub, symlinks=True, ignore=shutil.ignore_patterns("cmake", "pkgconfig"))
    return dst


def _synthetic_layout() -> Json:
    """A self-consistent layout document for this machine's pointer size."""
    ptr = ctypes.sizeof(ctypes.c_void_p)
    kind_size = {"ptr": ptr, "int": 4, "u64": 8, "size_t": ctypes.sizeof(ctypes.c_size_t), "id": 4}
    structs = {}
    for sname, fields in native.REQUIRED_STRUCTS.items():
        off = 0
        out = {}
        for fname, kind in fields.items():
            size = kind_size[kind]
            off = (off + size - 1) // size * size
            out[fname] = {"offset": off, "size": size}
            off += size
        total = (off + ptr - 1) // ptr * ptr + 4 * ptr
        structs[sname] = {"size": total, "fields": out}
    constants = {name: i + 1 for i, name in enumerate(native.REQUIRED_CONSTANTS)}
    constants["LWS_PRE"] = 16
    return {
        "schema_version": 1,
        "lws_version_string": "4.3.5-test",
        "pointer_size": ptr,
        "config": {"LWS_WITH_TLS": True},
        "structs": structs,
        "constants": constants,
    }


# --------------------------------------------------------------------------- #
# pure Python (no prefix needed)


def test_parse_layout_accepts_consistent_document(tmp_path: Path) -> None:
    layout = native.parse_layout(_synthetic_layout(), tmp_path / "layout.json")
    assert layout.version_string == "4.3.5-test"
    assert layout.const("LWS_PRE") == 16
    buf = layout.new_struct("lws_client_connect_info")
    buf.set_int("port", 8080)
    buf.set_int("ietf_version_or_minus_one", -1)
    assert buf.get_int("port") == 8080
    assert buf.get_int("ietf_version_or_minus_one") == -1


@pytest.mark.parametrize(
    "corrupt, needle",
    [
        (lambda d: d["structs"]["lws_context_creation_info"]["fields"]["options"].update(size=4), "options"),
        (lambda d: d["structs"]["lws_protocols"].update(size=8), "lies outside"),
        (lambda d: d["structs"]["lws_client_connect_info"]["fields"].pop("port"), "port"),
        (lambda d: d["constants"].pop("LWS_PRE"), "LWS_PRE"),
        (lambda d: d.update(pointer_size=2), "pointer"),
        (lambda d: d.pop("lws_version_string"), "lws_version_string"),
        (lambda d: d["structs"]["lws_protocols"]["fields"]["callback"].update(offset=0), "overlap"),
    ],
)
def test_parse_layout_rejects_inconsistent_document(tmp_path: Path, corrupt: Callable[[Json], object],
                                                    needle: str) -> None:
    doc = _synthetic_layout()
    corrupt(doc)
    with pytest.raises(LayoutMismatchError) as exc:
        native.parse_layout(doc, tmp_path / "layout.json")
    assert needle in str(exc.value)


def test_read_layout_missing_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(LayoutMismatchError, match="missing"):
        native.read_layout(tmp_path)
    (tmp_path / "share" / "lwsbuild").mkdir(parents=True)
    (tmp_path / prefix_layout.LAYOUT).write_text("{not json")
    with pytest.raises(LayoutMismatchError, match="not valid JSON"):
        native.read_layout(tmp_path)


def test_find_prefix_errors(tmp_path: Path) -> None:
    with pytest.raises(NativeLibraryError, match="does not exist"):
        native.find_prefix(tmp_path / "nope")
    with pytest.raises(NativeLibraryError, match=r"libwebsockets\.so\.N files \(none\)"):
        native.find_prefix(tmp_path)


def test_soname_comes_from_the_build_not_a_constant(tmp_path: Path) -> None:
    """layout.json's `soname` (recorded by the CMake project) names the library; without it, the
    one lib/libwebsockets.so.N ELF name. 4.4 ships .so.20, 4.5 .so.21, 5.0 .so.22."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libwebsockets.so").write_text("INPUT(libwebsockets.so.21)\n")  # the linker script is no candidate
    (lib / "libwebsockets.so.21").write_bytes(b"\x7fELF")
    assert native.soname(tmp_path) == "libwebsockets.so.21"
    assert native.find_prefix(tmp_path) == tmp_path.resolve()
    (tmp_path / "share" / "lwsbuild").mkdir(parents=True)
    (tmp_path / "share" / "lwsbuild" / "layout.json").write_text(json.dumps({"soname": "libwebsockets.so.22"}))
    assert native.library_path(tmp_path) == lib / "libwebsockets.so.22"
    with pytest.raises(NativeLibraryError, match=r"lib/libwebsockets\.so\.22 is missing"):
        native.find_prefix(tmp_path)  # the recorded name wins: a stray .so.21 is not loaded instead
    (tmp_path / "share" / "lwsbuild" / "layout.json").unlink()
    (lib / "libwebsockets.so.20").write_bytes(b"\x7fELF")
    with pytest.raises(NativeLibraryError, match="2 lib/libwebsockets.so.N files"):
        native.soname(tmp_path)


def test_find_prefix_bundled_without_native_part_is_clear() -> None:
    import importlib.resources

    bundled = Path(str(importlib.resources.files("lwsbuild") / "_native"))
    if list((bundled / "lib").glob("libwebsockets.so.*")):
        pytest.skip("this installation has a bundled native part")
    with pytest.raises(NativeLibraryError, match="no native part"):
        native.find_prefix(None)


def test_sanitizer_env_appends_options_and_preloads_first() -> None:
    asan = planned.provenance("asan").sanitizer
    assert asan is not None
    env = native.sanitizer_env(
        asan, Path("/x/libasan.so.8"), {"ASAN_OPTIONS": "abort_on_error=1", "LD_PRELOAD": "/y/libfoo.so:/z/libasan.so.6"}
    )
    assert env["ASAN_OPTIONS"] == "abort_on_error=1:detect_leaks=0"
    assert env["LD_PRELOAD"] == "/x/libasan.so.8:/y/libfoo.so"
    assert native.sanitizer_env(asan, Path("/x/libasan.so.8"), {})["ASAN_OPTIONS"] == "detect_leaks=0"


def test_tsan_is_refused_with_pointer_to_stress(tmp_path: Path) -> None:
    with pytest.raises(SanitizerRuntimeError) as exc:
        native.prepare_process(tmp_path, planned.provenance("tsan"))
    assert "lwsbuild stress --variant tsan" in exc.value.one_line()


@pytest.mark.skipif(native.runtime_loaded("libasan.so"), reason="this test process already runs under ASan")
def test_asan_without_reexec_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(SanitizerRuntimeError) as exc:
        native.prepare_process(tmp_path, planned.provenance("asan"), argv=["--json"])
    line = exc.value.one_line()
    assert "\n" not in line
    if "no libasan.so" not in line:  # machines without the ASan runtime
        assert "LD_PRELOAD=" in line and "detect_leaks=0" in line and "-m lwsbuild.native.smoke --json" in line


def test_report_json_and_render() -> None:
    rep = SmokeReport(
        ok=True, url="ws://127.0.0.1:1/echo", lws_version="4.3.5", variant="release",
        provenance={"version": "4.3.5", "fixes_applied": ["0001"], "series": "all", "unfixed": False},
        messages=(MessageResult("text", "text", 5, True, 0.5, 1),), error=None, duration_ms=3.0,
        peer="builtin", peer_close_code=1000,
    )
    data = rep.to_json()
    assert json.loads(json.dumps(data))["messages"][0]["rtt_ms"] == 0.5
    assert "OK" in rep.render() and "0001" in rep.render()


def test_usage_errors() -> None:
    assert main(["--bogus"]) == 2
    assert main(["--timeout", "0"]) == 2
    with pytest.raises(UsageError):
        run_smoke("http://127.0.0.1:1/", Path("/nonexistent"))


def test_both_entry_points_fail_alike_on_a_missing_prefix(tmp_path: Path) -> None:
    line, _ = _same_failure("--prefix", str(tmp_path / "no-prefix"), "--timeout", "5", code=SmokeFailure.exit_code)
    assert f"install prefix {tmp_path / 'no-prefix'} does not exist" in line


def test_both_entry_points_refuse_a_bad_url_alike() -> None:
    line, _ = _same_failure("--url", "http://127.0.0.1:1/", code=UsageError.exit_code)
    assert "unsupported URL 'http://127.0.0.1:1/'" in line


# --------------------------------------------------------------------------- #
# a real build


@pytest.mark.build
@pytest.mark.network
def test_echo_round_trip_release(release_prefix: Path) -> None:
    t = time.monotonic()
    rep = run_smoke(None, release_prefix, timeout=10.0)
    assert rep.ok, rep.render()
    assert time.monotonic() - t < 10
    assert [m.name for m in rep.messages] == ["text", "binary", "large"]
    assert all(m.ok and m.rtt_ms is not None for m in rep.messages)
    assert rep.messages[2].chunks > 1  # arrived fragmented, was reassembled
    assert rep.peer_close_code == 1000
    assert rep.lws_version and rep.lws_version.startswith(rep.provenance["version"])
    assert rep.to_json()["ok"] is True


@pytest.mark.build
@pytest.mark.network
def test_cli_json_release(release_prefix: Path) -> None:
    proc = _run_cli("--prefix", str(release_prefix), "--json", "--timeout", "10")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is True and len(data["messages"]) == 3


@pytest.mark.build
@pytest.mark.network
def test_echo_round_trip_asan(asan_prefix: Path) -> None:
    proc = _run_cli("--prefix", str(asan_prefix), "--json", "--timeout", "30")
    for marker in SANITIZER_MARKERS:
        assert marker not in proc.stderr, proc.stderr[-4000:]
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["variant"] == "asan"
    assert data["peer_close_code"] == 1000


@pytest.mark.build
@pytest.mark.network
@pytest.mark.skipif(native.runtime_loaded("libasan.so"), reason="this test process already runs under ASan")
def test_asan_in_process_refuses_instead_of_aborting(asan_prefix: Path) -> None:
    with pytest.raises(SanitizerRuntimeError) as exc:
        run_smoke(None, asan_prefix, timeout=5)
    assert "LD_PRELOAD" in exc.value.one_line() or "libasan" in exc.value.one_line()


@pytest.mark.build
@pytest.mark.network
def test_tsan_is_refused(tsan_prefix: Path) -> None:
    with pytest.raises(SanitizerRuntimeError) as exc:
        native.load(tsan_prefix)
    assert "lwsbuild stress --variant tsan" in exc.value.one_line()


@pytest.mark.build
@pytest.mark.network
def test_exception_in_callback_fails_the_smoke(release_prefix: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lwsbuild.native import smoke

    def boom(self: object, wsi: object) -> None:
        raise RuntimeError("boom from a test")

    monkeypatch.setattr(smoke._Session, "_message_complete", boom)
    t = time.monotonic()
    rep = run_smoke(None, release_prefix, timeout=5)
    assert not rep.ok
    assert "internal error in the lws callback: RuntimeError: boom from a test" in str(rep.error)
    assert time.monotonic() - t < 5


@pytest.mark.build
@pytest.mark.network
def test_refused_port(release_prefix: Path) -> None:
    port = _free_port()
    t = time.monotonic()
    rep = run_smoke(f"ws://127.0.0.1:{port}/", release_prefix, timeout=5)
    assert not rep.ok
    assert rep.error == f"connection refused by 127.0.0.1:{port}"
    assert time.monotonic() - t < 5


@pytest.mark.build
@pytest.mark.network
def test_refused_port_both_entry_points_one_line(release_prefix: Path) -> None:
    port = _free_port()
    line, _ = _same_failure("--prefix", str(release_prefix), "--url", f"ws://127.0.0.1:{port}/x", "--timeout", "5",
                            code=SmokeFailure.exit_code)
    assert line.startswith(f"lwsbuild: error: smoke failed: connection refused by 127.0.0.1:{port} (fix: ")


def test_peer_closing_early_fails_alike_through_both_entry_points(release_prefix: Path) -> None:
    with RawServer("close") as srv:
        t = time.monotonic()
        line, runs = _same_failure("--prefix", str(release_prefix), "--url", f"ws://127.0.0.1:{srv.port}/",
                                   "--timeout", "5", "--json", code=SmokeFailure.exit_code)
        assert time.monotonic() - t < 2 * 5  # each failed at once, not at its deadline
        assert srv.connections == 2
    assert line.startswith(f"lwsbuild: error: smoke failed: WebSocket handshake with 127.0.0.1:{srv.port} failed: ")
    reports = [json.loads(proc.stdout) for proc in runs]
    assert [r["ok"] for r in reports] == [False, False]
    assert reports[0]["error"] == reports[1]["error"] and reports[0]["error"] in line


@pytest.mark.build
@pytest.mark.network
def test_handshake_rejected_403(release_prefix: Path) -> None:
    with RawServer("http403") as srv:
        rep = run_smoke(f"ws://127.0.0.1:{srv.port}/chat", release_prefix, timeout=5)
    assert not rep.ok
    assert "HTTP 403" in str(rep.error) and "rejected" in str(rep.error)
    assert "\n" not in str(rep.error)


@pytest.mark.build
@pytest.mark.network
def test_silent_server_times_out(release_prefix: Path) -> None:
    with RawServer("silent") as srv:
        t = time.monotonic()
        rep = run_smoke(f"ws://127.0.0.1:{srv.port}/", release_prefix, timeout=1.5)
        elapsed = time.monotonic() - t
    assert not rep.ok
    assert "timed out after 1.5 s" in str(rep.error) and "never answered" in str(rep.error)
    assert 1.4 < elapsed < 4.0


@pytest.mark.build
@pytest.mark.network
def test_wrong_subprotocol(release_prefix: Path) -> None:
    with RawServer("wrongproto") as srv:
        rep = run_smoke(f"ws://127.0.0.1:{srv.port}/", release_prefix, timeout=5)
    assert not rep.ok
    assert "subprotocol" in str(rep.error) and "lwsbuild-smoke" in str(rep.error)


@pytest.mark.build
@pytest.mark.network
def test_wrong_subprotocol_cli_exit_code(release_prefix: Path) -> None:
    with RawServer("wrongproto") as srv:
        proc = _run_cli("--prefix", str(release_prefix), "--url", f"ws://127.0.0.1:{srv.port}/", "--timeout", "5")
    assert proc.returncode == SmokeFailure.exit_code
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _rewrite_layout(prefix: Path, change: Callable[[Json], object]) -> None:
    path = prefix / prefix_layout.LAYOUT
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.build
@pytest.mark.network
@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda d: d.update(lws_version_string="4.2.0-wrong"), "4.2.0-wrong"),
        (lambda d: d["structs"]["lws_context_creation_info"].update(size=12), "lws_context_creation_info"),
        (lambda d: d["config"].update(LWS_WITH_TLS=not d["config"]["LWS_WITH_TLS"]), "LWS_WITH_TLS"),
    ],
)
def test_wrong_layout_is_refused(release_prefix: Path, tmp_path: Path, change: Callable[[Json], object],
                                 needle: str) -> None:
    prefix = _copy_prefix(release_prefix, tmp_path / "prefix")
    _rewrite_layout(prefix, change)
    with pytest.raises(LayoutMismatchError) as exc:
        native.load(prefix)
    assert needle in str(exc.value)
    assert "layout.json" in str(exc.value)


@pytest.mark.build
@pytest.mark.network
def test_missing_layout_cli(release_prefix: Path, tmp_path: Path) -> None:
    prefix = _copy_prefix(release_prefix, tmp_path / "prefix")
    (prefix / prefix_layout.LAYOUT).unlink()
    line, _ = _same_failure("--prefix", str(prefix), "--timeout", "5", code=LayoutMismatchError.exit_code)
    assert "layout.json is missing" in line


@pytest.mark.build
@pytest.mark.network
def test_load_reports_versions_and_provenance(release_prefix: Path) -> None:
    lib = native.load(release_prefix)
    assert lib.version == lib.layout.version_string
    assert lib.version.startswith(lib.provenance.lws.version)
    assert lib.lws_pre >= 16
    assert lib.layout.field("lws_context_creation_info", "options")[1] == 8
    assert lib.variant == lib.provenance.variant == "release"


# --- the two-line user experience: `pip install <wheel>` then `lwsbuild smoke` --------------------

def _smoke_in_venv(venv: Venv) -> tuple[Json, str]:
    result = venv.run(venv.root / "bin" / "lwsbuild", "smoke", "--json", timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout), result.stderr


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_smoke_from_the_installed_release_wheel(release_venv: Venv) -> None:
    report, _ = _smoke_in_venv(release_venv)
    assert report["ok"] and report["variant"] == "release"
    assert Path(report["prefix"]).is_relative_to(release_venv.root)
    assert [m["ok"] for m in report["messages"]] == [True, True, True]


@pytest.mark.build
@pytest.mark.network
@pytest.mark.venv
def test_smoke_from_the_installed_asan_wheel_has_no_sanitizer_report(asan_venv: Venv) -> None:
    # The asan library needs libasan first: the command re-executes itself with it preloaded.
    report, stderr = _smoke_in_venv(asan_venv)
    assert report["ok"] and report["variant"] == "asan"
    assert Path(report["prefix"]).is_relative_to(asan_venv.root)
    assert "ERROR: AddressSanitizer" not in stderr and "runtime error" not in stderr
