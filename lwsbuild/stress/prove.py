"""`lwsbuild prove`: every stress profile against the unfixed, `seed` and `all` builds of one release.

Per profile, the same load runs on the three builds. The proof holds when the `all` build is clean
under every profile (the series fixes what the harness can reach) and the unfixed build shows a
finding under at least one (the harness reproduces the bug); `seed` shows what the four original
fixes alone are measured to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwsbuild.build import cmake as build
from lwsbuild.common import reportdir
from lwsbuild.stress import report
from lwsbuild.stress import run as stress

if TYPE_CHECKING:
    from lwsbuild.build.cmake import BuildSpec
    from lwsbuild.stress.findings import Finding
    from lwsbuild.stress.profiles import NamedProfile

BUILDS = ("unfixed", "seed", "all")  # row order; a label is also the report subdirectory


@dataclass(frozen=True)
class Proof:
    version: str
    variant: str
    named: NamedProfile
    runs: dict[str, stress.StressRun]  # label -> run, in BUILDS order
    defines: dict[str, str]  # the -D options given on top of the variant's, for all three builds

    @property
    def profile(self) -> stress.Profile:
        return self.named.profile

    @property
    def reproduced(self) -> bool:
        return bool(self.runs["unfixed"].failing)

    @property
    def fixed(self) -> bool:
        return self.runs["all"].verdict == "clean"

    @property
    def proven(self) -> bool:
        return self.reproduced and self.fixed

    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for label, run in self.runs.items():
            first = run.first_finding
            rows.append({"build": label, "connections": run.connections, "cps": round(run.cps, 1),
                         "duration_s": round(run.duration_s, 3), "max_concurrent": run.max_concurrent,
                         "verdict": run.verdict, "defects": len(run.failing),
                         "known_reports": len(run.findings) - len(run.failing),
                         "first_finding": _describe(first) if first else None,
                         "first_finding_t": first.t if first else None,
                         "lws_version": (run.start or {}).get("lws_version")})
        return rows

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "variant": self.variant, "defines": self.defines,
                "profile": self.profile.to_json(), "profile_name": self.named.name,
                "proven": self.proven, "reproduced": self.reproduced, "fixed": self.fixed, "rows": self.rows(),
                "runs": {label: run.to_json() for label, run in self.runs.items()}}

    def table(self) -> str:
        """The comparison as a Markdown table (also what `prove` prints)."""
        defines = "".join(f" -D {k}={v}" for k, v in sorted(self.defines.items()))
        lines = [(f"profile {self.named.name} ({self.named.description}); lws {self.version}, variant "
                  f"{self.variant}{defines}; harness flags: {' '.join(self.profile.argv()) or 'defaults'}"),
                 "", "| build | connections | connections/s | verdict | first finding |",
                 "|---|---:|---:|---|---|"]
        for row, run in zip(self.rows(), self.runs.values(), strict=True):
            first = row["first_finding"] or "none"
            if row["first_finding_t"] is not None:
                first += f" at {row['first_finding_t']:.2f} s"
            # a run that died has no summary: its counts are those of its last progress sample
            ended = f" (died at {run.ended_early:.2f} s)" if run.ended_early is not None else ""
            lines.append(f"| {row['build']} | {row['connections']:,}{ended} | {row['cps']:,.0f} | {row['verdict']} | {first} |")
        lines += ["", "proof: " + ("PROVEN: the unfixed build shows the defect, the `all` build is clean under the same load"
                                   if self.proven else self._why_not())]
        return "\n".join(lines)

    def _why_not(self) -> str:
        why = []
        if not self.reproduced:
            why.append("the unfixed build ran clean (the bug was not reproduced)")
        if not self.fixed:
            why.append("the `all` build has findings")
        return "NOT PROVEN: " + "; ".join(why)


def _describe(finding: Finding) -> str:
    where = finding.frames[0].split(" ", 1)[0] if finding.frames else ""
    return f"{finding.kind}{' in ' + where if where else ''}"


def run(specs: dict[str, BuildSpec], named: NamedProfile, directory: Path) -> Proof:
    """Build (cached) and stress each of `specs` (label -> spec, labels from BUILDS) with one profile;
    each run's report (JSON, logs, plot) goes to directory/<label>/."""
    runs: dict[str, stress.StressRun] = {}
    for label in BUILDS:
        install = build.build(specs[label])
        where = reportdir.subdirectory(directory, label)
        result = stress.run(install, named.profile, where)
        report.write(where, result)
        runs[label] = result
    spec = specs["all"]
    return Proof(spec.prepared.source.release.version, spec.variant.name, named, runs, spec.extra_options)


