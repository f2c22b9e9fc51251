"""Build variants and their sanitizers (variants.toml), and the user's -D LWS_* options, validated together.

LWSBUILD_VARIANTS_FILE names a TOML file of further [variant.NAME] / [sanitizer.NAME] tables (same
keys as variants.toml; a table of a shipped name replaces it): a variant is added without touching
code. The variable is read when the tables are, so child processes (the CMake project's entry
point, the wheel metadata provider, the reproducibility rebuild) see the same variants.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lwsbuild.common import progress
from lwsbuild.common.records import Record
from lwsbuild.errors import BadDefineError, UnknownVariantError, UsageError, VariantsFileError
from lwsbuild.resources import load
from lwsbuild.resources.load import Each, Table

DEFAULT = "release"  # the variant of a build that names none (variants.toml must define it)
VARIANTS_FILE_ENV = "LWSBUILD_VARIANTS_FILE"
_DEFINE = re.compile(r"^(LWS_[A-Z0-9_]+)=(.*)$", re.DOTALL)
_MIN_SMP = 2
_MAX_SMP = 1024  # lws sizes per-thread arrays in every context by it: more only wastes memory
# Characters a value may not hold: it is written into the CMake spec file and the CMake cache, where
# a control character (a newline ends the line) or a `;` (CMake's list separator: one value
# would become several) changes what lws is configured with. A value is ASCII: CMake decides truth
# by comparing ASCII bytes, so "oﬀ" (U+FB00) is ON to CMake while Unicode case folding reads "OFF".
_UNSAFE_VALUE = re.compile(r"[\x00-\x1f\x7f;]")
# CMake's false constants for a variable's value (cmValue::IsOff): these, in any case, and "" ...
_CMAKE_FALSE = frozenset({"0", "OFF", "NO", "FALSE", "N", "IGNORE", ""})
# ... and NOTFOUND / *-NOTFOUND, in upper case only (measured with cmake 3.25: "x-notfound" is ON).
# lws tests its options as `if(LWS_WITH_X)` and `#cmakedefine`, which take every other value as ON:
# "2", "0.0", "-0", "maybe". The guard decides truth exactly as CMake will, or a forbidden option
# slips through.

OptionSets = Mapping[str, Mapping[str, str]]  # environment variable -> {option: value}


def _join_options(options: Mapping[str, str]) -> str:
    return ":".join(f"{name}={value}" for name, value in options.items())


@dataclass(frozen=True)
class Sanitizer:
    """One [sanitizer.NAME] table: what lwsbuild knows about a sanitizer (see variants.toml)."""

    name: str
    description: str
    runtime: str  # "libasan.so": the runtime library the compiler links
    options_env: str  # "ASAN_OPTIONS": the runtime's own options variable
    python: bool  # an instrumented library can be loaded into Python (runtime preloaded)
    c_flags: tuple[str, ...]  # every target, compile and link
    program_flags: tuple[str, ...]  # our own programs (stress harness, CVE server), any compiler ...
    program_flags_gcc: tuple[str, ...]  # ... and with gcc only
    no_aslr: bool  # run the harness under `setarch -R`
    options: OptionSets  # stress runs: ours first, the user's own after (they win)
    build_options: OptionSets  # building (the layout probe runs): appended, ours win
    python_options: OptionSets  # loaded into Python: appended, ours win

    @property
    def runtime_stem(self) -> str:
        """"libasan": what any version of the runtime's file name starts with."""
        return self.runtime.split(".so", 1)[0]

    def stress_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The options variables of a stress run: ours first, then `base`'s own value of each."""
        return {name: ":".join(filter(None, [_join_options(ours), base.get(name, "")]))
                for name, ours in self.options.items()}

    def build_env(self, base: Mapping[str, str]) -> dict[str, str]:
        return _appended(self.build_options, base)

    def python_env(self, base: Mapping[str, str]) -> dict[str, str]:
        return _appended(self.python_options, base)

    def build_identity(self) -> dict[str, object]:
        """What of the sanitizer reaches the build (the build key includes it)."""
        return {"name": self.name, "c_flags": self.c_flags, "program_flags": self.program_flags,
                "program_flags_gcc": self.program_flags_gcc, "build_options": self.build_options}


