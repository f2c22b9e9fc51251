"""External programs lwsbuild runs: found once, or a one-line error saying what to install."""

from __future__ import annotations

import shutil
from functools import cache

from .errors import ToolMissing

# Debian package that provides each program (the machines here and in CI are Debian).
_PACKAGES = {"git": "git", "cmake": "cmake", "ninja": "ninja-build", "apt-get": "apt", "readelf": "binutils"}


@cache
def require(program: str, needed_for: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise ToolMissing(f"{program} is not installed, and {needed_for} needs it",
                          hint=f"apt-get install {_PACKAGES.get(program, program)}")
    return path
