"""Every parser and entry point that takes outside input, as a hypothesis fuzz target (issue 20).

A target is a strategy and a function of what it draws. The property is the same for all of them,
and it is the CLI's promise: the function returns, or raises an LwsbuildError whose one line names
the problem with a documented exit code (never InternalError: that is the "unexpected …" line).
Any other exception is a finding. Time is bounded per example by hypothesis's deadline and memory
by the campaign's address-space limit (bench/fuzz.py). tests/test_fuzz.py runs each target with a
fixed, derandomized budget; bench/fuzz.py runs them for as long as it is asked.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import string
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from lwsbuild.common import prefix
from lwsbuild.errors import EXIT_CODES, InternalError, LwsbuildError

from . import hostile_files

_CODES = {entry.code for entry in EXIT_CODES}


def clean(call: Callable[[], object]) -> None:
    """The property: `call` returns, or fails as the CLI promises (one line, a documented code)."""
    try:
        call()
    except LwsbuildError as exc:
        assert not isinstance(exc, InternalError), exc.one_line()
        assert exc.exit_code in _CODES, (exc.exit_code, exc.one_line())
        line = exc.one_line()
        assert line and "\n" not in line and len(line) < 2000, line


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    run: Callable[[Any], None]


# --- shared strategies ---------------------------------------------------------------------------

# Names made of the parts that matter to a path check, joined by '/'.
_PARTS = st.sampled_from(["a", "b", "s", "..", ".", "", ".git", ".GIT.", "git~1", ".g\u200cit", "lib", "CMakeLists.txt",
                          "x" * 300, "\u00e9"])
PATHS = st.builds(lambda lead, parts: lead + "/".join(parts), st.sampled_from(["", "", "/", "./"]),
                  st.lists(_PARTS, min_size=1, max_size=6))

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
_KEYS = st.sampled_from(["schema", "lws", "version", "tree_id", "series", "variant", "unfixed", "marks", "patches",
                         "sanitizer", "runtime", "runtime_path", "soname", "structs", "fields", "size", "offset",
                         "constants", "config", "pointer_size", "lws_version_string", "schema_version",
                         "vulnerabilities", "id", "analysis", "state"]) | st.text(max_size=12)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(_KEYS, inner, max_size=6), max_leaves=30)


def _toml_key(key: str) -> str:
    return key if key and all(c in string.ascii_letters + string.digits + "_-" for c in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, int) or math.isfinite(value) else "0"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return '""'


_TOML_SCALARS = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                          st.text(max_size=30))
TOML_VALUES = st.recursive(_TOML_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(_KEYS, inner, max_size=4), max_leaves=20)


@st.composite
def toml_documents(draw: st.DrawFn, tables: list[str]) -> str:
    """TOML text: tables of the names a reader knows (and others), keys with values of any type, and
    now and then a line of raw text (which may not be TOML at all)."""
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        header = draw(st.sampled_from(tables) | st.text(string.ascii_lowercase + ".", min_size=1, max_size=12))
        lines.append(f"[[{header}]]" if draw(st.booleans()) else f"[{header}]")  # an array of tables, or a table
        for key, value in draw(st.dictionaries(_KEYS, TOML_VALUES, max_size=6)).items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=40)))
    return "\n".join(lines) + "\n"


@st.composite
def mutated_text(draw: st.DrawFn, original: str) -> str:
    """`original` (a shipped file) with a few lines dropped, repeated or given another value."""
    lines = original.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "repeat", "value", "raw"]))
        if action == "drop":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "value" and "=" in lines[at]:
            key = lines[at].split("=", 1)[0]
            lines[at] = f"{key}= {_toml_value(draw(TOML_VALUES))}"
        else:
            lines[at] = draw(st.text(max_size=30))
    return "\n".join(lines) + "\n"


@st.composite
def mutated_json(draw: st.DrawFn, original: dict[str, Any]) -> str:
    """`original` with values at a few paths replaced by any JSON value (or a key removed or added)."""
    document = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        node: Any = document
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            if not isinstance(node[key], dict | list) or not node[key]:
                break
            node = node[key]
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            action = draw(st.sampled_from(["replace", "drop", "add"]))
            if action == "replace":
                node[key] = draw(JSON_VALUES)
            elif action == "drop":
                del node[key]
            else:
                node[draw(st.text(max_size=10))] = draw(JSON_VALUES)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(JSON_VALUES)
    return json.dumps(document)


# --- targets ---------------------------------------------------------------------------------------

def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="lwsbuild-fuzz-"))


def _spec(text: str) -> None:
    from lwsbuild.source import fetch

    clean(lambda: fetch.parse_spec(text))


def _series(name: str) -> None:
    from lwsbuild.series import fixes

    clean(lambda: fixes.select(name))


def _defines(items: list[str]) -> None:
    from lwsbuild.build import variants

    clean(lambda: variants.parse_defines(items))


def _config_settings(config: dict[str, str | list[str]]) -> None:
    from lwsbuild.common import entry, settings
    from lwsbuild.request import BuildRequest
    from lwsbuild.wheel import configsettings

    def run() -> None:
        parts = configsettings.split(config, {})
        parser = entry.OneLineParser(prog="fuzz")
        settings.add_arguments(parser)
        try:
            args = parser.parse_args(parts.build.argv)
        except SystemExit:  # argparse's own one line (exit 2): what the CLI prints too
            return
        BuildRequest.from_args(args, {})

    clean(run)


def _variants_file(text: str) -> None:
    from lwsbuild.build import variants

    folder = _scratch()
    try:
        path = folder / "variants.toml"
        path.write_text(text, errors="surrogatepass")
        clean(lambda: variants._load(str(path)))
    finally:
        shutil.rmtree(folder)


def _data_file(name: str) -> Target:
    """A shipped data file, mutated, read through its reader's declared shape (and whole reader)."""
    from lwsbuild.resources import load
    from lwsbuild.series import cves, fixes, verified
    from lwsbuild.source import releases
    from lwsbuild.stress import known_races, profiles
    from lwsbuild.upstream import suite as upstream_suite

    source = fixes.series_dir() / "series.toml" if name == "series.toml" else load.resource(name)
    shapes: dict[str, Callable[[], Any]] = {
        "releases.toml": lambda: releases.SHAPE, "cves.toml": lambda: cves.SHAPE, "verified.toml": lambda: verified.SHAPE,
        "known_races.toml": lambda: known_races.SHAPE, "profiles.toml": profiles.shape, "series.toml": lambda: fixes.SHAPE,
        "upstream_tests.toml": lambda: upstream_suite.SHAPE}

    def run(text: str) -> None:
        folder = _scratch()
        try:
            path = folder / name
            path.write_text(text)
            clean(lambda: load.read(path, shapes[name]()))
            if name == "cves.toml":
                clean(lambda: cves.load_cves(path))
            elif name == "series.toml":
                for patch in fixes.series_dir().glob("*.patch"):
                    (folder / patch.name).symlink_to(patch)
                clean(lambda: fixes.load_series(folder))
        finally:
            shutil.rmtree(folder)

    return Target(f"data file {name}", mutated_text(source.read_text()), run)


