"""One conversion for records whose JSON form is their fields (lwsbuild/common/records.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lwsbuild.build.variants import LineOptions
from lwsbuild.common.records import Record, as_json
from lwsbuild.native.smoke import MessageResult, SmokeReport


@dataclass(frozen=True)
class _Inner(Record):
    name: str
    where: Path


@dataclass(frozen=True)
class _Outer(Record):
    items: tuple[_Inner, ...]
    table: dict[str, tuple[int, ...]]
    missing: str | None = None


def test_nested_records_become_plain_json_data_in_field_order() -> None:
    record = _Outer((_Inner("a", Path("/x/y")),), {"k": (1, 2)})
    assert record.to_json() == {"items": [{"name": "a", "where": "/x/y"}], "table": {"k": [1, 2]}, "missing": None}
    assert list(record.to_json()) == ["items", "table", "missing"]
    assert json.loads(json.dumps(record.to_json())) == record.to_json()


def test_as_json_leaves_scalars_and_classes_alone() -> None:
    assert as_json(3) == 3 and as_json("s") == "s" and as_json(None) is None
    assert as_json(_Inner) is _Inner  # a dataclass type is not a record


def test_the_records_using_it_keep_their_documented_shape() -> None:
    line = LineOptions("4.3.0 - 5.0.0", {"LWS_X": "ON"}, "why")
    assert line.to_json() == {"applies_to": "4.3.0 - 5.0.0", "cmake": {"LWS_X": "ON"}, "why": "why"}
    message = MessageResult("hello", "text", 5, True, 1.5, 1)
    report = SmokeReport(True, "ws://127.0.0.1:1/", "4.3.5", "release", {}, (message,), None, 2.0, "builtin")
    data = report.to_json()
    assert data["messages"] == [{"name": "hello", "kind": "text", "size": 5, "ok": True, "rtt_ms": 1.5, "chunks": 1, "error": None}]
    assert data["lws_log"] == [] and data["peer_close_code"] is None
