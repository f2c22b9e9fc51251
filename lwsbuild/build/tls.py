"""The TLS backend a build links, checked on the installed library.

The backend is chosen with lws's own options (`-D LWS_WITH_MBEDTLS=ON`, `-D LWS_WITH_SSL=OFF`);
variants.toml's [tls.backend.*] tables say which options select which backend and what its shared
library must link, and provenance.json records the choice as `tls` (variants.tls_backend). This
module makes that record true: `python -m lwsbuild.build.tls PREFIX` is an install step of the CMake
project (so `lwsbuild build` and `pip wheel .` both run it), and fails when the library does not
link the recorded backend's libraries or links another backend's (an option lws ignored, another
backend lwsbuild does not know, a dependency lws found somewhere else).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lwsbuild.build import provenance
from lwsbuild.build.variants import TlsBackend, tls_backends
from lwsbuild.common import prefix as layout
from lwsbuild.common import tools
from lwsbuild.errors import BUILD, BuildError, LwsbuildError

__all__ = ["check", "main"]  # the public surface (lwsbuild/__init__.py)

_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")


def needed(library: Path) -> tuple[str, ...]:
    """The library's DT_NEEDED entries (libssl.so.3, libc.so.6, ...), read with readelf."""
    readelf = tools.require("readelf", "the TLS backend check of the install step", BUILD)
    result = subprocess.run([readelf, "-d", "-W", str(library)], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"readelf could not read {library}: {result.stderr.strip()[:200]}",
                         hint="rebuild; the installed library is damaged")
    return tuple(_NEEDED.findall(result.stdout))


def _name(soname: str) -> str:
    """libssl.so.3 -> libssl: a backend names its libraries without the version."""
    return soname.split(".so", 1)[0]


def mismatch(backend: TlsBackend, sonames: Sequence[str]) -> str | None:
    """Why a library needing `sonames` does not link `backend` (None: it does)."""
    have = {_name(soname) for soname in sonames}
    missing = [name for name in backend.links if name not in have]
    foreign = sorted({name for other in tls_backends() if other.name != backend.name
                      for name in other.links if name in have and name not in backend.links})
    if not missing and not foreign:
        return None
    said = [f"lacks {', '.join(missing)}"] if missing else []
    said += [f"links {', '.join(foreign)} of another backend"] if foreign else []
    return f"{' and '.join(said)} (it needs: {', '.join(sonames) or 'nothing'})"


def check(root: Path) -> TlsBackend:
    """The installed prefix's library links the backend its provenance.json records, or BuildError."""
    recorded = provenance.read(root / layout.PROVENANCE)
    soname = json.loads((root / layout.LAYOUT).read_text())["soname"]
    wanted = recorded.tls.backend
    backend = next((b for b in tls_backends() if b.name == wanted), None)
    if backend is None:
        raise BuildError(f"provenance.json names the TLS backend {wanted!r}, which lwsbuild/resources/variants.toml does not "
                         "describe", hint="rebuild with this lwsbuild")
    library = root / "lib" / soname
    why = mismatch(backend, needed(library))
    if why is not None:
        known = ", ".join(b.name for b in tls_backends())
        raise BuildError(f"{soname} was to link the {backend.name} TLS backend but {why}",
                         hint=f"lwsbuild builds the TLS backends {known}: choose one with the -D options "
                              "lwsbuild/resources/variants.toml [tls.backend.*] lists, and install its development files")
    return backend


def main(argv: list[str] | None = None) -> int:
    """`python -m lwsbuild.build.tls PREFIX`: the install step's check (cmake/CMakeLists.txt)."""
    parser = argparse.ArgumentParser(prog="python -m lwsbuild.build.tls")
    parser.add_argument("prefix", type=Path, help="the install prefix being installed")
    args = parser.parse_args(argv)
    try:
        check(args.prefix)
    except (OSError, ValueError, KeyError) as exc:
        return BuildError(f"cannot check the TLS backend of {args.prefix}: {exc}",
                          hint="rebuild; the prefix's provenance.json and layout.json must be readable").report()
    except LwsbuildError as exc:
        return exc.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