def _layout(value: Any) -> None:
    from lwsbuild.common import bounded
    from lwsbuild.errors import LayoutMismatchError
    from lwsbuild.native import library

    clean(lambda: library.parse_layout(value, Path("layout.json")))
    folder = _scratch()
    try:
        (folder / prefix.LAYOUT).parent.mkdir(parents=True)
        (folder / prefix.LAYOUT).write_text(json.dumps(value) if not isinstance(value, str) else value)
        clean(lambda: library.soname(folder))
        clean(lambda: bounded.read_json(folder / prefix.LAYOUT, "layout.json", LayoutMismatchError))
    finally:
        shutil.rmtree(folder)


def _provenance(text: str) -> None:
    from lwsbuild.build import provenance
    from lwsbuild.series import cves

    def run() -> None:
        described = provenance.loads(text, "provenance.json")
        cves.build_status(described, set())

    clean(run)


def _sbom(value: Any) -> None:
    from lwsbuild.wheel import audit

    clean(lambda: audit._sbom_states(value if isinstance(value, dict) else {"vulnerabilities": value}, "sbom"))


@st.composite
def wheels(draw: st.DrawFn) -> bytes:
    """A zip holding some of a build's members (valid, mutated or raw), sometimes with bytes flipped."""
    members: dict[str, bytes] = {}
    if draw(st.booleans()):
        members[prefix.in_wheel(prefix.PROVENANCE)] = draw(
            mutated_json(json.loads(hostile_files.provenance_json())) | st.just(hostile_files.provenance_json().decode())
        ).encode()
    if draw(st.booleans()):
        members[prefix.in_wheel(prefix.CONFIG_H)] = draw(st.sampled_from([hostile_files.CONFIG_H, b"", b"\n" * 1000,
                                                                          b"#define\n# define X\n"]))
    if draw(st.booleans()):
        members[prefix.in_wheel(prefix.SBOM)] = json.dumps(draw(JSON_VALUES)).encode()
    data = bytearray(hostile_files.zip_bytes(members))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def _wheel(data: bytes) -> None:
    from lwsbuild.wheel import audit

    folder = _scratch()
    try:
        path = folder / "x.whl"
        path.write_bytes(data)
        clean(lambda: audit.render(audit.audit(path)))
    finally:
        shutil.rmtree(folder)


def _url(text: str) -> None:
    from lwsbuild.native import smoke

    def run() -> None:
        _secure, host, port, path = smoke.parse_url(text)
        assert not any(ord(c) <= 0x20 or ord(c) == 0x7F for c in host + path), (host, path)
        assert 0 <= port <= 65535

    clean(run)


