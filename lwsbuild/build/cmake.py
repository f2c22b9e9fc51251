"""BuildSpec → install prefix: configure, build and install the one CMake project, cached by key.

One build directory per key (prepared tree, series, variant, options, compiler, project files):
lws keeps options in its CMake cache across reconfigures, so variants never share a directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache as memoize
from pathlib import Path
from typing import Any

from lwsbuild import __version__
from lwsbuild.build import environment, harness, provenance
from lwsbuild.build.provenance import (
    CompilerRecord,
    LwsSource,
    Provenance,
    SanitizerRecord,
    TlsRecord,
    ToolsRecord,
    repair_policy,
)
from lwsbuild.build.variants import LineOptions, Variant, cmake_truthy, line_options, tls_backend, tool_version
from lwsbuild.common import cache, prefix, progress, tools
from lwsbuild.common.paths import PACKAGE_DIR, own_dir
from lwsbuild.errors import BuildError, CacheError, LwsbuildError, by_code
from lwsbuild.series.fixes import PreparedTree

HARNESS_DIR = PACKAGE_DIR / "build" / "harness"  # C sources of the probe and the stress harness
# What every install prefix holds: a cached prefix missing any of them (a file deleted by hand, a
# disk cleaner) is a broken entry, rebuilt rather than handed out. The shared library is expected
# under the SONAME layout.json records (it differs per release line), the static one when built.
PREFIX_FILES = (prefix.LAYOUT, prefix.PROVENANCE, prefix.STRESS_HARNESS)
# An installed wheel carries the project too, so an installed lwsbuild can build, stress and prove.
PROJECT_DIR = own_dir("cmake", "CMakeLists.txt")


@dataclass(frozen=True)
class Compiler:
    path: str
    version_line: str

    @property
    def version(self) -> str:
        return self.version_line.rsplit(" ", 1)[-1]

    def record(self) -> CompilerRecord:
        return CompilerRecord(self.path, self.version, self.version_line)

    def resolve(self, library: str) -> str:
        """The file this compiler links for `library` (`-print-file-name`), "" if it has none."""
        return _print_file_name(self.path, library)


@memoize
def _print_file_name(compiler_path: str, library: str) -> str:
    try:
        found = subprocess.run([compiler_path, f"-print-file-name={library}"], capture_output=True, text=True,
                               timeout=60, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    # Without the library gcc echoes the bare name back.
    return os.path.realpath(found) if os.path.isabs(found) and os.path.exists(found) else ""


@memoize
def compiler(name: str = "cc") -> Compiler:
    """The compiler `name` (the request's --cc/CC: a name on PATH or a path), resolved and asked for its version."""
    found = shutil.which(name)
    if found is None:
        raise BuildError(f"no C compiler: {name!r} is not on PATH", hint="install gcc, or pass --cc (or set CC)")
    # Asked by its real path: gcc names itself by argv[0] in --version, so `cc`, `gcc` and the path
    # would otherwise record three compilers (and three build keys) for one.
    path = os.path.realpath(found)
    try:
        lines = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                               check=False).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildError(f"the C compiler {path} cannot be run: {exc}", hint="pass --cc with a working compiler") from None
    if not lines:
        raise BuildError(f"{path} --version printed nothing: not a C compiler lwsbuild can record",
                         hint="pass --cc gcc or --cc clang")
    return Compiler(path, lines[0].strip())


