"""One exit-code table (lwsbuild/errors.py): every error class takes its code from it, docs/cli.md
carries it verbatim, and a missing program fails with the code of the stage that needed it.

Fast: nothing is built here (the builds that fail on purpose are in tests/test_build.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from lwsbuild import errors
from lwsbuild.common import tools


def test_the_docs_carry_the_table_errors_py_prints() -> None:
    printed = subprocess.run([sys.executable, "-m", "lwsbuild.errors"], capture_output=True, text=True, cwd=REPO,
                             check=True).stdout
    assert printed.strip() == errors.table()
    assert errors.table() in (REPO / "docs" / "cli.md").read_text(), \
        "docs/cli.md's exit-code table is stale: python -m lwsbuild.cli.tables write docs/cli.md"


def test_codes_are_unique_and_every_class_uses_one_of_them() -> None:
    codes = [entry.code for entry in errors.EXIT_CODES]
    assert len(codes) == len(set(codes)) and codes == sorted(codes) and codes[0] == 0
    names = [entry.name for entry in errors.EXIT_CODES]
    assert len(names) == len(set(names))
    for cls in errors.classes():
        assert cls.exit_code in codes[1:], f"{cls.__name__}: exit {cls.exit_code} is not in the table"
    assert errors.by_code(errors.BUILD.code) is errors.BUILD


def test_every_code_but_success_names_the_classes_that_use_it() -> None:
    rows = {int(row.split("|")[1]): row for row in errors.table().splitlines()[2:]}
    assert set(rows) == {entry.code for entry in errors.EXIT_CODES}
    for cls in errors.classes():
        if cls is errors.LwsbuildError or cls is errors.ToolMissing:
            continue
        # the class itself, or the parent it inherits its code from
        named = [c.__name__ for c in cls.__mro__ if c.__name__ in rows[cls.exit_code]]
        assert named, f"{cls.__name__} (exit {cls.exit_code}) is not covered by its row"
    for stage in errors.STAGES:
        assert "ToolMissing" in rows[stage.code]


@pytest.mark.parametrize("stage", errors.STAGES, ids=lambda stage: stage.name)
def test_a_missing_program_fails_with_the_code_of_the_stage_that_needed_it(stage: errors.ExitCode) -> None:
    with pytest.raises(errors.ToolMissing) as exc:
        tools.require("lwsbuild-no-such-program", f"the {stage.name} test", stage)
    assert exc.value.exit_code == stage.code and exc.value.stage is stage
    line = exc.value.one_line()
    assert "lwsbuild-no-such-program is not installed" in line and f"the {stage.name} test needs it" in line
    assert "(fix: apt-get install " in line


def test_tool_missing_refuses_a_code_that_is_no_stage() -> None:
    for code in (errors.OK, errors.USAGE, errors.DEFECT, errors.CACHE):
        with pytest.raises(ValueError, match="not a pipeline stage"):
            errors.ToolMissing("x is not installed", stage=code)


def test_the_tail_of_a_log_is_shown_with_its_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lwsbuild.common import entry

    log = tmp_path / "build.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    error = errors.BuildError(f"configure failed (line 99); full log: {log}", log=log)
    try:
        raise error
    except errors.BuildError as exc:
        assert entry.fail(exc, debug=False) == errors.BUILD.code
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"lwsbuild: the last 40 lines of {log}:"
    assert err[1:41] == [f"  | line {i}" for i in range(60, 100)]
    assert err[41] == f"lwsbuild: end of {log}"
    assert err[42].startswith("lwsbuild: error: configure failed") and len(err) == 43
