"""Upstream's own CTest suite for one build: configured with the build's options plus the suite's,
and only the targets its registered tests run are built.

A build of libwebsockets with LWS_WITH_MINIMAL_EXAMPLES builds some 170 targets; the tests need a
fifth of them. Which ones is read from CMake itself, not kept in a list: `ctest --show-only=json-v1`
names each test and the CMakeLists.txt that registered it, CMake's file API (codemodel-v2) names
every executable target with its directory and artifact, and a test needs the executables of the
directory that registered it and those its command line names (the background servers).

The work directory (`<cache>/upstream-tests/<key>`) holds a copy of the tree, because upstream's
client tests read the background server's files from `<source>/destdir/usr/local/share/...` (where
upstream's CI installs them) and the cached trees are never written to, and the build directory,
kept so a second run rebuilds only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache as memoize
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwsbuild.build import cmake as build
from lwsbuild.common import cache
from lwsbuild.errors import BuildError, UsageError
from lwsbuild.resources import load as resources
from lwsbuild.resources.load import Each, Table
from lwsbuild.source.releases import in_range

if TYPE_CHECKING:
    from lwsbuild.build.cmake import BuildSpec

# Where upstream's client tests expect the test server's files (its CMakeLists.txt: -r ...).
SERVER_FILES = Path("destdir/usr/local/share/libwebsockets-test-server")
SHAPE = Table({"suite": Table({"cmake": Each(str), "internet": str, "reruns": int, "timeout": int, "ports": [int]})},
              {"known": [Table({"tests": [str], "versions": str, "kind": str, "why": str},
                               {"variants": [str], "suppression": str})]})
_CMAKE_TIMEOUT = 1800  # a configure or build step; the suite's own tests have their own timeouts


@dataclass(frozen=True)
class Known:
    """A result of upstream's own making ([[known]] of upstream_tests.toml)."""

    tests: tuple[str, ...]
    versions: str
    variants: tuple[str, ...]  # empty: every variant
    kind: str
    suppression: str
    why: str

    def covers(self, version: str, variant: str) -> bool:
        return in_range(self.versions, version) and (not self.variants or variant in self.variants)


@dataclass(frozen=True)
class Config:
    cmake: dict[str, str]
    internet: str
    reruns: int
    timeout: int
    ports: tuple[int, ...]
    known: tuple[Known, ...]

    def known_for(self, version: str, variant: str) -> tuple[Known, ...]:
        return tuple(k for k in self.known if k.covers(version, variant))


@memoize
def config() -> Config:
    data = resources.read(resources.resource("upstream_tests.toml"), SHAPE)
    suite = data["suite"]
    known = tuple(Known(tuple(k["tests"]), k["versions"], tuple(k.get("variants", ())), k["kind"], k.get("suppression", ""),
                        " ".join(k["why"].split())) for k in data.get("known", []))
    return Config(dict(suite["cmake"]), suite["internet"], suite["reruns"], suite["timeout"], tuple(suite["ports"]),
                  known)


def options(spec: BuildSpec, internet: bool = False) -> dict[str, str]:
    """The build's own options, then the suite's: the pristine and the prepared tree get the same."""
    suite = config()
    return {**spec.options, **suite.cmake, suite.internet: "ON" if internet else "OFF"}


@dataclass(frozen=True)
class Registered:
    name: str
    directory: Path  # the source directory whose CMakeLists.txt registered it
    command: tuple[str, ...]  # empty until its executable exists (ctest leaves it out)
    properties: dict[str, Any]


@dataclass(frozen=True)
class Suite:
    """One tree's configured and built suite."""

    spec: BuildSpec
    work: Path
    build_dir: Path
    tests: tuple[Registered, ...]
    targets: tuple[str, ...]  # what was built for them
    log: Path

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tests]


def work_dir(spec: BuildSpec) -> Path:
    identity = json.dumps({"build": spec.key, "suite": options(spec)}, sort_keys=True)
    return cache.area("upstream-tests") / hashlib.sha256(identity.encode()).hexdigest()[:24]