@memoize
def project_digest() -> str:
    """Our own CMake/C files take part in the key: a harness change must rebuild."""
    files = [*PROJECT_DIR.glob("*.cmake"), PROJECT_DIR / "CMakeLists.txt", *HARNESS_DIR.glob("*.[ch]"),
             Path(harness.__file__)]  # the harness's flag table: its generated header
    digest = hashlib.sha256()
    # Named and ordered by folder and file only: a checkout and an installed wheel, whose folders
    # sit differently, give the same digest.
    for label, path in sorted((f"{path.parent.name}/{path.name}", path) for path in files):
        digest.update(label.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class BuildSpec:
    prepared: PreparedTree
    variant: Variant
    options: dict[str, str]  # every -D given to the lws configure
    c_flags: tuple[str, ...]  # the variant's, then the request's extra_c_flags
    compiler: Compiler = field(default_factory=compiler)
    # What the release line and the tools in use add (variants.toml [[line]] / [[tool]]), as planned.
    line_options: tuple[LineOptions, ...] = ()
    extra_c_flags: tuple[str, ...] = ()  # --extra-cflags / CFLAGS (already in c_flags)
    ld_flags: tuple[str, ...] = ()  # --extra-ldflags / LDFLAGS: every link of the project
    cmake_version: str = ""  # of the cmake on PATH, which configures and builds

    @property
    def key(self) -> str:
        identity = {
            "tree": self.prepared.tree_id, "series": self.prepared.series.name, "unfixed": self.prepared.unfixed,
            "unpinned": self.prepared.source.unpinned, "variant": self.variant.build_identity(), "options": self.options,
            "c_flags": self.c_flags, "ld_flags": self.ld_flags, "compiler": self.compiler.version_line,
            "compiler_path": self.compiler.path, "cmake": self.cmake_version,
            "project": project_digest(), "lwsbuild": __version__,
            "provenance_schema": provenance.SCHEMA,  # an entry's provenance.json must be readable
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]

    @property
    def extra_options(self) -> dict[str, str]:
        """The options the user set on top of the variant's and the release line's (-D): they name
        wheels and reports."""
        base = {**self.variant.cmake, **{k: v for entry in self.line_options for k, v in entry.cmake.items()}}
        return {k: v for k, v in self.options.items() if base.get(k) != v}

    @property
    def build_hash(self) -> str:
        """e.g. lwsbuild-asan-all, lwsbuild-asan-UNFIXED, lwsbuild-release-none-NO-FIX: what
        lws_get_library_version() shows."""
        what = "UNFIXED" if self.prepared.unfixed else self.prepared.series.name
        marks = [m for m in self.prepared.marks if m != "UNFIXED"]  # UNFIXED stands for the series name
        return "-".join(["lwsbuild", self.variant.name, what, *marks])

    @property
    def source_date_epoch(self) -> int:
        return self.prepared.source.release.source_date_epoch

    def provenance(self) -> Provenance:
        """What this build is: the one value provenance.json is written from."""
        release = self.prepared.source.release
        source = self.prepared.source
        sanitizer = self.variant.sanitizer
        return Provenance(
            schema=provenance.SCHEMA,
            lwsbuild_version=__version__,
            lws=LwsSource(release.version, release.tag, release.commit, source.tree_id, source.unpinned),
            series=self.prepared.series.name,
            unfixed=self.prepared.unfixed,
            marks=tuple(self.prepared.marks),
            patches=tuple(r.record() for r in self.prepared.results),
            prepared_tree_id=self.prepared.tree_id,
            variant=self.variant.name,
            # The runtime as this compiler links it: what the library will need preloaded.
            sanitizer=SanitizerRecord.of(sanitizer, self.compiler.resolve(sanitizer.runtime)) if sanitizer else None,
            cmake_options=dict(self.options),
            extra_options=self.extra_options,
            line_options=self.line_options,
            # The TLS backend the options select; the install step checks the library links it.
            tls=TlsRecord.of(tls_backend(self.options)),
            c_flags=self.c_flags,
            extra_c_flags=self.extra_c_flags,
            ld_flags=self.ld_flags,
            compiler=self.compiler.record(),
            tools=ToolsRecord(cmake=self.cmake_version),
            source_date_epoch=self.source_date_epoch,
            build_key=self.key,
            # Whether its wheel is repaired to a manylinux tag, and why (or why not).
            wheel=repair_policy(sanitizer),
        )

    def cmake_spec(self, provenance_path: Path) -> str:
        """The LWSBUILD_SPEC file the CMake project includes: every input, nothing else."""
        def q(value: object) -> str:
            return cmake_bracket(str(value))

        lines = [f"# generated by lwsbuild {__version__}: build key {self.key}",
                 f"set(LWSBUILD_LWS_SOURCE {q(self.prepared.path)})",
                 f"set(LWSBUILD_LWS_VERSION {q(self.prepared.source.release.version)})",
                 f"set(LWSBUILD_PROVENANCE {q(provenance_path)})",
                 f"set(LWSBUILD_HARNESS_DIR {q(HARNESS_DIR)})",
                 # What lwsbuild adds to the install prefix, and where (common/prefix.py).
                 f"set(LWSBUILD_SHARE_DIR {q(prefix.SHARE_DIR)})",
                 f"set(LWSBUILD_PROVENANCE_NAME {q(prefix.PROVENANCE_NAME)})",
                 f"set(LWSBUILD_LAYOUT_NAME {q(prefix.LAYOUT_NAME)})",
                 f"set(LWSBUILD_SBOM_NAME {q(prefix.SBOM_NAME)})",
                 # Written beside this file by write_spec (the harness's flags: build/harness.py).
                 f"set(LWSBUILD_HARNESS_FLAGS_H {q(provenance_path.with_name(harness.HEADER))})",
                 # The interpreter that runs lwsbuild also writes the SBOM at install time.
                 f"set(LWSBUILD_PYTHON {q(sys.executable)})",
                 f"set(LWSBUILD_SOURCE_DATE_EPOCH {self.source_date_epoch})",
                 f"set(LWSBUILD_STRIP {'ON' if self.variant.strip else 'OFF'})",
                 f"set(LWSBUILD_CCACHE {q(shutil.which('ccache') or '')})",
                 # A fixed build hash: lws would otherwise run `git describe` and record user@host.
                 # It ends up in lws_get_library_version(), so say what this build is.
                 f"set(LWS_BUILD_HASH {q(self.build_hash)} CACHE STRING \"\" FORCE)",
                 f"set(CMAKE_C_FLAGS {q(shlex.join(self.c_flags))} CACHE STRING \"\" FORCE)"]
        # Every link's flags, forced: nothing CMake took from the environment or an older cache stays.
        lines += [f"set(CMAKE_{kind}_LINKER_FLAGS {q(shlex.join(self.ld_flags))} CACHE STRING \"\" FORCE)"
                  for kind in ("EXE", "SHARED", "MODULE")]
        lines += [f"set({name} {q(value)} CACHE STRING \"\" FORCE)" for name, value in sorted(self.options.items())]
        # The sanitizer's part (variants.toml [sanitizer.NAME]) that CMake applies: flags for our own
        # programs (harness.cmake, cveserver.cmake) and the layout probe's environment (probe.cmake).
        sanitizer = self.variant.sanitizer
        program = sanitizer.program_flags if sanitizer else ()
        program_gcc = sanitizer.program_flags_gcc if sanitizer else ()
        probe_env = [f"{name}={value}" for name, value in (sanitizer.build_env({}) if sanitizer else {}).items()]
        lines += [f"set(LWSBUILD_PROGRAM_SANITIZER_FLAGS {q(';'.join(program))})",
                  f"set(LWSBUILD_PROGRAM_SANITIZER_FLAGS_GCC {q(';'.join(program_gcc))})",
                  f"set(LWSBUILD_SANITIZER_BUILD_ENV {q(';'.join(probe_env))})"]
        return "\n".join(lines) + "\n"


def cmake_bracket(text: str) -> str:
    """`text` as a CMake bracket argument, read back byte for byte whatever it holds (`"`, `$`, `\\`,
    `]==]`): the closing bracket's `=` count is chosen so that it first occurs at the very end."""
    level = 1
    while (text + "]" + "=" * level + "]").find("]" + "=" * level + "]") != len(text):
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def plan(prepared: PreparedTree, variant: Variant, options: dict[str, str], compiler_used: Compiler | None = None,
         extra_c_flags: tuple[str, ...] = (), ld_flags: tuple[str, ...] = ()) -> BuildSpec:
    """`options`: what variants.options_for() gave (validated once, warnings said once)."""
    return BuildSpec(prepared, variant, options, (*variant.c_flags, *extra_c_flags), compiler_used or compiler(),
                     line_options=line_options(prepared.source.release.version), extra_c_flags=extra_c_flags,
                     ld_flags=ld_flags, cmake_version=tool_version("cmake"))


@dataclass(frozen=True)
class Install:
    spec: BuildSpec
    prefix: Path
    build_dir: Path
    cached: bool

    @property
    def library(self) -> Path:
        found = [p for p in sorted((self.prefix / "lib").glob("libwebsockets.so.*")) if not p.is_symlink()]
        if not found:
            raise CacheError(f"the cached build {self.prefix} has no libwebsockets.so",
                             hint=f"remove {self.prefix.parent} and run the command again (it rebuilds)")
        return found[0]

    def to_json(self) -> dict[str, Any]:
        described = self.spec.provenance()
        return {"prefix": str(self.prefix), "library": str(self.library), "variant": self.spec.variant.name,
                "version": described.lws.version, "patches": [p.to_json() for p in described.patches],
                "series": described.series, "unfixed": self.spec.prepared.unfixed,
                "marks": self.spec.prepared.marks, "build_key": self.spec.key, "cached": self.cached,
                "build_dir": str(self.build_dir)}


def write_spec(spec: BuildSpec, directory: Path) -> Path:
    """Write provenance.json, the harness's flag header and the CMake spec into `directory`; return
    the spec's path."""
    directory.mkdir(parents=True, exist_ok=True)
    spec_file = directory / "lwsbuild-spec.cmake"
    written = provenance.beside(spec_file)
    provenance.write(written, spec.provenance())
    (directory / harness.HEADER).write_text(harness.c_header())
    spec_file.write_text(spec.cmake_spec(written))
    return spec_file


def run_logged(step: str, command: list[str], log: Path, env: dict[str, str], cwd: Path | None = None,
               error: type[LwsbuildError] = BuildError,
               hint: str = "read the log; a -D option or compiler mismatch is the usual cause") -> None:
    """Run one step with its output appended to `log` (streamed too under --verbose); on failure,
    one line naming the step, the most telling log line and the log's path (the entry point shows
    the log's tail above it). A missing program fails with the code of `error`'s stage."""
    tools.require(command[0], f"the {step} step", by_code(error.exit_code))
    returncode = progress.run_logged(f"{step}…", command, log, env, cwd)
    if returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        why = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "no output")
        raise error(f"{step} failed ({why.strip()[:240]}); full log: {log}", hint=hint, log=log)


