"""Known CVEs (lwsbuild/resources/cves.toml) and their status: per release from the series data, per build from
its provenance and its lws_config.h.

A CVE is closed by one series fix (set "security"). On a build it is, in this order of precedence:
- `not_affected` (code_not_present): the build's lws_config.h lacks what compiles the code in;
- `resolved`: the fix is in the tree (our patch `applied`, or `upstream` in this release);
- `exploitable`: compiled in and not fixed (a series without the security set, or --unfixed).
These are CycloneDX VEX analysis states, so the SBOM, `audit` and `versions` say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache as memoize
from pathlib import Path
from typing import Any, Protocol

from lwsbuild.errors import DataFileError, SeriesError
from lwsbuild.resources import load
from lwsbuild.resources.load import Table
from lwsbuild.series import fixes as series
from lwsbuild.series.fixes import PatchRecord
from lwsbuild.source.releases import Release

CVES_FILE = load.resource("cves.toml")


@dataclass(frozen=True)
class Upstream:
    line: str
    commit: str
    first: str


@dataclass(frozen=True)
class Cve:
    id: str
    fix: str
    summary: str
    cwe: str
    files: tuple[str, ...]
    compiled_in: tuple[tuple[str, ...], ...]  # any of these lists, every macro of it defined
    options: tuple[str, ...]
    upstream: tuple[Upstream, ...]
    debian: str
    reachable: str

    def is_compiled_in(self, defined: set[str]) -> bool:
        return not self.compiled_in or any(set(need) <= defined for need in self.compiled_in)

    def missing(self, defined: set[str]) -> str:
        """What compiles the code out: the absent macros of each alternative ("A / B+C")."""
        gaps = ["+".join(sorted(set(need) - defined)) for need in self.compiled_in]
        return " / ".join(dict.fromkeys(g for g in gaps if g))


@dataclass(frozen=True)
class DefaultBuild:
    defined: frozenset[str]
    undefined: frozenset[str]


SHAPE = Table({"cve": [Table({"id": str, "fix": str, "summary": str},
                              {"cwe": str, "files": [str], "compiled_in": [[str]], "options": [str],
                               "upstream": [Table({"line": str, "commit": str, "first": str})], "debian": str,
                               "reachable": str})],
               "default_build": Table({"defined": [str], "undefined": [str]}, {"checked": str})},
              {"check": [Table({"command": str, "date": str, "result": str})]})


def load_cves(path: Path = CVES_FILE) -> tuple[tuple[Cve, ...], DefaultBuild]:
    data = load.read(path, SHAPE)
    cves = []
    for n, entry in enumerate(data["cve"], 1):
        if not re.fullmatch(r"CVE-\d{4}-\d{4,}", entry["id"]):
            raise DataFileError(f"{path.name}: cve[{n}].id is {entry['id']!r}, expected a CVE id (CVE-YYYY-NNNN)")
        upstream = tuple(Upstream(u["line"], u["commit"], u["first"]) for u in entry.get("upstream", []))
        cves.append(Cve(entry["id"], entry["fix"], " ".join(entry["summary"].split()), entry.get("cwe", ""),
                        tuple(entry.get("files", ())), tuple(tuple(alt) for alt in entry.get("compiled_in", ())),
                        tuple(entry.get("options", ())), upstream, entry.get("debian", ""),
                        " ".join(entry.get("reachable", "").split())))
    default = data["default_build"]
    return tuple(cves), DefaultBuild(frozenset(default["defined"]), frozenset(default["undefined"]))


@memoize
def known() -> tuple[Cve, ...]:
    cves, _ = load_cves()
    fixes = {fix.id for fix in series.select(series.ALL).fixes}
    for cve in cves:
        if cve.fix not in fixes:
            raise SeriesError(f"cves.toml {cve.id}: fix {cve.fix!r} is not in patches/series.toml")
    return cves


@memoize
def default_build() -> DefaultBuild:
    return load_cves()[1]


# [ \t], not \s: \s crosses lines, and a text of blank lines would then cost quadratic time.
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", re.MULTILINE)


def macros_defined(lws_config_h: str) -> set[str]:
    """The macros the text of a build's lws_config.h defines."""
    return set(_DEFINE.findall(lws_config_h))


