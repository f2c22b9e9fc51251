"""External programs lwsbuild runs: found once, or a one-line error saying what to install.

The caller names the pipeline stage that needs the program, so a missing one exits with that
stage's code (lwsbuild/errors.py's table): no cmake is a build failure, no git a patch failure.
"""

from __future__ import annotations

import shutil
from functools import cache

from lwsbuild.errors import ExitCode, ToolMissing

# Debian package that provides each program (the machines here and in CI are Debian).
_PACKAGES = {"git": "git", "cmake": "cmake", "ninja": "ninja-build", "apt-get": "apt", "readelf": "binutils", "gdb": "gdb"}


@cache
def require(program: str, needed_for: str, stage: ExitCode) -> str:
    """The path of `program`; ToolMissing with `stage`'s exit code when it is not on PATH."""
    path = shutil.which(program)
    if path is None:
        raise ToolMissing(f"{program} is not installed, and {needed_for} needs it",
                          hint=f"apt-get install {_PACKAGES.get(program, program)}", stage=stage)
    return path
