"""Assertions shared by the CLI tests."""

from __future__ import annotations

from typing import Protocol


class _Result(Protocol):
    @property
    def stderr(self) -> str: ...  # read-only: frozen results (conftest.CliResult) qualify too


def error_line(result: _Result) -> str:
    """A failure's one line: stderr is exactly one line, and it is lwsbuild's error line."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("lwsbuild: error: "), lines[0]
    return lines[0]