def cmake_env(spec: BuildSpec) -> dict[str, str]:
    """The environment of every build step: constructed (environment.py), never the caller's own."""
    env = environment.construct(os.environ, SOURCE_DATE_EPOCH=str(spec.source_date_epoch))
    if spec.variant.sanitizer:
        # Instrumented programs run while building (the layout probe): the sanitizer's build_options.
        env.update(spec.variant.sanitizer.build_env(env))
    return env


def broken(root: Path, spec: BuildSpec) -> str | None:
    """What a published install prefix lacks (None: it is complete)."""
    try:
        soname: str | None = str(json.loads((root / prefix.LAYOUT).read_text())["soname"])
    except (OSError, ValueError, KeyError, TypeError):
        soname = None  # layout.json missing (named below) or naming no library
    libraries = [f"lib/{soname}"] if soname else []
    if cmake_truthy(spec.options.get("LWS_WITH_STATIC", "OFF")):
        libraries.append(prefix.STATIC_LIBRARY)
    missing = [name for name in (*libraries, *PREFIX_FILES) if not (root / name).is_file()]  # follows links
    if missing:
        return f"{', '.join(missing)} missing"
    return None if soname else f"{prefix.LAYOUT} names no library (soname)"


def discard(install: Install) -> None:
    """Take a build out of the cache: its prefix (the published entry) and its build directory."""
    cache.discard(install.prefix)
    cache.discard(install.build_dir)


