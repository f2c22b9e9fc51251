"""Records as JSON data, for every dataclass whose JSON form is its fields and nothing else.

Records whose JSON is shaped (renamed keys, derived values, empty as null) keep their own
`to_json`: those shapes are documented `--json` output. Standard library only: provenance,
which the wheel metadata provider reads inside pip's isolated environment, uses it.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePath
from typing import Any


def as_json(value: Any) -> Any:
    """`value` as JSON data: dataclasses to objects, tuples and lists to arrays, paths to strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: as_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    return value


class Record:
    """A dataclass mixin: `to_json()` is the record's fields, in declaration order, as JSON data."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = as_json(self)
        return data