def config_macros(lws_config_h: Path) -> set[str]:
    """The macros a build's lws_config.h defines."""
    return macros_defined(lws_config_h.read_text(errors="replace"))


@dataclass(frozen=True)
class CveStatus:
    cve: Cve
    state: str  # resolved | not_affected | exploitable  (CycloneDX VEX analysis state)
    justification: str  # code_not_present for not_affected, else ""
    fix_status: str  # what the series did with the fix on this tree: applied, upstream, ..., "not in series"
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.cve.id, "state": self.state, "justification": self.justification or None,
                "fix": self.cve.fix, "fix_status": self.fix_status, "detail": self.detail}


def _fix_words(cve: Cve, patch: PatchRecord | None) -> str:
    if patch is not None and patch.status == "applied":
        return f"fixed by lwsbuild patch {cve.fix} ({patch.patch})"
    if patch is not None and patch.status == "upstream":
        return f"fixed upstream in this release (commit {patch.upstream or '?'})"
    if patch is not None and patch.status == "distribution":  # series/carried.py: a packager's own patch
        return f"fixed by the distribution's own patch {patch.patch}"
    return ""


class BuildFacts(Protocol):
    """What a CVE's status on a build depends on: provenance.json's series, mode and patches (the
    build stage's Provenance has them; this stage comes before it)."""

    @property
    def series(self) -> str: ...

    @property
    def unfixed(self) -> bool: ...

    @property
    def patches(self) -> tuple[PatchRecord, ...]: ...


def build_status(provenance: BuildFacts, defined: set[str]) -> list[CveStatus]:
    """Every known CVE's status on one build (its provenance.json and lws_config.h macros)."""
    patches = {p.id: p for p in provenance.patches}
    out = []
    for cve in known():
        patch = patches.get(cve.fix)
        fix_status = patch.status if patch else "not in series"
        fixed = fix_status in ("applied", "upstream", "distribution")
        words = _fix_words(cve, patch)
        if not cve.is_compiled_in(defined):
            detail = (f"not affected in this build: the code is compiled out ({cve.missing(defined)} not defined; "
                      f"options {', '.join(cve.options)} OFF)")
            out.append(CveStatus(cve, "not_affected", "code_not_present", fix_status,
                                 detail + (f"; also {words}" if words else "")))
        elif fixed:
            out.append(CveStatus(cve, "resolved", "", fix_status, words))
        else:
            why = ("an UNFIXED build" if provenance.unfixed else
                   f"series '{provenance.series}' does not include fix {cve.fix}" if patch is None else
                   f"fix {cve.fix} is {fix_status} in this build")
            out.append(CveStatus(cve, "exploitable", "", fix_status, f"compiled in and not fixed: {why}"))
    return out


def release_status(release: Release) -> list[dict[str, str]]:
    """Per CVE, what the series data does on `release` and what the default variants compile in."""
    default = default_build()
    rows = []
    for cve in known():
        line = next(f for f in series.select(series.ALL).fixes if f.id == cve.fix).line_for(release.version)
        form = "uncovered" if line is None else line.form
        if line is None:
            fix = "no line"
        elif line.form == "upstream":
            fix = f"fixed upstream {line.upstream}"
        elif line.form == "ours":
            fix = f"fixed by {cve.fix}"
        else:
            fix = f"not affected ({line.not_needed})"
        compiled = cve.is_compiled_in(set(default.defined))
        rows.append({"id": cve.id, "fix": cve.fix, "form": form, "status": fix,
                     "default_build": "compiled in" if compiled else
                     f"compiled out ({cve.missing(set(default.defined))} off)"})
    return rows