@dataclass(frozen=True)
class ProofSet:
    """Every profile's proof for one release and variant."""

    version: str
    variant: str
    proofs: tuple[Proof, ...]

    @property
    def fixed(self) -> bool:
        return all(p.fixed for p in self.proofs)

    @property
    def reproduced(self) -> bool:
        return any(p.reproduced for p in self.proofs)

    @property
    def proven(self) -> bool:
        return self.fixed and self.reproduced

    def first_unclean(self) -> tuple[str, Finding | None]:
        proof = next(p for p in self.proofs if not p.fixed)
        return proof.named.name, proof.runs["all"].first_finding

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "variant": self.variant, "proven": self.proven, "fixed": self.fixed,
                "reproduced": self.reproduced, "profiles": [p.to_json() for p in self.proofs]}

    def table(self) -> str:
        lines = [f"lws {self.version}, variant {self.variant}: {len(self.proofs)} profile(s)", "",
                 "| profile | unfixed | seed | all |", "|---|---|---|---|"]
        for proof in self.proofs:
            cells = []
            for label in BUILDS:
                run = proof.runs[label]
                first = run.first_finding
                cells.append(f"{run.verdict}: {_describe(first)} at {first.t or 0:.2f} s" if first
                             else f"{run.verdict} ({run.connections:,} conns, {run.cps:,.0f}/s)")
            lines.append(f"| {proof.named.name} | " + " | ".join(cells) + " |")
        lines += ["", "proof: " + ("PROVEN: the `all` build is clean under every profile and the unfixed build "
                                   "shows the defect" if self.proven else self._why_not())]
        return "\n".join(lines + ["", *(p.table() for p in self.proofs)])

    def _why_not(self) -> str:
        why = []
        if not self.reproduced:
            why.append("the unfixed build ran clean under every profile (the bug was not reproduced)")
        unclean = [p.named.name for p in self.proofs if not p.fixed]
        if unclean:
            why.append(f"the `all` build has findings under {', '.join(unclean)}")
        return "NOT PROVEN: " + "; ".join(why)


def run_all(specs: dict[str, BuildSpec], chosen: list[NamedProfile], directory: Path) -> ProofSet:
    proofs = tuple(run(specs, named, reportdir.subdirectory(reportdir.ready(directory), named.name))
                   for named in chosen)
    spec = specs["all"]
    return ProofSet(spec.prepared.source.release.version, spec.variant.name, proofs)


def write_all(directory: Path, proofs: ProofSet) -> dict[str, Any]:
    """prove.md and prove.json for the whole set, and each profile's own report in its directory."""
    reportdir.ready(directory)
    per_profile = {p.named.name: write(reportdir.subdirectory(directory, p.named.name), p) for p in proofs.proofs}
    written = {"markdown": str(directory / "prove.md"), "json": str(directory / "prove.json"),
               "profiles": per_profile}
    reportdir.write_text(directory / "prove.md", proofs.table() + "\n")
    reportdir.write_text(directory / "prove.json", json.dumps({**proofs.to_json(), "report": written}, indent=2,
                                                              sort_keys=True) + "\n")
    return written


def write(directory: Path, proof: Proof) -> dict[str, str | None]:
    """prove.md (the table), prove.json and prove.png (the three runs) into `directory`."""
    reportdir.ready(directory)
    written: dict[str, str | None] = {"markdown": str(directory / "prove.md"), "json": str(directory / "prove.json")}
    written.update(report.plot(directory / "prove.png", list(proof.runs.values()),
                               title=f"lws {proof.version} {proof.variant}: unfixed / seed / all"))
    reportdir.write_text(directory / "prove.md", proof.table() + "\n")
    reportdir.write_text(directory / "prove.json", json.dumps({**proof.to_json(), "report": written}, indent=2,
                                                              sort_keys=True) + "\n")
    return written
