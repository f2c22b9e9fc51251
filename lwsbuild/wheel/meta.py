"""What a wheel is: its version label, Summary and repair policy, from the build it holds.

One function computes a wheel's identity from the facts of its build (`Identity.of_provenance`),
and three callers use it:
  * scikit-build-core: this module is the project's metadata provider for `version` and
    `description` (pyproject.toml, `tool.scikit-build.metadata`), so `lwsbuild wheel`,
    `pip wheel .` and `pip install .` all name a wheel by what it holds;
  * the CMake project, which runs `python -m lwsbuild.wheel.meta check VERSION PROVENANCE` under
    scikit-build-core and refuses to build anything else than what the chosen name says (the name
    is fixed before CMake runs; see `check`);
  * `BuildSpec.provenance()`, which records the repair policy of the variant.

The repair policy is applied by one command line (`RepairPolicy.auditwheel_args`): `lwsbuild wheel`
runs it, and so does cibuildwheel through `python -m lwsbuild.wheel.meta repair WHEEL DEST_DIR`
(pyproject.toml [tool.cibuildwheel]), which reads the policy the wheel's own provenance.json records.

Only the standard library and lwsbuild's data modules are imported here: the provider runs inside
pip's isolated build environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwsbuild import __version__
from lwsbuild.build import environment, provenance
from lwsbuild.build.provenance import Provenance
from lwsbuild.common import bounded, prefix

__all__ = ["dynamic_metadata", "main"]  # the public surface (lwsbuild/__init__.py)

# The environment variable of the declared config-setting `lwsbuild.spec` (pyproject.toml): a spec
# written by lwsbuild. scikit-build-core hands config-settings to CMake but not to metadata
# providers, so the provider reads the spec through the variable the setting declares.
SPEC_ENV = "LWSBUILD_SPEC"

SUMMARY = ("A reproducible, verifiably fixed libwebsockets: pinned sources, the SMP client fix series, "
           "sanitizer builds, wheels and a stress proof.")


def _segment(text: str) -> str:
    """A PEP 440 local version segment: lower-case letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", text.lower()) or "x"


@dataclass(frozen=True)
class Identity:
    lws_version: str
    variant: str
    series: str
    unfixed: bool
    unpinned: bool
    options_digest: str  # of the -D options beyond the variant's own; "" if none
    no_fix: bool = False  # the series selects no fix (provenance mark NO-FIX)

    @classmethod
    def of_provenance(cls, described: Provenance) -> Identity:
        extra = described.extra_options
        digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:8] if extra else ""
        return cls(described.lws.version, described.variant, described.series, described.unfixed,
                   described.lws.unpinned, digest, "NO-FIX" in described.marks)

    @classmethod
    def default(cls, variant: str) -> Identity:
        """What the CMake project builds when no spec is given: the default pin, fixed, all patches."""
        from lwsbuild.source import releases

        return cls(releases.default_version(), variant, "all", False, False, "")

    @property
    def local(self) -> str:
        """e.g. lws4.3.5, lws4.3.5.asan, lws4.3.5.unfixed.tsan, lws4.3.5.seed.d1a2b3c4.unpinned"""
        parts = [f"lws{self.lws_version}"]
        if self.unfixed:
            parts.append("unfixed")  # --unfixed ignores the series: it reverts every fix
        elif self.series != "all":
            parts.append(_segment(self.series))
        if self.variant != "release":
            parts.append(_segment(self.variant))
        if self.options_digest:
            parts.append(f"d{self.options_digest}")
        if self.unpinned:
            parts.append("unpinned")
        return ".".join(parts)

    @property
    def version(self) -> str:
        return f"{__version__}+{self.local}"

    @property
    def summary(self) -> str:
        build = f"libwebsockets {self.lws_version} ({self.variant}"
        build += f", -D options {self.options_digest})" if self.options_digest else ")"
        if self.unpinned:
            build = f"UNPINNED {build}"
        if self.unfixed:
            return (f"UNFIXED, DO NOT SHIP: {build} with the multi-threaded client heap-use-after-free "
                    "left in on purpose, to reproduce the bug.")
        if self.no_fix:
            return (f"NO FIX, DO NOT SHIP: {build} built with fix series '{self.series}', which selects no "
                    "fix: the tree as its source gave it, with whatever defects the release has.")
        series = "all fixes" if self.series == "all" else f"fix series '{self.series}'"
        return f"{build}, {series}. {SUMMARY}"

    def to_json(self) -> dict[str, str]:
        return {"version": self.version, "local": self.local, "summary": self.summary}