def _appended(sets: OptionSets, base: Mapping[str, str]) -> dict[str, str]:
    return {name: ":".join(filter(None, [base.get(name, ""), _join_options(ours)])) for name, ours in sets.items()}


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    cmake: dict[str, str]  # common options, then the variant's
    c_flags: tuple[str, ...]  # its sanitizer's, then its own
    strip: bool
    sanitizer: Sanitizer | None
    forbidden: dict[str, str]  # option -> why it defeats this variant
    disk_mib: int  # what a build of it takes in the cache (build directory and prefix), with a margin

    @property
    def disk_bytes(self) -> int:
        return self.disk_mib << 20

    @property
    def sanitizer_name(self) -> str:
        return self.sanitizer.name if self.sanitizer else ""

    def build_identity(self) -> dict[str, object]:
        """What of the variant reaches the build beyond its options (the build key includes it)."""
        return {"name": self.name, "c_flags": self.c_flags, "strip": self.strip,
                "sanitizer": self.sanitizer.build_identity() if self.sanitizer else None}


# --- reading the tables -----------------------------------------------------------------------

_OPTIONS = Each(Each(str))  # VARIABLE = { option = "value" }
SANITIZER = Table({"description": str, "runtime": str, "options_env": str, "python": bool, "c_flags": [str],
                   "options": _OPTIONS},
                  {"program_flags": [str], "program_flags_gcc": [str], "no_aslr": bool, "build_options": _OPTIONS,
                   "python_options": _OPTIONS})
VARIANT = Table({"description": str, "cmake": Each(str), "strip": bool, "sanitizer": str},
                {"c_flags": [str], "forbidden": Each(str), "disk_mib": int})
SHIPPED = Table({"common": Table({"description": str, "cmake": Each(str)},
                                 {"required": Each(Table({"why": str, "fix": str}))}),
                 "variant": Each(VARIANT), "sanitizer": Each(SANITIZER),
                 "tls": Table({"lws_defaults": Each(str),
                               "backend": Each(Table({"description": str, "cmake": Each(str), "links": [str],
                                                      "debian": str}))})},
                {"line": [Table({"versions": str, "cmake": Each(str), "why": str})],
                 "tool": [Table({"tool": str, "at_least": str, "cmake": Each(str), "why": str})]})
EXTRA = Table({}, {"variant": Each(VARIANT), "sanitizer": Each(SANITIZER)})  # LWSBUILD_VARIANTS_FILE


@dataclass(frozen=True)
class _Tables:
    raw: dict[str, Any]  # variants.toml as read ([common], [[line]], [[tool]])
    variants: dict[str, dict[str, Any]]  # shipped tables, then the extra file's
    sanitizers: dict[str, dict[str, Any]]
    origin: dict[str, str]  # "variant.NAME" / "sanitizer.NAME" -> the file it comes from


@cache
def _load(extra: str) -> _Tables:
    shipped = load.read(load.resource("variants.toml"), SHIPPED, error=VariantsFileError)
    variants = dict(shipped["variant"])
    sanitizers = dict(shipped["sanitizer"])
    origin = {f"variant.{n}": "variants.toml" for n in variants} | {f"sanitizer.{n}": "variants.toml" for n in sanitizers}
    if extra:
        added = load.read(Path(extra), EXTRA, f"{VARIANTS_FILE_ENV}={extra}", error=VariantsFileError)
        for kind, into in (("variant", variants), ("sanitizer", sanitizers)):
            for name, table in dict(added.get(kind, {})).items():
                into[name] = table
                origin[f"{kind}.{name}"] = extra
    tables = _Tables(shipped, variants, sanitizers, origin)
    for kind, entries in (("sanitizer", sanitizers), ("variant", variants)):
        for name in entries:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise _bad(tables, kind, name, "has a name that is not lower-case letters, digits and '_' (it names "
                                               "wheels)")
    for name, entry in sanitizers.items():
        if entry["options_env"] not in entry["options"]:
            raise _bad(tables, "sanitizer", name, f"sets no [options.{entry['options_env']}] (its options_env)")
    for name, entry in variants.items():
        if entry["sanitizer"] and entry["sanitizer"] not in sanitizers:
            raise _bad(tables, "variant", name, f"names sanitizer {entry['sanitizer']!r}, which no [sanitizer.NAME] "
                                                f"table defines (known: {', '.join(sanitizers) or 'none'})")
    if DEFAULT not in variants:
        raise VariantsFileError(f"no [variant.{DEFAULT}] table: it is the default variant")
    return tables


