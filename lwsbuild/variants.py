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

_DEFINE = re.compile(r"^(LWS_[A-Z0-9_]+)=(.*)$")
_MIN_SMP = 2


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
        match = _DEFINE.match(item.strip())
        if not match:
            raise BadDefineError(f"-D {item!r} is not of the form LWS_NAME=VALUE")
        defines[match.group(1)] = match.group(2)
    return defines


def _truthy(value: str) -> bool:
    return value.strip().upper() in {"ON", "1", "YES", "TRUE", "Y"}


def options_for(variant: Variant, defines: dict[str, str], version: str) -> dict[str, str]:
    """The variant's options, then the release line's (merged_line_options), then the user's on top,
    refusing combinations that defeat the purpose."""
    for name, value in defines.items():
        if name in variant.forbidden and _truthy(value):
            raise UsageError(f"-D {name}={value} with --variant {variant.name}: {variant.forbidden[name]}",
                             hint=f"drop -D {name}, or choose another --variant")
        if name in variant.cmake and variant.cmake[name] != value and name != "LWS_MAX_SMP":
            progress.note(f"warning: -D {name}={value} overrides --variant {variant.name}'s {variant.cmake[name]}")
    options = {**variant.cmake, **merged_line_options(version), **defines}
    smp = options.get("LWS_MAX_SMP", "1")
    if not smp.isdigit() or int(smp) < _MIN_SMP:
        raise UsageError(f"-D LWS_MAX_SMP={smp} makes the library single-threaded: lws clamps count_threads "
                         "to it and compiles the context lock away",
                         hint=f"use LWS_MAX_SMP={variant.cmake['LWS_MAX_SMP']} (the default) or any value >= {_MIN_SMP}")
    return options
