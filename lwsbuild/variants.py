"""Build variants (variants.toml) and the user's -D LWS_* options, validated together."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from . import progress
from .errors import BadDefineError, UnknownVariantError, UsageError

DEFAULT = "release"  # the variant of a build that names none (variants.toml must define it)
_DEFINE = re.compile(r"^(LWS_[A-Z0-9_]+)=(.*)$", re.DOTALL)
_MIN_SMP = 2
_MAX_SMP = 1024  # lws sizes per-thread arrays in every context by it: more only wastes memory
# Characters a value may not hold: it is written into the CMake spec file and the CMake cache, where
# a control character (a newline ends the line) or a `;` (CMake's list separator: one value
# would become several) changes what lws is configured with.
_UNSAFE_VALUE = re.compile(r"[\x00-\x1f\x7f;]")
# CMake's false constants for a variable's value (cmValue::IsOff): these, in any case, and "" ...
_CMAKE_FALSE = frozenset({"0", "OFF", "NO", "FALSE", "N", "IGNORE", ""})
# ... and NOTFOUND / *-NOTFOUND, in upper case only (measured with cmake 3.25: "x-notfound" is ON).
# lws tests its options as `if(LWS_WITH_X)` and `#cmakedefine`, which take every other value as ON:
# "2", "0.0", "-0", "maybe". The guard decides truth exactly as CMake will, or a forbidden option
# slips through.


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    cmake: dict[str, str]  # common options, then the variant's
    c_flags: tuple[str, ...]
    strip: bool
    sanitizer: str  # "" | "address" | "thread"
    forbidden: dict[str, str]  # option -> why it defeats this variant


@cache
def _data() -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("variants.toml").read_text())


def names() -> list[str]:
    return list(_data()["variant"])


def get(name: str) -> Variant:
    entry = _data()["variant"].get(name)
    if entry is None:
        raise UnknownVariantError(f"unknown variant {name!r} (known: {', '.join(names())})")
    return Variant(name, entry["description"], {**_data()["common"]["cmake"], **entry["cmake"]},
                   tuple(entry["c_flags"]), entry["strip"], entry["sanitizer"], dict(entry["forbidden"]))


@dataclass(frozen=True)
class LineOptions:
    """CMake options one range of releases (or a tool version) needs, with the reason."""

    applies_to: str  # "4.3.0 - 5.0.0" or "cmake >= 4.0"
    cmake: dict[str, str]
    why: str

    def to_json(self) -> dict:
        return {"applies_to": self.applies_to, "cmake": self.cmake, "why": self.why}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _covers(versions: str, version: str) -> bool:
    low, _, high = versions.partition(" - ")
    try:
        return _key(low) <= _key(version) <= _key(high or low)
    except ValueError:
        return False


@cache
def tool_version(tool: str) -> str:
    """`cmake --version`'s number, "" when the tool is missing (the build step says so itself)."""
    path = shutil.which(tool)
    if path is None:
        return ""
    first = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split("\n", 1)[0]
    match = re.search(r"(\d+(?:\.\d+)+)", first)
    return match.group(1) if match else ""


def line_options(version: str) -> tuple[LineOptions, ...]:
    """The release line's own options (variants.toml [[line]]) and the tools' ([[tool]])."""
    chosen = [LineOptions(entry["versions"], dict(entry["cmake"]), entry["why"])
              for entry in _data().get("line", []) if _covers(entry["versions"], version)]
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
        if _UNSAFE_VALUE.search(value):
            raise BadDefineError(f"-D {name}={value!r}: the value holds a control character or a ';' "
                                 "(CMake would read a ';' as a list separator)",
                                 hint="pass a value of printable characters without ';'")
        defines[name] = value
    return defines


def cmake_truthy(value: str) -> bool:
    """Whether CMake takes `value` as ON in `if(VAR)` and `#cmakedefine` (anything not a false constant)."""
    return value.upper() not in _CMAKE_FALSE and value != "NOTFOUND" and not value.endswith("-NOTFOUND")


def options_for(variant: Variant, defines: dict[str, str], version: str) -> dict[str, str]:
    """The variant's options, then the release line's (merged_line_options), then the user's on top,
    refusing combinations that defeat the purpose."""
    for name, value in defines.items():
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
