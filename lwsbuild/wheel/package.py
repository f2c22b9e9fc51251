"""Install → wheel: package a cached build with scikit-build-core, repair it, refuse path leaks.

The wheel is made by the project's own backend (scikit-build-core, `build_wheel` run from the
checkout, or for an installed lwsbuild from the packaging metadata it carries: paths.stage_project) so `lwsbuild wheel` and `pip wheel .` package the same way. It is pointed at the build's
cached build directory and at a spec written for this build (config-setting `lwsbuild.spec`), so a
wheel after a build reconfigures but compiles nothing. Its version and Summary name the build
(`wheelmeta.Identity`); release wheels are repaired by auditwheel, sanitizer wheels are not
(`provenance.repair_policy` says why, and the provenance inside the wheel records it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwsbuild.build import cmake as build
from lwsbuild.build.cmake import Install
from lwsbuild.build.provenance import RepairPolicy, repair_policy
from lwsbuild.build.variants import Sanitizer
from lwsbuild.common import cache, manifest, prefix, progress
from lwsbuild.common.paths import CHECKOUT, sha256_file, stage_project, with_checkout_on_path
from lwsbuild.errors import PathInWheel, WheelError, WheelToolMissing
from lwsbuild.wheel import reproducible
from lwsbuild.wheel.meta import SPEC_ENV, Identity

# Runs in a child process with the project (checkout or staged copy) as working directory:
# scikit-build-core's hooks read pyproject.toml from there.
_BUILD_WHEEL = "import json, sys; from scikit_build_core.build import build_wheel; " \
               "build_wheel(sys.argv[1], json.loads(sys.argv[2]))"


@dataclass(frozen=True)
class Wheel:
    path: Path
    install: Install
    identity: Identity
    policy: RepairPolicy
    platform_tag: str  # manylinux_2_34_x86_64 after repair, linux_x86_64 without
    source_paths: tuple[str, ...]  # sanitizer binaries naming their sources by absolute path (see below)

    def to_json(self) -> dict[str, Any]:
        return {"wheel": str(self.path), "name": self.path.name, **self.identity.to_json(),
                "variant": self.install.spec.variant.name, "marks": self.install.spec.prepared.marks,
                "platform_tag": self.platform_tag, "repair": self.policy.to_json(),
                "source_paths": list(self.source_paths),
                "sha256": sha256_file(self.path), "build": self.install.to_json()}


def _cmake_cache_value(build_dir: Path, name: str) -> str | None:
    try:
        text = (build_dir / "CMakeCache.txt").read_text(errors="replace")
    except OSError:
        return None
    prefix = f"{name}:"
    for line in text.splitlines():
        if line.startswith(prefix):
            return line.split("=", 1)[1]
    return None


def _reusable(build_dir: Path) -> bool:
    """A build dir configured from this checkout's project (a cache may be shared by checkouts)."""
    home = _cmake_cache_value(build_dir, "CMAKE_HOME_DIRECTORY")
    return home is not None and Path(home).resolve() == build.PROJECT_DIR.resolve()


def require_tools(sanitizer: Sanitizer | None) -> None:
    """Fail before any build if a packaging tool the variant needs is missing."""
    import importlib.util

    if importlib.util.find_spec("scikit_build_core") is None:
        raise WheelToolMissing("scikit-build-core is not installed", hint="pip install 'scikit-build-core>=1.1,<2'")
    if repair_policy(sanitizer).repair:
        if importlib.util.find_spec("auditwheel") is None:
            raise WheelToolMissing("auditwheel is not installed: release wheels are repaired to a manylinux tag")
        if shutil.which("patchelf") is None:
            raise WheelToolMissing("patchelf is not on PATH: auditwheel needs it")


def _one_wheel(directory: Path, log: Path) -> Path:
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise WheelError(f"{len(wheels)} wheels in {directory}, expected one; full log: {log}")
    return wheels[0]


def _env(install: Install, spec_file: Path, tmp: Path, generator: str | None) -> dict[str, str]:
    # SOURCE_DATE_EPOCH (the pinned release's date) also dates every member of the zip.
    env = build.cmake_env(install.spec)  # constructed: no SKBUILD_*, CMAKE_* or compiler variable reaches it
    env[SPEC_ENV] = str(spec_file)
    env = with_checkout_on_path(env)
    # scikit-build-core stages the wheel in a temporary directory: keep it under ours, a path the
    # leak check knows.
    env["TMPDIR"] = str(tmp)
    if generator:
        env["CMAKE_GENERATOR"] = generator  # reusing a build dir needs its generator
    return env


