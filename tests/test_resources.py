"""Every data file is read one way (resources/load.py): a mistake in any of them is one usage-error
line naming the file, the table and the key, and a hostile file is refused before it is parsed."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from helpers.checks import error_line
from lwsbuild.build import variants
from lwsbuild.errors import DataFileError
from lwsbuild.resources import load
from lwsbuild.resources.load import Each, Table
from lwsbuild.series import cves, fixes, verified
from lwsbuild.source import releases
from lwsbuild.stress import known_races, profiles
from lwsbuild.upstream import suite

# Each shipped data file with the shape its reader declares.
SHAPES: dict[str, Any] = {
    "releases.toml": releases.SHAPE,
    "variants.toml": variants.SHIPPED,
    "known_races.toml": known_races.SHAPE,
    "cves.toml": cves.SHAPE,
    "verified.toml": verified.SHAPE,
    "profiles.toml": profiles.shape(),
    "upstream_tests.toml": suite.SHAPE,
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shipped_data_file_has_its_declared_shape(name: str) -> None:
    assert load.read(load.resource(name), SHAPES[name])
    assert sorted(p.name for p in load.DIR.glob("*.toml")) == sorted(SHAPES)  # no file without a shape


def test_the_series_has_its_declared_shape() -> None:
    assert load.read(fixes.series_dir() / "series.toml", fixes.SHAPE)


def _after_first_table(text: str) -> int:
    """The index of the line after the first table header of a TOML text."""
    lines = text.splitlines()
    return 1 + next(i for i, line in enumerate(lines) if re.match(r"\s*\[\[?[^\]]+\]\]?\s*$", line))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_typo_in_any_data_file_names_file_table_and_key(name: str, tmp_path: Path) -> None:
    text = load.resource(name).read_text()
    after = _after_first_table(text)
    lines = text.splitlines()
    lines.insert(after, 'colour = "red"  # a key no reader knows')
    broken = tmp_path / name
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError) as caught:
        load.read(broken, SHAPES[name])
    line = caught.value.one_line()
    assert line.startswith(f"{name}: ") and "has an unknown key 'colour'" in line and "(fix: " in line, line
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("value, shape, message", [
    ({"a": 1}, Table({"a": str}), "x.toml: a is 1, expected a string"),
    ({"a": True}, Table({"a": int}), "x.toml: a is True, expected an integer"),
    ({"a": 1}, Table({"a": float}), None),
    ({}, Table({"a": str}), "x.toml: the top level lacks the key 'a'"),
    ({"t": {"n": {"k": [1]}}}, Table({"t": Each(Table({"k": [str]}))}), "x.toml: t.n.k[1] is 1, expected a string"),
    ({"t": {"4.3.5": {"k": 1}}}, Table({"t": Each(Table({"k": str}))}), 'x.toml: t."4.3.5".k is 1, expected a string'),
    ({"l": [{"id": "0004", "k": "v"}]}, Table({"l": [Table({"id": str})]}), "x.toml: l[id=0004] has an unknown key 'k' (known: id)"),
    ({"a": "x"}, Table({"a": [str]}), "x.toml: a is 'x', expected an array"),
    ({"a": {"b": 1}}, Table({"a": object}), None),
])
def test_the_shape_check_names_where(value: dict[str, Any], shape: Any, message: str | None) -> None:
    if message is None:
        load.check(value, shape, "x.toml", ())
        return
    with pytest.raises(DataFileError) as caught:
        load.check(value, shape, "x.toml", ())
    assert str(caught.value) == message


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge", "deep", "binary", "directory"])
def test_a_hostile_variants_file_is_one_line_and_does_not_hang(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "variants-extra.toml"
    if kind == "fifo":
        os.mkfifo(path)  # opening it would wait for a writer forever
    elif kind == "dev-zero":
        path = Path("/dev/zero")  # reading it would never end
    elif kind == "huge":
        path.write_text("# x\n" * (2 << 20))
    elif kind == "deep":
        path.write_text("a = " + "[" * 200_000 + "]" * 200_000 + "\n")
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe[variant.x]\n")
    else:
        path.mkdir()
    result = run_cli("variants", env={variants.VARIANTS_FILE_ENV: str(path)}, timeout=60)
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert f"LWSBUILD_VARIANTS_FILE={path}" in line and "(fix: " in line and "Traceback" not in result.stderr