def _subprotocol(text: str) -> None:
    from lwsbuild.native import smoke

    clean(lambda: smoke.check_subprotocol(text))
    if text and all(c not in text for c in "\r\n\0"):
        return
    try:
        smoke.check_subprotocol(text)
    except LwsbuildError:
        return
    assert not text, f"a subprotocol with CR, LF or NUL passed: {text!r}"


_MEMBER = st.tuples(st.sampled_from(["file", "dir", "symlink", "hardlink"]), PATHS, PATHS)


def _tar_bytes(members: list[tuple[str, str, str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kind, name, target in members:
            info = tarfile.TarInfo(name)
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE}[kind]
            info.linkname = target if kind in ("symlink", "hardlink") else ""
            payload = target.encode() if kind == "file" else b""
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload else None)
    return buffer.getvalue()


def _zip_bytes(members: list[tuple[str, str, str]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore")  # a duplicate name is an input here, not a mistake
        for kind, name, target in members:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            info.create_system = 3
            info.external_attr = {"dir": 0o40755, "symlink": 0o120777}.get(kind, 0o100644) << 16
            zf.writestr(info, target.encode())
    return buffer.getvalue()


def _archive(drawn: tuple[str, list[tuple[str, str, str]]]) -> None:
    """Extraction of generated members: admitted or refused, and never anything outside `dest`."""
    from lwsbuild.source import archive

    kind, members = drawn
    sandbox = _scratch()
    try:
        outside = sandbox / "outside"
        outside.mkdir()
        path = sandbox / ("a.zip" if kind == "zip" else "a.tar")
        path.write_bytes(_zip_bytes(members) if kind == "zip" else _tar_bytes(members))
        (sandbox / "out").mkdir()
        clean(lambda: archive.extract(path, sandbox / "out" / "tree"))
        assert list(outside.iterdir()) == [], "a member was written outside the tree"
        assert sorted(p.name for p in sandbox.iterdir()) == sorted(["outside", path.name, "out"])
        for root, _dirs, files in os.walk(sandbox / "out"):
            for name in files:
                here = Path(root) / name
                if here.is_symlink():
                    resolved = here.resolve()
                    assert resolved.is_relative_to((sandbox / "out").resolve()) or not resolved.exists(), here
    finally:
        shutil.rmtree(sandbox)


def targets() -> list[Target]:
    spec_text = st.builds(lambda start, rest: start + rest,
                          st.sampled_from(["", "git+", "archive:", "dir:", "debian", "git+file://", "archive:http://",
                                           "debian:", "archive:/nonexistent.tar#sha256="]), st.text(max_size=60))
    series_name = st.text(max_size=20) | st.lists(st.sampled_from(["all", "seed", "none", "throughput", "0004",
                                                                    "0021", "x", ""]), max_size=6).map("-".join)
    define = st.builds(lambda n, v: f"{n}={v}", st.sampled_from(["LWS_WITH_SSL", "LWS_WITH_SUL_DEBUGGING", "X",
                                                                 "CMAKE_C_FLAGS", ""]) | st.text(max_size=10),
                       st.text(max_size=15)) | st.text(max_size=20)
    setting_keys = st.sampled_from(["lwsbuild.version", "lwsbuild.variant", "lwsbuild.series", "lwsbuild.define.LWS_X",
                                    "lwsbuild.unfixed", "lwsbuild.cc", "lwsbuild.extra-cflags", "lwsbuild.source",
                                    "cmake.define.LWS_WITH_SSL", "skbuild.cmake.args", "logging.level",
                                    "build.verbose", "lwsbuild.spec", "wheel.py-api"]) | st.text(max_size=16)
    config = st.dictionaries(setting_keys, st.text(max_size=20) | st.lists(st.text(max_size=10), max_size=3), max_size=4)
    url = st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["ws://", "wss://", "http://", "", "ws://["]),
                    st.text(max_size=40))
    return [
        Target("source spec", spec_text, _spec),
        Target("series name", series_name, _series),
        Target("-D values", st.lists(define, max_size=4), _defines),
        Target("-C settings", config, _config_settings),
        Target("variants file", toml_documents(["variant.fuzz", "sanitizer.fuzz", "variant", "sanitizer"])
               | st.text(max_size=200), _variants_file),
        *(_data_file(name) for name in ("releases.toml", "series.toml", "cves.toml", "profiles.toml",
                                         "known_races.toml", "verified.toml", "upstream_tests.toml")),
        Target("layout.json", JSON_VALUES | st.text(max_size=80), _layout),
        Target("provenance", mutated_json(json.loads(hostile_files.provenance_json())) | st.text(max_size=60), _provenance),
        Target("SBOM", JSON_VALUES, _sbom),
        Target("wheel (audit)", wheels(), _wheel),
        Target("smoke URL", url, _url),
        Target("smoke subprotocol", st.text(max_size=30), _subprotocol),
        Target("archive admission", st.tuples(st.sampled_from(["tar", "zip"]), st.lists(_MEMBER, max_size=8)), _archive),
    ]

