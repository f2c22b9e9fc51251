"""provenance.json: what a build is, as one versioned, typed value.

One writer: `BuildSpec.provenance()` makes a `Provenance` when the build is planned, and
`build.write_spec` writes it beside the CMake spec, from where the CMake project installs it as
`share/lwsbuild/provenance.json` (and a wheel carries it under `lwsbuild/_native/`). Every reader
(native loading, smoke, config, wheel names, SBOM, CVE status, audit, the TLS check) reads it through `read` or
`parse`, which check every field's presence and type and the `schema` version: a file from another
lwsbuild is one error line saying to rebuild, never a KeyError or a silent default.

Only the standard library and lwsbuild's data modules are imported: the wheel metadata provider
(wheelmeta) reads provenance inside pip's isolated build environment.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lwsbuild.build.variants import LineOptions, Sanitizer, TlsBackend
from lwsbuild.common import bounded, prefix
from lwsbuild.common.records import Record
from lwsbuild.errors import ProvenanceError
from lwsbuild.series.fixes import PatchRecord

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# 3: `mirror` dropped (where the bytes came from is the cache's record, not the build's: the tree id is
# its identity, and a build from another mirror must be the same bytes); `extra_c_flags`, `ld_flags`
# and `tools` added (settings.py's declared inputs, and the cmake that built it).
SCHEMA = 3  # bump on any change of the fields below (the build key includes it: old entries rebuild)

OptionSets = dict[str, dict[str, str]]


@dataclass(frozen=True)
class LwsSource:
    """The libwebsockets release and the tree that was verified for it."""

    version: str
    tag: str
    commit: str | None  # None: an unpinned release
    tree_id: str  # of the pristine tree as delivered
    unpinned: bool


@dataclass(frozen=True)
class CompilerRecord:
    path: str
    version: str
    id: str  # the first line of `cc --version`


@dataclass(frozen=True)
class ToolsRecord:
    """The build tools besides the compiler: what `cmake --version` said (the one on PATH)."""

    cmake: str


@dataclass(frozen=True)
class SanitizerRecord:
    """The sanitizer the build is instrumented with (variants.toml [sanitizer.NAME]), as linked."""

    name: str
    runtime: str  # "libasan.so"
    runtime_path: str  # the file the compiler resolved the runtime to ("" if it had none): what it linked
    options_env: str
    python: bool  # can be loaded into Python with the runtime preloaded
    python_options: OptionSets

    @classmethod
    def of(cls, sanitizer: Sanitizer, runtime_path: str) -> SanitizerRecord:
        return cls(sanitizer.name, sanitizer.runtime, runtime_path, sanitizer.options_env, sanitizer.python,
                   {name: dict(options) for name, options in sanitizer.python_options.items()})

    @property
    def runtime_stem(self) -> str:
        """"libasan": what any version of the runtime's file name starts with."""
        return self.runtime.split(".so", 1)[0]


@dataclass(frozen=True)
class TlsRecord:
    """The TLS backend the build's options select (variants.toml [tls.backend.NAME]); the install
    step (`python -m lwsbuild.build.tls`) checks the library links it."""

    backend: str  # openssl | mbedtls | none
    links: tuple[str, ...]  # the libraries its shared library must need (without .so.N): libssl

    @classmethod
    def of(cls, backend: TlsBackend) -> TlsRecord:
        return cls(backend.name, backend.links)


@dataclass(frozen=True)
class RepairPolicy(Record):
    """Whether auditwheel repairs a variant's wheel to a manylinux tag, and why (or why not)."""

    repair: bool
    excluded: tuple[str, ...]  # sonames taken from the system instead of grafted into the wheel
    reason: str

    def auditwheel_args(self, wheel: Path, out_dir: Path) -> list[str]:
        """The arguments after `auditwheel` that repair `wheel` into `out_dir` by this policy (the one
        command line `lwsbuild wheel` and `python -m lwsbuild.wheel.meta repair` both run)."""
        excludes = [arg for soname in self.excluded for arg in ("--exclude", soname)]
        return ["repair", *excludes, "-w", str(out_dir), str(wheel)]


OPENSSL_SONAMES = ("libssl.so.3", "libcrypto.so.3")


def repair_policy(sanitizer: Sanitizer | None) -> RepairPolicy:
    """Release wheels: auditwheel repair to a manylinux tag, OpenSSL taken from the system.

    OpenSSL is not grafted into the wheel. libwebsockets hands OpenSSL objects across its API
    (SSL_CTX * in the OpenSSL callbacks, lws_get_ssl()), and C programs link the system OpenSSL
    through the wheel's pkg-config and CMake files: a grafted private copy would put two OpenSSLs in
    one process, with objects of one handed to the other. The system copy also receives the
    distribution's security fixes and finds the distribution's CA store, where a copy grafted from
    Debian would look in Debian's OPENSSLDIR. The cost is small: the library needs only OPENSSL_3.0.0
    symbol versions, and the glibc >= 2.34 systems the manylinux tag admits (RHEL 9, Ubuntu 22.04,
    Debian 12 and later) all ship libssl.so.3.

    Sanitizer wheels are not repaired: the library needs the compiler's own sanitizer runtime,
    preloaded and matching the compiler that built it; a grafted copy cannot work. They keep the
    linux tag, and say so in the command's output and in provenance.json.
    """
    if sanitizer is not None:
        return RepairPolicy(False, (), (
            f"not repaired: a sanitizer build ({sanitizer.name}) needs the compiler's own {sanitizer.runtime}, loaded first "
            "(LD_PRELOAD) and matching the compiler that built it; auditwheel would graft a copy, which "
            "cannot work. The wheel keeps the linux tag and is for this machine's toolchain only."))
    return RepairPolicy(True, OPENSSL_SONAMES, (
        "repaired by auditwheel to the lowest manylinux tag the library's glibc symbols allow; "
        "OpenSSL 3 (libssl.so.3, libcrypto.so.3) comes from the system, not grafted"))