def _bad(tables: _Tables, kind: str, name: str, what: str) -> VariantsFileError:
    return VariantsFileError(f"[{kind}.{name}] of {tables.origin[f'{kind}.{name}']} {what}")


def _tables() -> _Tables:
    return _load(os.environ.get(VARIANTS_FILE_ENV, ""))


def _data() -> dict[str, Any]:
    return _tables().raw


def names() -> list[str]:
    return list(_tables().variants)


def sanitizer(name: str) -> Sanitizer:
    entry = _tables().sanitizers.get(name)
    if entry is None:
        raise UnknownVariantError(f"unknown sanitizer {name!r} (known: {', '.join(_tables().sanitizers)})",
                                  hint="add a [sanitizer.NAME] table to variants.toml")
    return Sanitizer(name, entry["description"], entry["runtime"], entry["options_env"], entry["python"],
                     tuple(entry["c_flags"]), tuple(entry.get("program_flags", ())),
                     tuple(entry.get("program_flags_gcc", ())), bool(entry.get("no_aslr", False)),
                     entry["options"], entry.get("build_options", {}), entry.get("python_options", {}))


def get(name: str) -> Variant:
    entry = _tables().variants.get(name)
    if entry is None:
        raise UnknownVariantError(f"unknown variant {name!r} (known: {', '.join(names())})")
    used = sanitizer(entry["sanitizer"]) if entry["sanitizer"] else None
    c_flags = (*(used.c_flags if used else ()), *entry.get("c_flags", ()))
    # A variant without its own figure (one of LWSBUILD_VARIANTS_FILE) is given the largest shipped one.
    disk = entry.get("disk_mib") or max(int(v.get("disk_mib", 0)) for v in _data()["variant"].values())
    return Variant(name, entry["description"], {**_data()["common"]["cmake"], **entry["cmake"]}, c_flags,
                   entry["strip"], used, dict(entry.get("forbidden", {})), disk)


@dataclass(frozen=True)
class LineOptions(Record):
    """CMake options one range of releases (or a tool version) needs, with the reason."""

    applies_to: str  # "4.3.0 - 5.0.0" or "cmake >= 4.0"
    cmake: dict[str, str]
    why: str


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


@cache
def tool_version(tool: str) -> str:
    """`cmake --version`'s number, "" when the tool is missing (the build step says so itself)."""
    path = shutil.which(tool)
    if path is None:
        return ""
    first = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout.split("\n", 1)[0]
    match = re.search(r"(\d+(?:\.\d+)+)", first)
    return match.group(1) if match else ""


def line_options(version: str) -> tuple[LineOptions, ...]:
    """The release line's own options (variants.toml [[line]]) and the tools' ([[tool]])."""
    from lwsbuild.source import releases

    chosen = [LineOptions(entry["versions"], dict(entry["cmake"]), entry["why"])
              for entry in _data().get("line", []) if releases.in_range(entry["versions"], version)]
    for entry in _data().get("tool", []):
        found = tool_version(entry["tool"])
        if found and _key(found) >= _key(entry["at_least"]):
            chosen.append(LineOptions(f"{entry['tool']} >= {entry['at_least']} (found {found})", dict(entry["cmake"]),
                                      entry["why"]))
    return tuple(chosen)


def merged_line_options(version: str) -> dict[str, str]:
    return {name: value for entry in line_options(version) for name, value in entry.cmake.items()}


def parse_defines(items: list[str]) -> dict[str, str]:
    """`-D LWS_NAME=VALUE` strings → {name: value}; anything else is refused."""
    defines: dict[str, str] = {}
    for item in items:
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:  # argv bytes that are not UTF-8 arrive as surrogate escapes
            shown = item.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            raise BadDefineError(f"-D {shown} is not valid UTF-8",
                                 hint="pass lws options as -D LWS_NAME=VALUE in UTF-8 text") from None
        match = _DEFINE.match(item.strip())
        if not match:
            raise BadDefineError(f"-D {item!r} is not of the form LWS_NAME=VALUE")
        name, value = match.groups()
        if not value.isascii():
            raise BadDefineError(f"-D {name}={value!r}: the value is not ASCII (CMake compares option values "
                                 "byte for byte in ASCII, so a look-alike such as 'oﬀ' or 'falſe' would switch "
                                 "the option ON while reading as OFF)",
                                 hint="pass the value in ASCII: ON/OFF, TRUE/FALSE, 1/0 or a plain word")
        if _UNSAFE_VALUE.search(value):
            raise BadDefineError(f"-D {name}={value!r}: the value holds a control character or a ';' "
                                 "(CMake would read a ';' as a list separator)",
                                 hint="pass a value of printable characters without ';'")
        defines[name] = value
    return defines


