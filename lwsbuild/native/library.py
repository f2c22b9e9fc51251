"""Locate and load a built libwebsockets (install prefix or the wheel's `_native`).

Everything that touches the C ABI goes through the layout the build's own probe
recorded (``share/lwsbuild/layout.json``): struct sizes, field offsets and enum
values come from there, never from a hand-written ``ctypes.Structure`` guess.

Public API:

* :func:`find_prefix` - resolve an install prefix (``None`` means the wheel's ``_native``).
* :func:`read_provenance`, :func:`read_layout` - the JSON side files.
* :func:`prepare_process` - make sure a sanitizer build can be loaded here
  (re-exec with its runtime preloaded, or refuse with the exact command); what
  a sanitizer needs comes from the build's provenance (variants.toml's table,
  and the runtime the compiler linked).
* :func:`load` - all of the above plus ``dlopen`` and the version checks.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwsbuild.build import provenance as provenance_mod
from lwsbuild.build.provenance import Provenance, SanitizerRecord
from lwsbuild.common import bounded
from lwsbuild.common import prefix as prefix_layout
from lwsbuild.common.paths import expand_user
from lwsbuild.errors import LayoutMismatchError, NativeLibraryError, SanitizerRuntimeError

LAYOUT_SCHEMA_VERSION = 1
REEXEC_MARKER = "LWSBUILD_SANITIZER_REEXEC"

# What the Python side needs from layout.json.  Each field is described by its
# C kind so the sizes recorded by the probe can be sanity-checked:
#   "ptr" = any pointer, "int" = int / unsigned int, "u64" = uint64_t,
#   "size_t", "id" (uid_t / gid_t).
REQUIRED_STRUCTS: dict[str, dict[str, str]] = {
    "lws_context_creation_info": {
        "protocols": "ptr",
        "port": "int",
        "timeout_secs": "int",
        "connect_timeout_secs": "int",
        "gid": "id",
        "uid": "id",
        "options": "u64",
        "user": "ptr",
        "count_threads": "int",
    },
    "lws_protocols": {
        "name": "ptr",
        "callback": "ptr",
        "per_session_data_size": "size_t",
        "rx_buffer_size": "size_t",
        "id": "int",
        "user": "ptr",
        "tx_packet_size": "size_t",
    },
    "lws_client_connect_info": {
        "context": "ptr",
        "address": "ptr",
        "port": "int",
        "ssl_connection": "int",
        "path": "ptr",
        "host": "ptr",
        "origin": "ptr",
        "protocol": "ptr",
        "ietf_version_or_minus_one": "int",
        "userdata": "ptr",
        "pwsi": "ptr",
    },
}

REQUIRED_CONSTANTS: tuple[str, ...] = (
    "LWS_PRE",
    "CONTEXT_PORT_NO_LISTEN",
    "LWS_CALLBACK_CLIENT_CONNECTION_ERROR",
    "LWS_CALLBACK_CLIENT_ESTABLISHED",
    "LWS_CALLBACK_CLIENT_RECEIVE",
    "LWS_CALLBACK_CLIENT_WRITEABLE",
    "LWS_CALLBACK_CLIENT_CLOSED",
    "LWS_CALLBACK_WS_PEER_INITIATED_CLOSE",
    "LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH",
    "LWS_CALLBACK_EVENT_WAIT_CANCELLED",
    "LWS_WRITE_TEXT",
    "LWS_WRITE_BINARY",
    "LCCSCF_USE_SSL",
    "LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT",
    "LWS_CLOSE_STATUS_NORMAL",
    "LLL_ERR",
    "LLL_WARN",
)

_KIND_SIZES = {
    "ptr": (ctypes.sizeof(ctypes.c_void_p),),
    "int": (ctypes.sizeof(ctypes.c_int),),
    "u64": (8,),
    "size_t": (ctypes.sizeof(ctypes.c_size_t),),
    "id": (4, 8),
}

# A symbol that libwebsockets exports only when built with TLS: used to cross
# check layout.json's LWS_WITH_TLS against the library actually loaded.
_TLS_ONLY_SYMBOL = "lws_tls_peer_cert_info"

# C callback types
LWS_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
)
LWS_LOG_EMIT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)


# --------------------------------------------------------------------------- #
# locating


def soname(prefix: Path) -> str:
    """The library's SONAME as this build recorded it (layout.json's `soname`, written by the CMake
    project from the lws target): 4.3 ships .so.19, 4.4 .so.20, 4.5 .so.21, 5.0 .so.22.

    A prefix from before that field: the one versioned ELF file in lib/ (the linker script
    libwebsockets.so is not one)."""
    layout_file = Path(prefix) / prefix_layout.LAYOUT
    recorded = (bounded.read_json(layout_file, str(layout_file), LayoutMismatchError).get("soname")
                if layout_file.is_file() else None)
    if recorded is not None and not (isinstance(recorded, str) and _SONAME.fullmatch(recorded)):
        # A name with a '/' would load a library outside the prefix.
        raise LayoutMismatchError(f"{layout_file}: soname {recorded!r} is not a file name libwebsockets.so.N")
    if isinstance(recorded, str):
        return recorded
    found = sorted(p.name for p in (Path(prefix) / "lib").glob("libwebsockets.so.*")
                   if p.name.removeprefix("libwebsockets.so.").isdigit())
    if len(found) != 1:
        raise NativeLibraryError(f"{prefix} is not an lws install prefix: no recorded SONAME and "
                                 f"{len(found)} lib/libwebsockets.so.N files ({', '.join(found) or 'none'})")
    return found[0]


_SONAME = re.compile(r"libwebsockets\.so\.[0-9]{1,4}")


def library_path(prefix: Path) -> Path:
    return Path(prefix) / "lib" / soname(prefix)


def _inside(root: Path, path: Path) -> Path:
    """`path` with its links resolved, refused unless it stays inside `root`: a prefix the user names
    is trusted to be loaded, but nothing of it may lead elsewhere."""
    real, top = path.resolve(), root.resolve()
    if not real.is_relative_to(top):
        raise NativeLibraryError(f"{path} leads outside the prefix {root} (to {real}): refusing to load it",
                                 hint="pass --prefix to a prefix made by `lwsbuild build` (its library is its own file)")
    if not real.is_file():
        raise NativeLibraryError(f"{path} is not a regular file")
    return real


def find_prefix(prefix: Path | str | None = None) -> Path:
    """Return the install prefix to load from.

    ``None`` means the native part bundled in the wheel
    (``importlib.resources.files("lwsbuild") / "_native"``).
    """
    if prefix is None:
        import importlib.resources

        try:
            root = importlib.resources.files("lwsbuild") / "_native"
        except Exception as exc:  # pragma: no cover - broken installs
            raise NativeLibraryError(f"cannot locate the lwsbuild package data: {exc}") from exc
        candidate = Path(str(root))
        try:
            present = library_path(candidate).is_file()
        except NativeLibraryError:
            present = False
        if not present:
            raise NativeLibraryError(
                f"this lwsbuild installation has no native part ({candidate} has no lib/libwebsockets.so.N)",
                hint="install a wheel built with `lwsbuild wheel`, or pass --variant release (builds one) or --prefix DIR",
            )
        return candidate
    candidate = expand_user(prefix, "--prefix")
    if not candidate.is_dir():
        raise NativeLibraryError(f"install prefix {candidate} does not exist")
    library = library_path(candidate)
    if not library.is_file():
        raise NativeLibraryError(f"{candidate} is not an lws install prefix: lib/{library.name} is missing")
    return candidate.resolve()


def read_provenance(prefix: Path) -> Provenance:
    path = Path(prefix) / prefix_layout.PROVENANCE
    if not path.is_file():
        raise NativeLibraryError(f"{path} is missing: not a prefix built by lwsbuild")
    return provenance_mod.read(path)


# --------------------------------------------------------------------------- #
# layout


@dataclass(frozen=True)
class Layout:
    """Parsed, validated layout.json of one build."""

    path: Path
    version_string: str
    pointer_size: int
    config: Mapping[str, Any]
    structs: Mapping[str, Mapping[str, Any]]
    constants: Mapping[str, int]

    def size(self, struct_name: str) -> int:
        return int(self.structs[struct_name]["size"])

    def field(self, struct_name: str, field_name: str) -> tuple[int, int]:
        try:
            f = self.structs[struct_name]["fields"][field_name]
        except KeyError:
            raise LayoutMismatchError(
                f"{self.path}: struct {struct_name} has no field {field_name!r} recorded"
            ) from None
        return int(f["offset"]), int(f["size"])

    def const(self, name: str) -> int:
        try:
            return int(self.constants[name])
        except KeyError:
            raise LayoutMismatchError(f"{self.path}: constant {name} is not recorded") from None

    def has_const(self, name: str) -> bool:
        return name in self.constants

    def new_struct(self, struct_name: str) -> StructBuffer:
        return StructBuffer(self, struct_name)


def parse_layout(data: Any, path: Path) -> Layout:
    """Validate a layout document; raise LayoutMismatchError on anything odd."""

    def bad(msg: str) -> LayoutMismatchError:
        return LayoutMismatchError(f"{path}: {msg}")

    if not isinstance(data, dict):
        raise bad("not a JSON object")
    if data.get("schema_version", LAYOUT_SCHEMA_VERSION) != LAYOUT_SCHEMA_VERSION:
        raise bad(f"schema_version {data.get('schema_version')!r}, expected {LAYOUT_SCHEMA_VERSION}")
    version = data.get("lws_version_string")
    if not isinstance(version, str) or not version:
        raise bad("lws_version_string is missing")
    ptr = ctypes.sizeof(ctypes.c_void_p)
    psize = data.get("pointer_size", ptr)
    if psize != ptr:
        raise bad(f"built for {psize}-byte pointers, this Python has {ptr}-byte pointers")
    config = data.get("config", {})
    structs = data.get("structs")
    constants = data.get("constants")
    if not isinstance(config, dict) or not isinstance(structs, dict) or not isinstance(constants, dict):
        raise bad("config / structs / constants sections are missing or malformed")

    for sname, wanted in REQUIRED_STRUCTS.items():
        s = structs.get(sname)
        if not isinstance(s, dict) or not isinstance(s.get("fields"), dict):
            raise bad(f"struct {sname} is not described")
        size = s.get("size")
        if not isinstance(size, int) or size <= 0 or size % ptr:
            raise bad(f"struct {sname} has an implausible size {size!r}")
        spans: list[tuple[int, int, str]] = []
        for fname, f in s["fields"].items():
            if not isinstance(f, dict) or not isinstance(f.get("offset"), int) or not isinstance(f.get("size"), int):
                raise bad(f"{sname}.{fname} is malformed")
            off, fsz = f["offset"], f["size"]
            if off < 0 or fsz <= 0 or off + fsz > size:
                raise bad(f"{sname}.{fname} (offset {off}, size {fsz}) lies outside the {size}-byte struct")
            if fsz in (2, 4, 8) and off % fsz:
                raise bad(f"{sname}.{fname} at offset {off} is misaligned for a {fsz}-byte field")
            spans.append((off, off + fsz, fname))
        spans.sort()
        for (_a0, a1, an), (b0, _b1, bn) in itertools.pairwise(spans):
            if b0 < a1:
                raise bad(f"{sname}.{an} and {sname}.{bn} overlap")
        for fname, kind in wanted.items():
            f = s["fields"].get(fname)
            if f is None:
                raise bad(f"{sname}.{fname} is not recorded")
            if f["size"] not in _KIND_SIZES[kind]:
                raise bad(f"{sname}.{fname} has size {f['size']}, expected {' or '.join(map(str, _KIND_SIZES[kind]))}")
    for cname in REQUIRED_CONSTANTS:
        if not isinstance(constants.get(cname), int):
            raise bad(f"constant {cname} is not recorded")
    lws_pre = constants["LWS_PRE"]
    if lws_pre < 14 or lws_pre > 64:
        raise bad(f"LWS_PRE {lws_pre} is implausible")
    return Layout(
        path=path,
        version_string=version,
        pointer_size=ptr,
        config=dict(config),
        structs=structs,
        constants={k: int(v) for k, v in constants.items() if isinstance(v, int)},
    )


def read_layout(prefix: Path) -> Layout:
    path = Path(prefix) / prefix_layout.LAYOUT
    if not path.exists() and not path.is_symlink():
        raise LayoutMismatchError(
            f"{path} is missing: the struct layout of this build is unknown, refusing to call into it")
    return parse_layout(bounded.read_json(path, str(path), LayoutMismatchError), path)


class StructBuffer:
    """A zeroed C struct of the size layout.json says, written field by field."""

    def __init__(self, layout: Layout, name: str) -> None:
        self.layout = layout
        self.name = name
        self.buf = ctypes.create_string_buffer(layout.size(name))
        self._keep: list[Any] = []  # objects whose memory fields point into

    @property
    def address(self) -> int:
        return ctypes.addressof(self.buf)

    def set_int(self, fname: str, value: int) -> None:
        off, size = self.layout.field(self.name, fname)
        fmt = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
        if value >= 0:
            fmt = fmt.upper()
        struct.pack_into("=" + fmt, self.buf, off, value)

    def set_ptr(self, fname: str, value: int | None, keep: Any = None) -> None:
        off, size = self.layout.field(self.name, fname)
        if size != ctypes.sizeof(ctypes.c_void_p):
            raise LayoutMismatchError(f"{self.name}.{fname} is {size} bytes, not a pointer")
        struct.pack_into("=" + ("Q" if size == 8 else "I"), self.buf, off, value or 0)
        if keep is not None:
            self._keep.append(keep)

    def set_str(self, fname: str, value: str | bytes | None) -> None:
        if value is None:
            self.set_ptr(fname, None)
            return
        raw = value.encode() if isinstance(value, str) else value
        cbuf = ctypes.create_string_buffer(raw)
        self.set_ptr(fname, ctypes.addressof(cbuf), keep=cbuf)

    def get_int(self, fname: str, signed: bool = True) -> int:
        off, size = self.layout.field(self.name, fname)
        return int.from_bytes(self.buf.raw[off : off + size], sys.byteorder, signed=signed)


# --------------------------------------------------------------------------- #
# sanitizers


def _loaded_objects() -> str:
    try:
        return Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:  # pragma: no cover - non-Linux
        return ""


def runtime_loaded(runtime: str) -> bool:
    """Whether a sanitizer runtime ("libasan.so", any version of it) is mapped into this process."""
    return f"/{runtime.split('.so', 1)[0]}.so" in _loaded_objects()


_RUNTIME_NAME = re.compile(r"lib(asan|tsan|ubsan|lsan|hwasan)\.so(\.[0-9]{1,4}){0,3}")


def _system_file(path: Path) -> bool:
    """Whether `path` (links followed) is a regular file that only root or this user can change, in
    a directory the same holds for: a file a provenance.json names is preloaded or run only then."""
    if not path.is_absolute():
        return False
    try:
        real = path.resolve(strict=True)
        checked = [real.stat(), real.parent.stat()]
    except (OSError, RuntimeError):
        return False
    return stat.S_ISREG(checked[0].st_mode) and all(
        st.st_uid in (0, os.getuid()) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) for st in checked)


def runtime_path(provenance: Provenance) -> Path:
    """The sanitizer runtime the build linked: the file its compiler resolved when the build was
    planned (provenance `sanitizer.runtime_path`), else what the recorded compiler, $CC, cc or gcc
    resolve now (a wheel used on another machine)."""
    sanitizer = provenance.sanitizer
    if sanitizer is None:
        raise SanitizerRuntimeError(f"lws {provenance.lws.version} {provenance.variant} is not a sanitizer build",
                                    hint="nothing to preload: load it as it is")
    if not _RUNTIME_NAME.fullmatch(sanitizer.runtime):
        raise SanitizerRuntimeError(f"the build names {sanitizer.runtime!r} as its sanitizer runtime, which is "
                                    "not a sanitizer runtime's name: refusing to preload it",
                                    hint="load only prefixes and wheels made by lwsbuild")
    recorded = Path(sanitizer.runtime_path) if sanitizer.runtime_path else None
    named = recorded is not None and (recorded.name == sanitizer.runtime or recorded.name.startswith(f"{sanitizer.runtime}."))
    if recorded is not None and named and _system_file(recorded):
        return recorded.resolve()
    # The recorded compiler is run only where it is a system file: provenance came with the build.
    recorded_cc = [provenance.compiler.path] if _system_file(Path(provenance.compiler.path)) else []
    compilers = recorded_cc + [c for c in (os.environ.get("CC"), "cc", "gcc") if c]
    for cc in compilers:
        exe = cc if os.path.isabs(cc) else shutil.which(cc)
        if not exe or not os.path.exists(exe):
            continue
        try:
            out = subprocess.run(
                [exe, f"-print-file-name={sanitizer.runtime}"], capture_output=True, text=True, timeout=30,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if out and os.path.isabs(out) and os.path.exists(out):
            return Path(out).resolve()
    raise SanitizerRuntimeError(
        f"this is a {provenance.variant} build of lws but no {sanitizer.runtime} was found "
        f"(the build linked {sanitizer.runtime_path or 'one its compiler did not name'})",
        hint=f"install the {sanitizer.name} sanitizer runtime of the compiler that built it ({provenance.compiler.id}; "
             "Debian's gcc 12: libasan8, libtsan2, libubsan1)",
    )


def _append_option(existing: str | None, option: str) -> str:
    if not existing:
        return option
    return f"{existing}:{option}"


def sanitizer_env(sanitizer: SanitizerRecord, runtime: Path,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a process needs to load a `sanitizer` build of lws into Python: the runtime
    first in LD_PRELOAD (any other copy of it dropped), the sanitizer's python_options appended."""
    env = dict(os.environ if environ is None else environ)
    preload = env.get("LD_PRELOAD", "")
    parts = [p for p in preload.replace(" ", ":").split(":") if p and sanitizer.runtime_stem not in p]
    env["LD_PRELOAD"] = ":".join([str(runtime), *parts])
    for name, options in sanitizer.python_options.items():
        for option, value in options.items():
            env[name] = _append_option(env.get(name), f"{option}={value}")
    return env


