"""What was verified by hand, where, and how: verified.toml, read by `lwsbuild versions`.

CI can fetch only the releases a Debian suite ships; every other pinned release was checked by hand
on a machine that has upstream's trees (build, smoke, stress, the unfixed build's defect), each
check recorded with its command, date and result. This module reads that record and summarises it
per release; it never runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TypedDict

from lwsbuild.resources import load
from lwsbuild.resources.load import Table

# The steps a release line needs for "fully proven", in the order they are shown; patch is shown too.
PROVEN_STEPS = ("build", "smoke", "stress", "stress-unfixed")
SHOWN_STEPS = ("patch", *PROVEN_STEPS)


@dataclass(frozen=True)
class Check:
    version: str
    tree_id: str
    step: str  # patch | patch-unfixed | patch-seed | build | smoke | stress | stress-unfixed | …
    variant: str
    series: str  # "all", or how a tree patched by hand was made before the series carried its lines
    command: str
    date: str
    result: str
    verdict: str  # pass | fail | defect-reproduced

    @property
    def with_series(self) -> bool:
        """Checked through the series itself (not a tree patched by hand)."""
        return self.series in ("all", "seed", "unfixed")

    @property
    def good(self) -> bool:
        return self.verdict in ("pass", "defect-reproduced")


SHAPE = Table({}, {"check": [Table({"version": str, "step": str, "command": str, "date": str, "result": str,
                                     "verdict": str},
                                    {"tree_id": str, "variant": str, "series": str, "by": str})]})


@cache
def checks() -> tuple[Check, ...]:
    data = load.read(load.resource("verified.toml"), SHAPE)
    return tuple(Check(**{k: str(row.get(k, "")) for k in Check.__dataclass_fields__}) for row in data.get("check", []))


def for_version(version: str) -> list[Check]:
    return [c for c in checks() if c.version == version]


class Summary(TypedDict):
    steps: dict[str, dict[str, str]]  # step -> its newest good check (date, series, result, command)
    ci: bool  # the default pin: proven by the test suite on every CI run
    proven: bool


def _default() -> str:
    from lwsbuild.source.releases import default_version

    return default_version()


def ci_proven_lines() -> list[str]:
    """The releases besides the default that the test suite proves on every CI run: those a Debian
    suite serves (the only source a test can fetch), each built, smoke-tested, its unfixed build's
    defect reproduced and its fixed build stressed clean (tests/test_distro_lines.py). The default
    release is proven by tests/test_smoke.py and test_stress.py."""
    from lwsbuild.source.releases import all_releases

    return [r.version for r in all_releases() if r.debian_suites and r.version != _default()]


def summary(version: str) -> Summary:
    """Per proven step, the newest good check through the series (else by hand), for `versions`."""
    found: dict[str, dict[str, str]] = {}
    for step in SHOWN_STEPS:
        candidates = [c for c in for_version(version) if c.step == step and c.good]
        candidates.sort(key=lambda c: (c.with_series, c.date))
        if candidates:
            best = candidates[-1]
            found[step] = {"date": best.date, "series": best.series, "result": best.result, "command": best.command}
    return {"steps": found, "ci": version in (_default(), *ci_proven_lines()),
            "proven": all(s in found and found[s]["series"] in ("all", "unfixed") for s in PROVEN_STEPS)}
