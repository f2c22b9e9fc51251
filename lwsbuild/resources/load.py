"""Every data file, read one way: TOML, bounded, checked against the shape its reader declares.

A shape is written with plain values:
  str, int, float, bool      a value of that type (a bool is not an int, an int is a float)
  [shape]                    an array of values of the shape
  Table(required, optional)  a table with these keys and no others
  Each(shape)                a table whose every value has the shape, under any key ([variant.NAME])
  object                     anything (free-form text tables)

A mismatch is one DataFileError line (a usage error: exit 2) naming the file, the table and the key,
never a KeyError deep inside a reader. The readers: releases.toml, variants.toml (and the file
LWSBUILD_VARIANTS_FILE names), profiles.toml, known_races.toml, cves.toml, verified.toml,
upstream_tests.toml here, and
patches/series.toml. What a shape cannot say (a variant naming an undefined sanitizer, overlapping
version ranges) stays with its reader, in the same one-line form.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwsbuild.common import bounded
from lwsbuild.errors import DataFileError

DIR = Path(__file__).resolve().parent
MAX_BYTES = 4 << 20  # the largest shipped file is some 160 KB; a user's file is read no further


@dataclass(frozen=True)
class Table:
    required: Mapping[str, Any]
    optional: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Each:
    value: Any


def resource(name: str) -> Path:
    """A data file shipped in lwsbuild/resources/."""
    return DIR / name


def read(path: Path, shape: Any, shown: str | None = None,
         error: type[DataFileError] = DataFileError) -> dict[str, Any]:
    """The TOML document at `path`, checked against `shape` (a Table or an Each); `shown` names it
    in errors (default: its file name)."""
    name = shown or path.name
    try:
        data = tomllib.loads(bounded.read_text(path, name, error, MAX_BYTES))
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{name} is not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{name} nests tables or arrays too deeply to be a data file") from None
    check(data, shape, name, (), error)
    return data


def _where(path: tuple[str, ...]) -> str:
    return ".".join(part if part.replace("_", "").replace("-", "").isalnum() or part.startswith("[") else f'"{part}"'
                    for part in path).replace(".[", "[") or "the top level"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", object: "a value"}


def _describe(shape: Any) -> str:
    if isinstance(shape, list):
        return "an array"
    if isinstance(shape, Table | Each):
        return "a table"
    return _NAMES.get(shape, str(shape))


def check(value: Any, shape: Any, name: str, path: tuple[str, ...],
          error: type[DataFileError] = DataFileError) -> None:
    """Raise `error` where `value` does not have `shape`."""
    if shape is object:
        return
    if isinstance(shape, Table):
        if not isinstance(value, dict):
            raise error(f"{name}: {_where(path)} is {_shown(value)}, expected a table")
        unknown = sorted(set(value) - set(shape.required) - set(shape.optional))
        if unknown:
            known = ", ".join(sorted({*shape.required, *shape.optional}))
            raise error(f"{name}: {_where(path)} has an unknown key {unknown[0]!r} (known: {known})")
        missing = [key for key in shape.required if key not in value]
        if missing:
            raise error(f"{name}: {_where(path)} lacks the key {missing[0]!r}")
        for key, item in value.items():
            check(item, {**shape.required, **shape.optional}[key], name, (*path, key), error)
    elif isinstance(shape, Each):
        if not isinstance(value, dict):
            raise error(f"{name}: {_where(path)} is {_shown(value)}, expected a table")
        for key, item in value.items():
            check(item, shape.value, name, (*path, key), error)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise error(f"{name}: {_where(path)} is {_shown(value)}, expected an array")
        for index, item in enumerate(value, 1):
            # An item with an id is named by it: fix[id=0004], not fix[5].
            label = f"[id={item['id']}]" if isinstance(item, dict) and isinstance(item.get("id"), str) else f"[{index}]"
            check(item, shape[0], name, (*path, label), error)
    else:
        ok = isinstance(value, shape) and (shape is bool or not isinstance(value, bool))
        if shape is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise error(f"{name}: {_where(path)} is {_shown(value)}, expected {_describe(shape)}")