def _command_hint(sanitizer: SanitizerRecord, runtime: Path, module: str | None, argv: Sequence[str] | None) -> str:
    shown = ["LD_PRELOAD", *sanitizer.python_options]
    env = sanitizer_env(sanitizer, runtime, {name: os.environ.get(name, "") for name in shown[1:]})
    cmd = [sys.executable, "-m", module or "lwsbuild.native.smoke", *(argv or [])]
    return " ".join(f"{name}={shlex.quote(env[name])}" for name in shown) + " " + shlex.join(cmd)


def prepare_process(
    prefix: Path,
    provenance: Provenance | None = None,
    *,
    reexec_module: str | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Make sure this process can load the library in ``prefix``.

    * plain builds: nothing to do.
    * sanitizer builds that can live in Python (variants.toml ``python = true``:
      ASan): the runtime must be the first object in the process. If it is not,
      and ``reexec_module`` is given, the current command is re-executed as
      ``python -m <reexec_module> <argv...>`` with ``LD_PRELOAD`` set to the
      runtime the build linked and the sanitizer's python_options appended
      (``detect_leaks=0`` for ASan; this call then never returns).  Without
      ``reexec_module`` a SanitizerRuntimeError names the exact command to run.
    * the others (TSan) cannot live in a Python process at all; refused.
    """
    prefix = Path(prefix)
    if provenance is None:
        provenance = read_provenance(prefix)
    sanitizer = provenance.sanitizer
    if sanitizer is None:
        return
    if not sanitizer.python:
        raise SanitizerRuntimeError(
            f"a {provenance.variant} build of lws ({sanitizer.name} sanitizer) cannot be loaded into a Python process",
            hint=f"use `lwsbuild stress --variant {provenance.variant}` to exercise the {provenance.variant} build",
        )
    if runtime_loaded(sanitizer.runtime):
        return
    runtime = runtime_path(provenance)
    if reexec_module is None:
        raise SanitizerRuntimeError(
            f"a {provenance.variant} build of lws needs {sanitizer.runtime} loaded first",
            hint=f"run: {_command_hint(sanitizer, runtime, None, argv)}",
        )
    if os.environ.get(REEXEC_MARKER) == "1":
        raise SanitizerRuntimeError(
            f"re-executed with LD_PRELOAD={runtime} but {sanitizer.runtime} is still not loaded",
            hint=f"run: {_command_hint(sanitizer, runtime, reexec_module, argv)}",
        )
    env = sanitizer_env(sanitizer, runtime)
    env[REEXEC_MARKER] = "1"
    args = [sys.executable, "-m", reexec_module, *(argv if argv is not None else sys.argv[1:])]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed stream: exec anyway
            pass
    os.execve(sys.executable, args, env)


# --------------------------------------------------------------------------- #
# the loaded library


_LOG_LOCK = threading.Lock()
_LOG_LINES: list[str] = []
_LOG_EMITTERS: dict[int, Any] = {}  # keeps the C log callback alive forever


def _log_emit(level: int, line: bytes | None) -> None:
    try:
        text = (line or b"").decode("utf-8", "replace").rstrip()
        with _LOG_LOCK:
            _LOG_LINES.append(text)
            del _LOG_LINES[:-200]
    except Exception:  # noqa: BLE001, S110 - never raise into C
        pass


def take_log_lines() -> list[str]:
    """lws log lines captured since the last call (when captured logging is on)."""
    with _LOG_LOCK:
        out = list(_LOG_LINES)
        _LOG_LINES.clear()
    return out


@dataclass(frozen=True)
class NativeLibrary:
    prefix: Path
    lib_path: Path
    cdll: ctypes.CDLL = field(repr=False)
    layout: Layout = field(repr=False)
    provenance: Provenance = field(repr=False)
    version: str
    variant: str

    # --- helpers --------------------------------------------------------- #

    def const(self, name: str) -> int:
        return self.layout.const(name)

    @property
    def lws_pre(self) -> int:
        return self.layout.const("LWS_PRE")

    @property
    def with_tls(self) -> bool:
        return bool(self.layout.config.get("LWS_WITH_TLS"))

    def fixes_applied(self) -> list[str]:
        return self.provenance.fixes("applied")

    # --- logging --------------------------------------------------------- #

    def set_log_level(self, level: int, capture: bool = True) -> None:
        """Set lws's log level; with ``capture`` lines go to :func:`take_log_lines`."""
        key = id(self.cdll)
        emit = None
        if capture:
            emit = _LOG_EMITTERS.get(key)
            if emit is None:
                emit = _LOG_EMITTERS[key] = LWS_LOG_EMIT(_log_emit)
        self.cdll.lws_set_log_level(int(level), emit)

    # --- context / protocols --------------------------------------------- #

    def make_protocols(
        self, entries: Sequence[tuple[str, Callable[..., int], int]]
    ) -> ProtocolTable:
        """Build a NULL-terminated lws_protocols array.

        ``entries`` are (name, python_callback(wsi, reason, user, in_, len) -> int,
        rx_buffer_size).  The returned table owns the C callbacks: keep it alive
        for the whole life of the context.
        """
        return ProtocolTable(self.layout, entries)

    def create_context(self, protocols: ProtocolTable, options: int = 0, *,
                       timeout_secs: int = 0, connect_timeout_secs: int = 0) -> int:
        info = self.layout.new_struct("lws_context_creation_info")
        info.set_int("port", self.const("CONTEXT_PORT_NO_LISTEN"))
        info.set_ptr("protocols", protocols.address)
        info.set_int("options", options)
        if timeout_secs:
            info.set_int("timeout_secs", timeout_secs)
        if connect_timeout_secs:
            info.set_int("connect_timeout_secs", connect_timeout_secs)
        ctx = self.cdll.lws_create_context(info.address)
        if not ctx:
            raise NativeLibraryError("lws_create_context() failed")
        return int(ctx)

    def connect(self, context: int, *, address: str, port: int, path: str, host: str,
                origin: str | None, protocol: str | None, ssl_flags: int = 0,
                local_protocol_name: str | None = None) -> int | None:
        """lws_client_connect_via_info(); returns the wsi address or None."""
        cc = self.layout.new_struct("lws_client_connect_info")
        cc.set_ptr("context", context)
        cc.set_str("address", address)
        cc.set_int("port", port)
        cc.set_int("ssl_connection", ssl_flags)
        cc.set_str("path", path)
        cc.set_str("host", host)
        cc.set_str("origin", origin)
        cc.set_str("protocol", protocol)
        cc.set_int("ietf_version_or_minus_one", -1)
        if local_protocol_name is not None:
            cc.set_str("local_protocol_name", local_protocol_name)
        wsi = self.cdll.lws_client_connect_via_info(cc.address)
        return int(wsi) if wsi else None

    def write(self, wsi: int, payload: bytes, mode: int) -> int:
        pre = self.lws_pre
        buf = ctypes.create_string_buffer(pre + len(payload))
        ctypes.memmove(ctypes.addressof(buf) + pre, payload, len(payload))
        return int(self.cdll.lws_write(wsi, ctypes.addressof(buf) + pre, len(payload), mode))

    def close_reason(self, wsi: int, status: int, reason: bytes = b"") -> None:
        buf = ctypes.create_string_buffer(reason, len(reason) or 1)
        self.cdll.lws_close_reason(wsi, status, buf, len(reason))


class ProtocolTable:
    """lws_protocols[] + terminator, owning names and CFUNCTYPE callbacks."""

    def __init__(self, layout: Layout, entries: Sequence[tuple[str, Callable[..., int], int]]) -> None:
        size = layout.size("lws_protocols")
        self.buf = ctypes.create_string_buffer(size * (len(entries) + 1))
        self.callbacks: list[Any] = []
        self.names: list[Any] = []
        for i, (name, fn, rx) in enumerate(entries):
            row = StructBuffer(layout, "lws_protocols")
            c_name = ctypes.create_string_buffer(name.encode())
            c_fn = LWS_CALLBACK(fn)
            row.set_ptr("name", ctypes.addressof(c_name))
            row.set_ptr("callback", ctypes.cast(c_fn, ctypes.c_void_p).value)
            row.set_int("rx_buffer_size", rx)
            ctypes.memmove(ctypes.addressof(self.buf) + i * size, row.buf, size)
            self.names.append(c_name)
            self.callbacks.append(c_fn)

    @property
    def address(self) -> int:
        return ctypes.addressof(self.buf)


_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "lws_get_library_version": (ctypes.c_char_p, []),
    "lws_set_log_level": (None, [ctypes.c_int, LWS_LOG_EMIT]),
    "lws_create_context": (ctypes.c_void_p, [ctypes.c_void_p]),
    "lws_context_destroy": (None, [ctypes.c_void_p]),
    "lws_client_connect_via_info": (ctypes.c_void_p, [ctypes.c_void_p]),
    "lws_service": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "lws_cancel_service": (None, [ctypes.c_void_p]),
    "lws_callback_on_writable": (ctypes.c_int, [ctypes.c_void_p]),
    "lws_write": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]),
    "lws_is_final_fragment": (ctypes.c_int, [ctypes.c_void_p]),
    "lws_is_first_fragment": (ctypes.c_int, [ctypes.c_void_p]),
    "lws_frame_is_binary": (ctypes.c_int, [ctypes.c_void_p]),
    "lws_remaining_packet_payload": (ctypes.c_size_t, [ctypes.c_void_p]),
    "lws_close_reason": (None, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]),
    "lws_set_timeout": (None, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
    "lws_http_client_http_response": (ctypes.c_uint, [ctypes.c_void_p]),
}