def _package(install: Install, tmp: Path, log: Path) -> Path:
    """Run scikit-build-core on the cached build; return the unrepaired wheel."""
    spec_dir = tmp / "spec"
    spec_file = build.write_spec(install.spec, spec_dir)
    reuse = _reusable(install.build_dir)
    if not reuse:
        progress.note(f"{install.build_dir} was not configured from this checkout: building the wheel from scratch")
    build_dir = install.build_dir if reuse else tmp / "build"
    generator = _cmake_cache_value(build_dir, "CMAKE_GENERATOR") if reuse else None
    # The CMake project is always the one `lwsbuild build` configures (absolute source dir), so its
    # build directory is reused whether the metadata comes from a checkout or a staged copy.
    settings = {"build-dir": str(build_dir), "cmake.source-dir": str(build.PROJECT_DIR),
                "cmake.define.CMAKE_C_COMPILER": install.spec.compiler.path}
    project = stage_project(tmp / "project")
    out = tmp / "raw"
    out.mkdir()
    with cache.lock(install.build_dir):  # another wheel run must not reconfigure the same directory
        build.run_logged("packaging with scikit-build-core",
                         [sys.executable, "-c", _BUILD_WHEEL, str(out), json.dumps(settings)],
                         log, _env(install, spec_file, tmp, generator), project, WheelError,
                         "read the log; `lwsbuild build` with the same options shows build errors first")
    return _one_wheel(out, log)


def _repair(raw: Path, policy: RepairPolicy, tmp: Path, log: Path, env: dict[str, str]) -> Path:
    out = tmp / "repaired"
    build.run_logged("repairing with auditwheel",
                     [sys.executable, "-m", "auditwheel", *policy.auditwheel_args(raw, out)],
                     log, env, tmp, WheelError, "read the log; auditwheel names the library it could not place")
    return _one_wheel(out, log)


# GCC 12 writes each source file's name as given on the command line (CMake gives absolute paths)
# into ASan's global descriptors and UBSan's source locations, and -ffile-prefix-map does not reach
# them. So a sanitizer build's binaries name the cache directory they were built in: tolerated there
# (they are debugging builds for this machine), reported, and never tolerated in any other member.
_SANITIZER_BINARIES = (prefix.in_wheel("lib/libwebsockets.so."), prefix.in_wheel("bin/"))


def _check_paths(wheel: Path, install: Install, needles: list[Path]) -> tuple[str, ...]:
    leaks = reproducible.find_paths(wheel, needles)
    sanitizer = bool(install.spec.variant.sanitizer)
    tolerated = [m for m, _ in leaks if sanitizer and m.startswith(_SANITIZER_BINARIES)]
    fatal = [(m, p) for m, p in leaks if m not in tolerated]
    if fatal:
        member, path = fatal[0]
        raise PathInWheel(f"{wheel.name}: {member} contains the build-machine path {path}"
                          + (f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""))
    return tuple(sorted(set(tolerated)))


def platform_tag(wheel: Path) -> str:
    return wheel.stem.rsplit("-", 1)[-1]


_NATIVE_OWN = ("__init__.py",)  # the package's own file there, not the build's


def prefix_differences(wheel: Path, root: Path) -> list[str]:
    """How the wheel's copy of the install differs from the (checked) cached prefix: it is packaged
    from the cached build directory, which no manifest covers, so the bytes are compared."""
    with zipfile.ZipFile(wheel) as archive:
        held: manifest.Manifest = {
            info.filename.removeprefix(prefix.WHEEL_ROOT): ["file", 0, 0, 0, hashlib.sha256(archive.read(info)).hexdigest()]
            for info in archive.infolist()
            if info.filename.startswith(prefix.WHEEL_ROOT) and not info.is_dir()
            and info.filename.removeprefix(prefix.WHEEL_ROOT) not in _NATIVE_OWN}
    files = {name: ["file", 0, 0, 0, entry[4]] for name, entry in manifest.take(root).items() if entry[0] == "file"}
    return manifest.compare(files, held)


def _made(install: Install, tmp: Path, log: Path, policy: RepairPolicy) -> Path:
    tmp.mkdir()
    wheel = _package(install, tmp, log)
    if policy.repair:
        wheel = _repair(wheel, policy, tmp, log, build.cmake_env(install.spec))
    return wheel


def build_wheel(install: Install, out_dir: Path) -> Wheel:
    """The wheel of a finished build, in `out_dir` (replacing one of the same name). It must hold the
    build's prefix byte for byte; when a cached build directory gave other bytes, the build is made
    again from scratch, once."""
    spec = install.spec
    policy = repair_policy(spec.variant.sanitizer)
    require_tools(spec.variant.sanitizer)
    identity = Identity.of_provenance(spec.provenance())
    with cache.scratch("wheel") as tmp:
        log = install.build_dir.parent / "wheel.log"
        log.write_text("")
        wheel = _made(install, tmp / "first", log, policy)
        differences = prefix_differences(wheel, install.prefix)
        if differences and install.cached:
            progress.note(f"the wheel packaged from the cached build {install.build_dir.parent} differs from its "
                          f"prefix ({manifest.summary(differences)}): building it again")
            build.discard(install)
            install = build.build(spec)
            log.write_text("")
            wheel = _made(install, tmp / "again", log, policy)
            differences = prefix_differences(wheel, install.prefix)
        if differences:
            raise WheelError(f"{wheel.name} does not hold the build's prefix: {manifest.summary(differences)}",
                             hint="report it: the packaging step rebuilt something else than the build; "
                                  f"the log is {log}", log=log)
        source_paths = _check_paths(wheel, install, [cache.root(), CHECKOUT, tmp, install.build_dir])
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir.resolve() / wheel.name
        shutil.copyfile(wheel, final.with_name(f".{final.name}.tmp"))
        os.replace(final.with_name(f".{final.name}.tmp"), final)
    return Wheel(final, install, identity, policy, platform_tag(final), source_paths)