def _cmake(step: str, command: list[str], log: Path, spec: BuildSpec) -> None:
    build.run_logged(step, command, log, build.cmake_env(spec),
                     hint="read the log; upstream's tests need the options of upstream_tests.toml to configure")


def _defines(spec: BuildSpec, values: dict[str, str]) -> list[str]:
    # CMake puts these strings on the compiler's command line as they are (CMAKE_C_FLAGS also links).
    flags, ld_flags = shlex.join(spec.c_flags), shlex.join(spec.ld_flags)
    return [*(f"-D{k}={v}" for k, v in sorted(values.items())), f"-DCMAKE_C_COMPILER={spec.compiler.path}",
            f"-DCMAKE_C_FLAGS={flags}", f"-DCMAKE_EXE_LINKER_FLAGS={ld_flags}",
            f"-DCMAKE_SHARED_LINKER_FLAGS={ld_flags}"]


def configure(spec: BuildSpec, source: Path, build_dir: Path, log: Path, internet: bool = False) -> None:
    query = build_dir / ".cmake" / "api" / "v1" / "query" / "codemodel-v2"
    query.parent.mkdir(parents=True, exist_ok=True)
    query.touch()
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _cmake("configure upstream's tests", ["cmake", "-S", str(source), "-B", str(build_dir), *generator,
                                          *_defines(spec, options(spec, internet))], log, spec)


def registered(build_dir: Path, env: dict[str, str], selection: str = "") -> tuple[Registered, ...]:
    """The tests CTest registers in a configured build directory (`selection`: ctest -R's regex)."""
    command = ["ctest", "--test-dir", str(build_dir), "--show-only=json-v1", *(["-R", selection] if selection else [])]
    try:
        shown = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildError(f"ctest could not list upstream's tests: {exc}", hint="install cmake (it brings ctest)") from None
    if shown.returncode != 0:
        raise BuildError(f"ctest could not list upstream's tests in {build_dir}: {shown.stderr.strip()[:240]}")
    start = shown.stdout.find("{")
    said = shown.stdout[:max(start, 0)].strip()  # ctest prints a regex it cannot compile before the JSON
    if said and selection:
        raise UsageError(f"--tests {selection!r} is not a regex CMake can read: {said.splitlines()[0]}",
                         hint="CMake's regex syntax: ctest -R; leave --tests out to run every test")
    data = json.loads(shown.stdout[start:]) if start >= 0 else {}
    graph = data.get("backtraceGraph", {})
    commands = _generated_commands(build_dir)
    tests = []
    for test in data.get("tests", []):
        tests.append(Registered(test["name"], _registering_directory(graph, test.get("backtrace")),
                                tuple(test.get("command") or commands.get(test["name"], ())),
                                {p["name"]: p["value"] for p in test.get("properties", [])}))
    return tuple(tests)


_ADD_TEST = re.compile(r"^add_test\((?:\[=*\[(?P<bracketed>.*?)\]=*\]|(?P<plain>\S+)) (?P<words>.*)\)$", re.MULTILINE)
_WORD = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _generated_commands(build_dir: Path) -> dict[str, tuple[str, ...]]:
    """name -> command line, from the CTestTestfile.cmake files CMake generated. `ctest --show-only`
    leaves out the command of a test whose executable is not built yet: the generated files have it."""
    found: dict[str, tuple[str, ...]] = {}
    for testfile in build_dir.rglob("CTestTestfile.cmake"):
        for match in _ADD_TEST.finditer(testfile.read_text(errors="replace")):
            name = match.group("bracketed") if match.group("bracketed") is not None else match.group("plain")
            found[name] = tuple(_WORD.findall(match.group("words")))
    return found