def _bind(cdll: ctypes.CDLL, path: Path) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError:
            raise NativeLibraryError(f"{path} does not export {name}()") from None
        fn.restype = restype
        fn.argtypes = argtypes


def _reported_version(version: str) -> str | None:
    """What a pinned release's library says it is where upstream did not bump it (releases.toml)."""
    from lwsbuild.errors import LwsbuildError
    from lwsbuild.source import releases

    try:
        return releases.get(version).reports_version
    except LwsbuildError:  # unpinned, or not a version: the library must say what provenance says
        return None


def _version_core(v: str) -> str:
    return v.split("-", 1)[0].split(" ", 1)[0].lstrip("v")


def load(
    prefix: Path | str | None = None,
    *,
    reexec_module: str | None = None,
    argv: Sequence[str] | None = None,
) -> NativeLibrary:
    """Locate, check and dlopen the library of a prefix (``None`` = bundled).

    Raises NativeLibraryError / LayoutMismatchError / SanitizerRuntimeError;
    see :func:`prepare_process` for ``reexec_module`` / ``argv``.
    """
    root = find_prefix(prefix)
    provenance = read_provenance(root)
    layout = read_layout(root)
    lib_path = root / "lib" / soname(root)
    _inside(root, lib_path)
    prepare_process(root, provenance, reexec_module=reexec_module, argv=argv)
    try:
        cdll = ctypes.CDLL(str(lib_path), mode=getattr(os, "RTLD_LOCAL", 0) | getattr(os, "RTLD_NOW", 2))
    except OSError as exc:
        raise NativeLibraryError(f"cannot load {lib_path}: {exc}") from None
    _bind(cdll, lib_path)

    raw = cdll.lws_get_library_version()
    version = (raw or b"").decode("utf-8", "replace")
    if version != layout.version_string:
        raise LayoutMismatchError(
            f"{layout.path} describes lws {layout.version_string!r} but {lib_path} is {version!r}"
        )
    wanted = provenance.lws.version
    if _version_core(version) not in (_version_core(wanted), _reported_version(wanted)):
        raise NativeLibraryError(
            f"{lib_path} reports lws {version!r} but provenance.json says {wanted!r}",
            hint="the prefix is mixed up: rebuild it with `lwsbuild build`",
        )
    has_tls_symbol = hasattr(cdll, _TLS_ONLY_SYMBOL)
    if "LWS_WITH_TLS" in layout.config and bool(layout.config["LWS_WITH_TLS"]) != has_tls_symbol:
        raise LayoutMismatchError(
            f"{layout.path} says LWS_WITH_TLS={bool(layout.config['LWS_WITH_TLS'])} but "
            f"{lib_path} was built {'with' if has_tls_symbol else 'without'} TLS"
        )
    return NativeLibrary(
        prefix=root,
        lib_path=lib_path,
        cdll=cdll,
        layout=layout,
        provenance=provenance,
        version=version,
        variant=provenance.variant,
    )
