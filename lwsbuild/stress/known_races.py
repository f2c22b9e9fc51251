"""Which sanitizer reports fail a stress run: everything, except known upstream reports listed, each
with its reason, in `known_races.toml`.

libwebsockets' SMP support has ThreadSanitizer reports that the fix series does not claim to close
(lock-order inversions between the context, vhost and pt locks; unlocked reads of pt->self; the fd
table's insert_wsi; lws_vhost_bind_wsi). Failing every TSan run on them would make the TSan verdict
useless; ignoring TSan would hide regressions. So a report is `known` only when it matches an entry
by kind and by functions in its top frames, and the code the series fixes can never be listed:
a report with a frame in it always fails the run, whatever the data file says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from lwsbuild.errors import KnownRacesError
from lwsbuild.resources import load as resources
from lwsbuild.resources.load import Table
from lwsbuild.stress.findings import TOP_FRAMES, Finding

# Functions whose reports are defects by definition: the series fixes their locking (0004), so a
# report there means the fix is missing or incomplete. Checked on every frame of every access stack.
NEVER_KNOWN: dict[str, str] = {
    "__lws_lc_tag": "the log-tag list is what patch 0004 locks",
    "__lws_lc_untag": "the log-tag list is what patch 0004 locks",
    "__lws_lc_tag_append": "the log-tag list is what patch 0004 locks",
}


@dataclass(frozen=True)
class KnownRace:
    id: str
    tool: str
    kind: str
    at: tuple[str, ...]  # each the function whose own code made one of the racing accesses
    via: tuple[str, ...]  # each among the top frames of some access stack
    reason: str
    upstream: str
    rare: bool = False  # seen in CI, but not in the stored sample run (tests/data)
    versions: str = ""  # the release line whose code it is ("4.1.0 - 4.1.6"); "" = the 4.3+ sample's

    def covers(self, version: str) -> bool:
        """Whether the entry describes code of `version` (entries without `versions`: 4.3 and later)."""
        from lwsbuild.source.releases import in_range

        return in_range(self.versions or "4.3.0 - 99", version)

    def matches(self, finding: Finding) -> bool:
        if finding.tool != self.tool or finding.kind != self.kind:
            return False
        tops = {fn for stack in finding.functions for fn in stack[:TOP_FRAMES]}
        return all(fn in finding.accessed_in for fn in self.at) and all(fn in tops for fn in self.via)


SHAPE = Table({}, {"race": [Table({"id": str, "kind": str, "reason": str},
                                  {"tool": str, "at": [str], "via": [str], "upstream": str, "rare": bool,
                                   "versions": str})]})


@cache
def load() -> tuple[KnownRace, ...]:
    data = resources.read(resources.resource("known_races.toml"), SHAPE)
    return tuple(_entry(entry) for entry in data.get("race", []))


def _entry(entry: dict[str, Any]) -> KnownRace:  # one [[race]] table of known_races.toml
    race = KnownRace(entry["id"], entry.get("tool", "ThreadSanitizer"), entry["kind"], tuple(entry.get("at", ())),
                     tuple(entry.get("via", ())), " ".join(entry["reason"].split()), entry.get("upstream", ""),
                     bool(entry.get("rare", False)), entry.get("versions", ""))
    forbidden = [fn for fn in race.at + race.via if fn in NEVER_KNOWN]
    if forbidden:
        raise KnownRacesError(f"known_races.toml entry {race.id!r} names {forbidden[0]}: {NEVER_KNOWN[forbidden[0]]}")
    if not race.at and not race.via:
        raise KnownRacesError(f"known_races.toml entry {race.id!r} names no function: it would match every "
                              f"{race.kind} report")
    return race


# The recursive mutex's own fields: its unlocked read of lock_owner (mutex-refcount-owner) races with
# the owner's write whoever the caller is; 0004 made the log-tag code such a caller (it takes the
# context lock). An access made in this code is on the mutex, never on the log-tag list.
MUTEX_OWN = frozenset({"lws_mutex_refcount_lock", "lws_mutex_refcount_unlock"})


def never_known(finding: Finding) -> str:
    """Why this report can never be a known one ("" if it can): an access stack through the log-tag
    code, unless that access was the recursive mutex's own."""
    accessed = finding.accessed_in or ("",) * len(finding.functions)
    for stack, access in zip(finding.functions, accessed, strict=False):
        if access in MUTEX_OWN:
            continue
        for fn in stack:
            if fn in NEVER_KNOWN:
                return f"{fn}: {NEVER_KNOWN[fn]}"
    return ""


def classify(findings: list[Finding], races: tuple[KnownRace, ...] | None = None) -> list[Finding]:
    """Mark each finding that matches a known upstream report (and is not in fixed code)."""
    races = load() if races is None else races
    classified = []
    for finding in findings:
        match = None if never_known(finding) else next((r for r in races if r.matches(finding)), None)
        classified.append(replace(finding, known=match.id, known_reason=match.reason) if match else finding)
    return classified


def failing(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.known]


def verdict(findings: list[Finding]) -> str:
    return "defect" if failing(findings) else "clean"
