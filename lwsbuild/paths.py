"""Where lwsbuild's own files are: a source checkout, or the copies an installed wheel carries."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT = PACKAGE_DIR.parent  # the checkout's top when running from one


def own_dir(name: str, marker: str) -> Path:
    """`name/` of a source checkout when it holds `marker`, else the copy inside the package."""
    checkout = CHECKOUT / name
    return checkout if (checkout / marker).is_file() else PACKAGE_DIR / name


def with_checkout_on_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this lwsbuild first on PYTHONPATH, for child Pythons that must import this code."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH", "")]))}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