def _ascii_upper(value: str) -> str:
    """Upper case as CMake folds it: ASCII letters only (str.upper() maps "ﬀ" to "FF" and "ſ" to "S")."""
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in value)


def cmake_truthy(value: str) -> bool:
    """Whether CMake takes `value` as ON in `if(VAR)` and `#cmakedefine` (anything not a false constant)."""
    return _ascii_upper(value) not in _CMAKE_FALSE and value != "NOTFOUND" and not value.endswith("-NOTFOUND")


@dataclass(frozen=True)
class TlsBackend:
    """A TLS backend lws can be built with (variants.toml [tls.backend.NAME])."""

    name: str
    description: str
    cmake: dict[str, str]  # the lws options that select it
    links: tuple[str, ...]  # libraries its shared library needs (DT_NEEDED without .so.N): libssl
    debian: str  # the Debian package with its development files ("" when there are none to install)


def tls_backends() -> tuple[TlsBackend, ...]:
    return tuple(TlsBackend(name, entry["description"], dict(entry["cmake"]), tuple(entry["links"]), entry["debian"])
                 for name, entry in _data()["tls"]["backend"].items())


def tls_backend(options: dict[str, str]) -> TlsBackend:
    """The backend a build with these lws options links: the one table whose options all hold (an
    option the build leaves unset has lws's default), compared as CMake's if() would."""
    effective = {**_data()["tls"]["lws_defaults"], **options}
    chosen = [backend for backend in tls_backends()
              if all(cmake_truthy(effective.get(name, "")) == cmake_truthy(value) for name, value in backend.cmake.items())]
    if len(chosen) != 1:  # variants.toml's tables must cover every choice exactly once (tests/test_link_tls.py)
        said = " ".join(f"{name}={effective[name]}" for name in _data()["tls"]["lws_defaults"])
        raise UsageError(f"the TLS options {said} select {len(chosen)} of lwsbuild's TLS backends, not one",
                         hint="make the [tls.backend.*] tables of lwsbuild/resources/variants.toml cover each choice once")
    return chosen[0]


def options_for(variant: Variant, defines: dict[str, str], version: str) -> dict[str, str]:
    """The variant's options, then the release line's (merged_line_options), then the user's on top,
    refusing combinations that defeat the purpose (the variant's `forbidden`) or that lwsbuild cannot
    do without (`required` of [common])."""
    for name, value in defines.items():
        required = _data()["common"].get("required", {}).get(name)
        if required is not None and not cmake_truthy(value):
            raise UsageError(f"-D {name}={value}: lwsbuild cannot build without it ({required['why']})",
                             hint=required["fix"])
        if name in variant.forbidden and cmake_truthy(value):
            raise UsageError(f"-D {name}={value} with --variant {variant.name}: {variant.forbidden[name]}",
                             hint=f"drop -D {name}, or choose another --variant")
        if name in variant.cmake and variant.cmake[name] != value and name != "LWS_MAX_SMP":
            progress.note(f"warning: -D {name}={value} overrides --variant {variant.name}'s {variant.cmake[name]}")
    options = {**variant.cmake, **merged_line_options(version), **defines}
    smp = options.get("LWS_MAX_SMP", "1")
    # ASCII digits only (str.isdigit() accepts "²"), no leading zero (C would read 010 as octal 8).
    if not re.fullmatch(r"0|[1-9][0-9]{0,3}", smp) or int(smp) > _MAX_SMP:
        raise UsageError(f"-D LWS_MAX_SMP={smp!r} is not a number of service threads from {_MIN_SMP} to {_MAX_SMP}",
                         hint=f"use LWS_MAX_SMP={variant.cmake['LWS_MAX_SMP']} (the default) or another whole "
                              f"number from {_MIN_SMP} to {_MAX_SMP} in ASCII digits")
    if int(smp) < _MIN_SMP:
        raise UsageError(f"-D LWS_MAX_SMP={smp} makes the library single-threaded: lws clamps count_threads "
                         "to it and compiles the context lock away",
                         hint=f"use LWS_MAX_SMP={variant.cmake['LWS_MAX_SMP']} (the default) or any value >= {_MIN_SMP}")
    return options
