"""Where lwsbuild's own files are: a source checkout, or the copies an installed wheel carries."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from lwsbuild.errors import NotACheckout

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # lwsbuild/ (this file is lwsbuild/common/paths.py)
CHECKOUT = PACKAGE_DIR.parent  # the checkout's top when running from one


def own_dir(name: str, marker: str) -> Path:
    """`name/` of a source checkout when it holds `marker`, else the copy inside the package."""
    checkout = CHECKOUT / name
    return checkout if (checkout / marker).is_file() else PACKAGE_DIR / name


def is_checkout() -> bool:
    """Running from a source checkout (pyproject.toml and the CMake project beside the package)."""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "cmake" / "CMakeLists.txt").is_file()


# What an installed lwsbuild's package holds besides its own code: not part of a new wheel's sources.
# (patches/ stays: lwsbuild code run from the staged copy during the build, the SBOM step, reads it.)
_NOT_PACKAGE_SOURCES = ("_native", "_project", "cmake", "__pycache__")


def stage_project(into: Path) -> Path:
    """A directory scikit-build-core can build a wheel from: the checkout itself, or, for an
    installed lwsbuild, `into` filled with the packaging metadata the wheel carries (_project/) and
    the package's own sources. The CMake project stays the installed one (cmake.source-dir is set to
    it), so a build directory configured by `lwsbuild build` is reused either way."""
    if is_checkout():
        return CHECKOUT
    metadata = PACKAGE_DIR / "_project"
    if not (metadata / "pyproject.toml").is_file():
        raise NotACheckout(f"{PACKAGE_DIR} carries no packaging metadata (_project/pyproject.toml)",
                           hint="reinstall lwsbuild from a wheel made by lwsbuild 0.1.0 or later, or run from a checkout")
    into.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(metadata / name, into / name)
    shutil.copytree(PACKAGE_DIR, into / "lwsbuild", ignore=shutil.ignore_patterns(*_NOT_PACKAGE_SOURCES))
    (into / "lwsbuild" / "_native").mkdir()
    shutil.copyfile(PACKAGE_DIR / "_native" / "__init__.py", into / "lwsbuild" / "_native" / "__init__.py")
    return into


def with_checkout_on_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this lwsbuild first on PYTHONPATH, for child Pythons that must import this code."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH", "")]))}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def expand_user(text: str | Path, what: str) -> Path:
    """`text` with a leading ~ or ~user expanded; a user that does not exist (pathlib raises
    RuntimeError) or a NUL byte (ValueError) is one UsageError line naming `what`."""
    from lwsbuild.errors import UsageError

    if "\0" in str(text):
        raise UsageError(f"{what} {str(text)[:120]!r} holds a NUL byte", hint="pass the path as it is spelled")
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise UsageError(f"{what} {str(text)[:120]!r}: no such user's home directory",
                         hint="spell the path out, or use ~/ for your own home") from None