def spec_provenance(spec_file: Path) -> Provenance:
    """The provenance of a spec written by lwsbuild (build.write_spec puts it beside the spec)."""
    return provenance.read(provenance.beside(spec_file))


def _identity() -> Identity:
    spec = os.environ.get(SPEC_ENV)
    if spec:
        return Identity.of_provenance(spec_provenance(Path(spec)))
    # scikit-build-core run without lwsbuild's backend and without a spec: the CMake project then
    # plans the default build itself (python -m lwsbuild.request --write-spec, release).
    return Identity.default("release")


def dynamic_metadata(field: str, settings: Mapping[str, Any] | None = None,
                     project: Mapping[str, Any] | None = None) -> str:
    """scikit-build-core's provider hook. The build is the one the spec in LWSBUILD_SPEC describes:
    lwsbuild's backend (lwsbuild/wheel/backend.py) writes it from the -C lwsbuild.* settings."""
    if settings:
        raise RuntimeError(f"lwsbuild.wheel.meta takes no settings (the spec names the build), not {sorted(settings)}")
    identity = _identity()
    if field == "version":
        return identity.version
    if field == "description":
        return identity.summary
    raise RuntimeError(f"lwsbuild.wheel.meta provides version and description, not {field!r}")


def check(version: str, provenance_file: Path) -> str | None:
    """Why a wheel named `version` must not hold the build `provenance_file` describes, or None."""
    identity = Identity.of_provenance(provenance.read(provenance_file))
    if version == identity.version:
        return None
    return (f"the wheel is named {version} but this build is {identity.version} "
            f"(libwebsockets {identity.lws_version}, variant {identity.variant}"
            f"{', UNFIXED' if identity.unfixed else ''}); the name is chosen before CMake runs")


WHEEL_PROVENANCE = prefix.in_wheel(prefix.PROVENANCE)


def repair(wheel: Path, out_dir: Path) -> int:
    """Put `wheel` into `out_dir` as its recorded policy says: repaired by auditwheel (excluding what
    the policy takes from the system), or copied unchanged (a sanitizer build). Returns the exit code.

    The wheel's members are dated by SOURCE_DATE_EPOCH, here the pinned release's date as everywhere
    else, so a repaired wheel has the same bytes as `lwsbuild wheel`'s."""
    from lwsbuild.errors import ProvenanceError

    with bounded.open_zip(wheel, str(wheel), ProvenanceError) as archive:
        if WHEEL_PROVENANCE not in archive.names():
            raise ProvenanceError(f"{wheel} has no {WHEEL_PROVENANCE}",
                                  hint="repair only wheels built by lwsbuild (its backend or `lwsbuild wheel`)")
        data = archive.read(WHEEL_PROVENANCE)
    described = provenance.loads(data, f"{wheel}: {WHEEL_PROVENANCE}")
    policy = described.wheel
    out_dir.mkdir(parents=True, exist_ok=True)
    if not policy.repair:
        print(f"lwsbuild: {wheel.name}: {policy.reason}", file=sys.stderr)
        shutil.copyfile(wheel, out_dir / wheel.name)
        return 0
    # cibuildwheel's containers have auditwheel as a program; `lwsbuild wheel` has the Python package.
    program = shutil.which("auditwheel")
    command = [program] if program else [sys.executable, "-m", "auditwheel"]
    # A build step's environment (environment.py), as `lwsbuild wheel` repairs in: same command, same bytes.
    env = environment.construct(os.environ, SOURCE_DATE_EPOCH=str(described.source_date_epoch))
    return subprocess.run([*command, *policy.auditwheel_args(wheel, out_dir)], check=False,
                          env=env).returncode


_USAGE = ("usage: python -m lwsbuild.wheel.meta check VERSION PROVENANCE\n"
          "       python -m lwsbuild.wheel.meta repair WHEEL DEST_DIR")


def main(argv: list[str] | None = None) -> int:
    """`python -m lwsbuild.wheel.meta check VERSION PROVENANCE`: the CMake project's name check;
    `... repair WHEEL DEST_DIR`: cibuildwheel's repair-wheel-command."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in ("check", "repair"):
        print(_USAGE, file=sys.stderr)
        return 2
    from lwsbuild.errors import LwsbuildError, WheelNameMismatch

    try:
        if args[0] == "repair":
            return repair(Path(args[1]), Path(args[2]))
        problem = check(args[1], Path(args[2]))
    except LwsbuildError as exc:  # a provenance.json this lwsbuild cannot read
        return exc.report()
    return 0 if problem is None else WheelNameMismatch(problem).report()


if __name__ == "__main__":
    raise SystemExit(main())
