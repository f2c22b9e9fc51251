"""Run a built suite with CTest, rerun what failed, and compare the pristine and the prepared tree.

A test's outcome on one tree: `passed`; `flaky` (failed, then passed on a rerun: upstream's
background servers get a fixed start-up wait, so a loaded machine fails a client test now and then);
`failed` (failed on every run); `not run` (CTest skipped it, a fixture failed). A test that passes or
is flaky on the pristine tree and fails on the prepared one is a regression of the series.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from lwsbuild.build import cmake as build
from lwsbuild.errors import BuildError, CacheError
from lwsbuild.stress.run import sanitizer_env, under_sanitizer
from lwsbuild.upstream import suite as suites

if TYPE_CHECKING:
    from lwsbuild.upstream.suite import Known, Suite

PASSED, FLAKY, FAILED, NOT_RUN = "passed", "flaky", "failed", "not run"
GOOD = (PASSED, FLAKY)
PORT_WAIT_S = 60.0  # another run's background servers hold the fixed ports: wait this long for them
TAIL_CHARS = 4000  # of a failing test's output, kept in the report


@dataclass
class TestResult:
    name: str
    outcome: str = NOT_RUN
    runs: list[str] = field(default_factory=list)  # "passed"/"failed" per run, in order
    seconds: float = 0.0
    output: str = ""  # the last failing run's output tail
    known: str = ""  # the [[known]] entry's reason, when one covers it

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "runs": self.runs, "seconds": round(self.seconds, 3),
                "output": self.output or None, "known": self.known or None}


@dataclass(frozen=True)
class TreeRun:
    label: str  # pristine | prepared
    suite: Suite
    results: dict[str, TestResult]
    seconds: float

    def count(self, *outcomes: str) -> int:
        return sum(1 for r in self.results.values() if r.outcome in outcomes)

    def to_json(self) -> dict[str, Any]:
        spec = self.suite.spec
        return {"label": self.label, "series": spec.prepared.series.name, "prepared_tree_id": spec.prepared.tree_id,
                "targets": list(self.suite.targets), "log": str(self.suite.log), "seconds": round(self.seconds, 1),
                "counts": {o: self.count(o) for o in (PASSED, FLAKY, FAILED, NOT_RUN)},
                "tests": {name: r.to_json() for name, r in self.results.items()}}


def _wait_for_ports(ports: tuple[int, ...]) -> None:
    """Upstream's background servers listen on fixed ports: a port in use (another run, or anything
    else) would fail their tests for a reason that is not the tree's."""
    deadline = time.monotonic() + PORT_WAIT_S
    while True:
        busy = [port for port in ports if _in_use(port)]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise CacheError(f"port {busy[0]} is in use, and upstream's test servers listen on fixed ports "
                             f"({', '.join(map(str, ports))})",
                             hint="stop what listens there (another `lwsbuild upstream-tests` run?) and retry")
        time.sleep(1.0)


def _in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # upstream's servers bind every address: so must the probe (it never listens)
            probe.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def _environment(suite: Suite, known: tuple[Known, ...]) -> dict[str, str]:
    spec = suite.spec
    env = build.cmake_env(spec)
    sanitizer = spec.variant.sanitizer
    env.update(sanitizer_env(sanitizer, {}))
    suppressions = [k.suppression for k in known if k.suppression]
    if suppressions:
        path = suite.work / "lsan.supp"
        path.write_text("".join(f"{line}\n" for line in suppressions))
        env["LSAN_OPTIONS"] = ":".join(filter(None, [env.get("LSAN_OPTIONS", ""), f"suppressions={path}"]))
    # upstream's background-server scripts name their pid and log files in /tmp by this index
    env["SAI_INSTANCE_IDX"] = f"lwsbuild{os.getpid()}"
    return env


def _ctest(suite: Suite, env: dict[str, str], junit: Path, timeout: int, extra: list[str]) -> None:
    argv = ["ctest", "--test-dir", str(suite.build_dir), "--output-junit", str(junit), "--timeout", str(timeout),
            "-j", str(os.cpu_count() or 2), *extra]
    argv = under_sanitizer(argv, suite.spec.variant.sanitizer)  # ctest's children inherit it
    # ctest exits non-zero when a test fails: the JUnit file is the verdict, a missing one the error.
    # No spinner: the other tree builds (with its own) while these tests run.
    junit.unlink(missing_ok=True)
    with suite.log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=suite.build_dir, check=False)
    if not junit.is_file():
        raise BuildError(f"ctest wrote no results ({junit}); full log: {suite.log}", log=suite.log)


def _read_junit(junit: Path) -> dict[str, tuple[str, float, str]]:
    """name -> (passed | failed | not run, seconds, output) from CTest's JUnit file (ours, just written)."""
    found = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        status = case.get("status", "")
        if case.find("failure") is not None or status == "fail":
            outcome = FAILED
        elif status in ("notrun", "disabled") or case.find("skipped") is not None:
            outcome = NOT_RUN
        else:
            outcome = PASSED
        out = case.findtext("system-out") or ""
        found[case.get("name", "")] = (outcome, float(case.get("time", "0") or 0), out[-TAIL_CHARS:])
    return found


def run(label: str, suite: Suite, selection: str = "") -> TreeRun:
    """Every registered test once, then the failures again up to [suite].reruns times."""
    config = suites.config()
    release = suite.spec.prepared.source.release.version
    known = config.known_for(release, suite.spec.variant.name)
    env = _environment(suite, known)
    results = {t.name: TestResult(t.name) for t in suite.tests}
    started = time.monotonic()
    selected = ["-R", selection] if selection else []
    for attempt in range(config.reruns + 1):
        _wait_for_ports(config.ports)
        junit = suite.work / f"results-{attempt}.xml"
        _ctest(suite, env, junit, config.timeout, selected if attempt == 0 else [*selected, "--rerun-failed"])
        for name, (outcome, seconds, out) in _read_junit(junit).items():
            result = results.setdefault(name, TestResult(name))
            if outcome == NOT_RUN and result.runs:
                continue  # a rerun's fixture bookkeeping: the first run's outcome stands
            result.runs.append(outcome)
            result.seconds += seconds
            if outcome == FAILED:
                result.output = out
        if not any(r.runs and r.runs[-1] == FAILED for r in results.values()):
            break
    for result in results.values():
        result.outcome = _outcome(result.runs)
        result.known = next((k.why for k in known if result.name in k.tests), "")
    return TreeRun(label, suite, results, time.monotonic() - started)


def _outcome(runs: list[str]) -> str:
    if not runs or runs[0] == NOT_RUN:
        return NOT_RUN
    if runs[-1] == PASSED:
        return PASSED if len(runs) == 1 else FLAKY
    return FAILED


@dataclass(frozen=True)
class Row:
    test: str
    pristine: str
    prepared: str

    @property
    def verdict(self) -> str:
        if self.pristine in GOOD and self.prepared not in GOOD:
            return "REGRESSION"
        if self.pristine not in GOOD and self.prepared in GOOD:
            return "fixed"
        return "same"


def rows(pristine: TreeRun, prepared: TreeRun) -> list[Row]:
    names = list(dict.fromkeys([*pristine.results, *prepared.results]))
    missing = "not registered"
    return [Row(name, pristine.results[name].outcome if name in pristine.results else missing,
                prepared.results[name].outcome if name in prepared.results else missing) for name in names]
