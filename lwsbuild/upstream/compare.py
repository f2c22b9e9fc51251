"""`lwsbuild upstream-tests`: upstream's suite on the pristine tree and on the prepared one, side by side.

Both trees are built with the same options (the variant's, the release line's, the user's -D, then
upstream_tests.toml's), one after the other (upstream's background servers use fixed ports), each
in its own cached work directory. The comparison fails when a test that passes on the pristine tree
fails on the prepared one, or when the prepared tree runs no test at all.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lwsbuild.common import cache, progress
from lwsbuild.upstream import results, suite

if TYPE_CHECKING:
    from lwsbuild.build.cmake import BuildSpec
    from lwsbuild.upstream.results import Row, TreeRun

LABELS = ("pristine", "prepared")


@dataclass(frozen=True)
class Comparison:
    version: str
    variant: str
    series: str
    selection: str
    runs: dict[str, TreeRun]  # LABELS -> run
    needs_internet: tuple[str, ...]
    known: tuple[suite.Known, ...]

    @property
    def rows(self) -> list[Row]:
        return results.rows(self.runs["pristine"], self.runs["prepared"])

    @property
    def regressions(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "REGRESSION"]

    @property
    def ran(self) -> int:
        """Tests that ran to a result on both trees."""
        return sum(1 for row in self.rows if row.pristine != results.NOT_RUN and row.prepared != results.NOT_RUN
                   and "not registered" not in (row.pristine, row.prepared))

    @property
    def ok(self) -> bool:
        return not self.regressions and self.runs["prepared"].count(*results.GOOD) > 0

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "variant": self.variant, "series": self.series,
                "selection": self.selection or None, "ok": self.ok, "ran_on_both": self.ran,
                "regressions": [row.test for row in self.regressions],
                "rows": [{"test": r.test, "pristine": r.pristine, "prepared": r.prepared, "verdict": r.verdict}
                         for r in self.rows],
                "needs_internet": list(self.needs_internet),
                "known": [{"tests": list(k.tests), "kind": k.kind, "why": k.why, "suppression": k.suppression or None}
                          for k in self.known],
                "trees": {label: run.to_json() for label, run in self.runs.items()}}

    def table(self) -> str:
        pristine, prepared = self.runs["pristine"], self.runs["prepared"]
        lines = [(f"upstream's tests, lws {self.version}, variant {self.variant}: pristine tree (series none) and "
                  f"prepared tree (series {self.series}), same options"), "",
                 "| test | pristine | prepared | verdict |", "|---|---|---|---|"]
        for row in self.rows:
            note = " (known: see below)" if prepared.results.get(row.test, results.TestResult("")).known else ""
            lines.append(f"| {row.test} | {row.pristine} | {row.prepared}{note} | {row.verdict} |")
        lines.append("")
        for run in (pristine, prepared):
            lines.append(f"{run.label}: {run.count(results.PASSED)} passed, {run.count(results.FLAKY)} flaky, "
                         f"{run.count(results.FAILED)} failed, {run.count(results.NOT_RUN)} not run "
                         f"({len(run.suite.targets)} targets built, tests {run.seconds:.0f} s)")
        for entry in self.known:
            lines.append(f"known ({entry.kind}) {', '.join(entry.tests)}: {entry.why}")
        if self.needs_internet:
            lines.append(f"not run, need the internet (upstream's {suite.config().internet}=OFF): "
                         + ", ".join(self.needs_internet))
        lines += ["", "verdict: " + self.verdict()]
        return "\n".join(lines)

    def verdict(self) -> str:
        if self.regressions:
            return (f"REGRESSION: {len(self.regressions)} test(s) pass on the pristine tree and fail on the prepared "
                    f"one: {', '.join(r.test for r in self.regressions)}")
        if not self.ok:
            return "NO TESTS: the prepared tree ran no test to a pass"
        return f"OK: {self.ran} tests ran on both trees, none passes on the pristine tree and fails on the prepared one"


def _prepared(label: str, spec: BuildSpec, selection: str) -> suite.Suite:
    with progress.group(f"upstream-tests: {label} tree (series {spec.prepared.series.name})"):
        return suite.prepare(spec, selection)


def compare(pristine: BuildSpec, prepared: BuildSpec, selection: str = "") -> Comparison:
    """Both trees' suites, side by side. The prepared tree builds while the pristine tree's tests run
    (upstream's tests mostly wait: background servers' start-up, timers; a build wants the CPU); the
    tests run one tree at a time (fixed ports). Both work directories are locked, in path order."""
    works = sorted({suite.work_dir(pristine), suite.work_dir(prepared)})
    with contextlib.ExitStack() as held:
        for work in works:
            held.enter_context(cache.lock(work))
        built_pristine = _prepared("pristine", pristine, selection)
        if len(works) == 1:  # --series none: the same tree twice, one after the other
            runs = {"pristine": results.run("pristine", built_pristine, selection)}
            built = _prepared("prepared", prepared, selection)
        else:
            with ThreadPoolExecutor(max_workers=1) as pool:
                pristine_run = pool.submit(results.run, "pristine", built_pristine, selection)
                built = _prepared("prepared", prepared, selection)
                runs = {"pristine": pristine_run.result()}
        runs["prepared"] = results.run("prepared", built, selection)
        internet = tuple(suite.needing_internet(prepared, built)) if not selection else ()
    version = prepared.prepared.source.release.version
    known = suite.config().known_for(version, prepared.variant.name)
    return Comparison(version, prepared.variant.name, prepared.prepared.series.name, selection, runs, internet, known)