def selected(tests: tuple[Registered, ...], selection: str) -> tuple[Registered, ...]:
    """The tests, refused when there are none: a --tests regex that matches nothing (or that CMake
    cannot read: ctest then lists nothing) is the user's to fix, before anything is built."""
    if not tests:
        if selection:
            raise UsageError(f"--tests {selection!r} matches none of upstream's registered tests",
                             hint="leave it out to run them all; the regex is CMake's (ctest -R)")
        raise BuildError("upstream's CTest suite registered no test with these options",
                         hint="check upstream_tests.toml's [suite].cmake against this release's CMakeLists.txt")
    return tests


def _registering_directory(graph: dict[str, Any], node: int | None) -> Path:
    """The directory of the first CMakeLists.txt in the test's backtrace (add_test may sit in a function)."""
    nodes, files = graph.get("nodes", []), graph.get("files", [])
    while node is not None:
        path = Path(files[nodes[node]["file"]])
        if path.name == "CMakeLists.txt":
            return path.parent
        node = nodes[node].get("parent")
    return Path()


def _executables(build_dir: Path, source: Path) -> list[tuple[str, Path, tuple[str, ...]]]:
    """(target, source directory, artifact file names) of every executable target (CMake's file API)."""
    reply = build_dir / ".cmake" / "api" / "v1" / "reply"
    index = max(reply.glob("index-*.json"), default=None)
    if index is None:
        raise BuildError(f"CMake wrote no file-API reply in {reply}", hint="use CMake 3.14 or later")
    codemodel = json.loads(index.read_text())["reply"]["codemodel-v2"]["jsonFile"]
    configuration = json.loads((reply / codemodel).read_text())["configurations"][0]
    directories = [source / d["source"] for d in configuration["directories"]]
    found = []
    for target in configuration["targets"]:
        described = json.loads((reply / target["jsonFile"]).read_text())
        if described["type"] == "EXECUTABLE":
            artifacts = tuple(Path(a["path"]).name for a in described.get("artifacts", []))
            found.append((target["name"], directories[target["directoryIndex"]].resolve(), artifacts))
    return found


def needed_targets(tests: tuple[Registered, ...], build_dir: Path, source: Path) -> tuple[str, ...]:
    """The executables the tests run: their directory's, and those their commands name."""
    executables = _executables(build_dir, source)
    needed: set[str] = set()
    for test in tests:
        words = {Path(word).name for word in test.command}
        for name, directory, artifacts in executables:
            if directory == test.directory.resolve() or words & set(artifacts):
                needed.add(name)
    return tuple(sorted(needed))


def prepare(spec: BuildSpec, selection: str = "", jobs: int | None = None) -> Suite:
    """Copy the tree (once), configure, and build what the registered tests need. The caller holds
    the work directory's lock (cache.lock(work_dir(spec)))."""
    work = work_dir(spec)
    source, build_dir, log = work / "src", work / "build", work / "build.log"
    if not (source / "CMakeLists.txt").is_file():
        shutil.rmtree(source, ignore_errors=True)
        cache.require_free(64 << 20, "a copy of the source tree for upstream's tests")
        shutil.copytree(spec.prepared.path, source, symlinks=True)
    log.write_text("")
    configure(spec, source, build_dir, log)
    tests = selected(registered(build_dir, build.cmake_env(spec), selection), selection)
    # The background servers' files where the client tests look for them (upstream installs them there).
    served = source / SERVER_FILES
    if not served.is_symlink():  # dangling until test-server is built: a link, not a dead end
        served.parent.mkdir(parents=True, exist_ok=True)
        served.symlink_to(build_dir / "share" / "libwebsockets-test-server")
    targets = needed_targets(tests, build_dir, source)
    if targets:
        _cmake("build upstream's tests", ["cmake", "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2),
                                          "--target", *targets], log, spec)
    return Suite(spec, work, build_dir, tests, targets, log)


def needing_internet(spec: BuildSpec, suite: Suite) -> list[str]:
    """The tests upstream registers only with its internet switch on (configured aside, not built)."""
    aside = suite.work / "internet"
    configure(spec, suite.work / "src", aside, suite.work / "internet.log", internet=True)
    offline = set(suite.names)
    return sorted(t.name for t in registered(aside, build.cmake_env(spec)) if t.name not in offline)