@dataclass(frozen=True)
class Provenance(Record):
    """share/lwsbuild/provenance.json of a build."""

    schema: int
    lwsbuild_version: str
    lws: LwsSource
    series: str
    unfixed: bool
    marks: tuple[str, ...]  # UNPINNED, UNFIXED, NO-FIX
    patches: tuple[PatchRecord, ...]
    prepared_tree_id: str
    variant: str
    sanitizer: SanitizerRecord | None
    cmake_options: dict[str, str]  # every -D of the lws configure
    extra_options: dict[str, str]  # those the user set beyond the variant's and the release line's
    line_options: tuple[LineOptions, ...]
    tls: TlsRecord
    c_flags: tuple[str, ...]  # every target's: the variant's, then extra_c_flags
    extra_c_flags: tuple[str, ...]  # --extra-cflags / CFLAGS, as given
    ld_flags: tuple[str, ...]  # --extra-ldflags / LDFLAGS, as given: every link's
    compiler: CompilerRecord
    tools: ToolsRecord
    source_date_epoch: int
    build_key: str
    wheel: RepairPolicy

    def fixes(self, status: str) -> list[str]:
        """The ids of the fixes with `status` (applied, upstream, ...), in series order."""
        return [p.id for p in self.patches if p.status == status]


# --- reading -----------------------------------------------------------------------------------

_HINT = "rebuild it with this lwsbuild (`lwsbuild build` or `lwsbuild wheel` with the same options)"
T = TypeVar("T", bound="DataclassInstance")


def parse(data: object, where: str) -> Provenance:
    """A provenance document (JSON already decoded) as a Provenance; `where` names it in errors."""
    if not isinstance(data, dict):
        raise ProvenanceError(f"{where} is not a JSON object", hint=_HINT)
    schema = data.get("schema")
    if schema is None:
        raise ProvenanceError(f"{where} has no schema version: written by an lwsbuild older than its reader",
                              hint=_HINT)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema != SCHEMA:
        newer = isinstance(schema, int) and schema > SCHEMA
        raise ProvenanceError(f"{where} has provenance schema {schema!r}; this lwsbuild reads schema {SCHEMA}"
                              + (" (the file is from a newer lwsbuild)" if newer else ""),
                              hint=_HINT + ", or read it with the lwsbuild that wrote it")
    return _record(Provenance, data, where, "")


def loads(text: str | bytes, where: str) -> Provenance:
    """Provenance from a document that came from elsewhere (a wheel's member): bounded in size and depth."""
    return parse(bounded.json_object(text, where, ProvenanceError), where)


def read(path: Path) -> Provenance:
    if not path.exists() and not path.is_symlink():
        raise ProvenanceError(f"{path} is missing: not a build made by lwsbuild", hint=_HINT)
    return loads(bounded.read_bytes(path, str(path), ProvenanceError), str(path))


def write(path: Path, provenance: Provenance) -> None:
    """The one place provenance.json is written (atomically, keys sorted: the same bytes every time)."""
    from lwsbuild.common import cache

    cache.write_json_atomic(path, provenance.to_json())


def beside(spec_file: Path) -> Path:
    """Where the provenance of a spec file is: build.write_spec puts both in one directory."""
    return spec_file.with_name(prefix.PROVENANCE_NAME)


def _record(cls: type[T], data: object, where: str, path: str) -> T:
    if not isinstance(data, dict):
        raise ProvenanceError(f"{where}: {path or 'the document'} is {_shown(data)}, expected an object", hint=_HINT)
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [name for name in names if name not in data]
    if missing:
        raise ProvenanceError(f"{where}: {', '.join(_join(path, m) for m in missing)} missing", hint=_HINT)
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ProvenanceError(f"{where}: unknown field(s) {', '.join(_join(path, u) for u in unknown)} for "
                              f"schema {SCHEMA}", hint=_HINT)
    hints = typing.get_type_hints(cls)
    return cls(**{name: _value(data[name], hints[name], where, _join(path, name)) for name in names})


def _value(value: object, hint: Any, where: str, path: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(value, inner, where, path)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint, value, where, path)
    if origin is tuple and isinstance(value, list):
        return tuple(_value(item, args[0], where, f"{path}[{i}]") for i, item in enumerate(value))
    if origin is dict and isinstance(value, dict):
        return {key: _value(item, args[1], where, f"{path}.{key}") for key, item in value.items()
                if isinstance(key, str)}
    if hint in (str, int, bool) and isinstance(value, hint) and (hint is bool or not isinstance(value, bool)):
        return value
    raise ProvenanceError(f"{where}: {path} is {_shown(value)}, expected {_describe(hint)}", hint=_HINT)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return "an array"
    if origin is dict:
        return "an object"
    return {str: "a string", int: "an integer", bool: "true or false"}.get(hint, str(hint))