_NO_SPACE = "No space left on device"


def build(spec: BuildSpec, jobs: int | None = None, full_check: bool = False) -> Install:
    """Configure, build and install into builds/<key>/prefix; a complete, unchanged prefix is reused
    as is, an incomplete or changed one is discarded and rebuilt."""
    entry = cache.area("builds") / spec.key
    prefix, build_dir = entry / "prefix", entry / "build"
    # Served only when complete and unchanged since it was built (its manifest; every byte when full).
    if prefix.is_dir() and cache.intact(prefix, full_check, what="cached build", redo="building it again",
                                        damage=broken(prefix, spec)):
        return Install(spec, prefix, build_dir, cached=True)
    with cache.publishing(prefix) as staging:
        if staging is None:  # another process finished it while we waited for the lock
            return Install(spec, prefix, build_dir, cached=True)
        # A build directory without a published prefix is a failed, killed or broken build's: start
        # from scratch (one configured from another checkout's project, same key, refuses to reconfigure).
        cache.discard(build_dir)
        needed = spec.variant.disk_bytes
        what = f"a {spec.variant.name} build (build directory and prefix)"
        cache.require_free(needed, what)
        log = entry / "build.log"
        log.write_text("")
        spec_file = write_spec(spec, entry)
        env = cmake_env(spec)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        tls = tls_backend(spec.options)
        try:
            run_logged("configure", ["cmake", "-S", str(PROJECT_DIR), "-B", str(build_dir), *generator,
                                     f"-DLWSBUILD_SPEC={spec_file}", f"-DCMAKE_C_COMPILER={spec.compiler.path}"],
                       log, env, hint="read the log; a -D option or compiler mismatch is the usual cause"
                       + (f", or the {tls.name} TLS backend's missing development files (Debian: apt-get install "
                          f"{tls.debian})" if tls.debian else ""))
            run_logged("build", ["cmake", "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2)], log, env)
            run_logged("install", ["cmake", "--install", str(build_dir), "--prefix", str(staging)], log, env)
        except BuildError as exc:
            # A full cache fails the compiler or CMake somewhere in the log: say so, with what it takes.
            if _NO_SPACE in log.read_text(errors="replace"):
                cache.discard(build_dir)  # give the room back: a later build starts from scratch anyway
                raise cache.full(needed, what) from exc
            raise
    return Install(spec, prefix, build_dir, cached=False)
