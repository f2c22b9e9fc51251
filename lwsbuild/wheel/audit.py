"""`lwsbuild audit [WHEEL|PREFIX]`: the CVE status of an existing build.

The status is computed now, from the build's provenance.json (which fixes the series applied) and
its lws_config.h (which code is compiled in), against today's lwsbuild/resources/cves.toml: a CVE learned of
after the build shows up too. The SBOM the build carries (share/lwsbuild/sbom.cdx.json) is read
alongside; where its recorded state differs from today's, the row says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from lwsbuild.build import provenance
from lwsbuild.build.provenance import Provenance
from lwsbuild.common import bounded, prefix
from lwsbuild.errors import UnreadableInput, UsageError
from lwsbuild.series import carried, cves
from lwsbuild.series.carried import Carried


@dataclass(frozen=True)
class BuildFiles:
    where: str
    provenance: Provenance | Carried  # Carried: a package another's tools built (share/lwsbuild/series.json)
    config_h: str
    sbom: dict[str, Any] | None

    @property
    def described(self) -> tuple[str, str]:
        """(lws version, variant) of the build: a packaged one names its packager as the variant."""
        if isinstance(self.provenance, Carried):
            return self.provenance.lws_version, self.provenance.packager
        return self.provenance.lws.version, self.provenance.variant


_WHEEL_HINT = "pass a wheel made by `lwsbuild wheel`"


def _from_wheel(path: Path) -> BuildFiles:
    with bounded.open_zip(path, f"the wheel {path}", UnreadableInput) as wheel:
        names = set(wheel.names())

        def read(rel: str) -> bytes | None:
            name = prefix.in_wheel(rel)
            return wheel.read(name) if name in names else None

        described, config_h, sbom = (read(prefix.PROVENANCE), read(prefix.CONFIG_H), read(prefix.SBOM))
    if described is None or config_h is None:
        raise UsageError(f"{path} holds no lwsbuild build ({prefix.in_wheel(prefix.PROVENANCE)} or "
                         f"{prefix.in_wheel(prefix.CONFIG_H)} is missing)", hint=_WHEEL_HINT)
    return BuildFiles(str(path), provenance.loads(described, f"{path}: {prefix.in_wheel(prefix.PROVENANCE)}"),
                      config_h.decode("utf-8", errors="replace"),
                      bounded.json_object(sbom, f"{path}: {prefix.SBOM_NAME}", UnreadableInput) if sbom is not None else None)


def _from_prefix(root: Path) -> BuildFiles:
    described, config_h = root / prefix.PROVENANCE, root / prefix.CONFIG_H
    sbom = root / prefix.SBOM
    packaged = root / prefix.SERIES
    if not described.is_file() and packaged.is_file() and config_h.is_file():  # e.g. /usr of a Debian package
        return BuildFiles(str(root), carried.read(packaged),
                          bounded.read_bytes(config_h, str(config_h), UnreadableInput).decode("utf-8", errors="replace"),
                          None)
    if not described.is_file() or not config_h.is_file():
        raise UsageError(f"{root} is not an lwsbuild install prefix ({prefix.PROVENANCE} or {prefix.CONFIG_H} "
                         "is missing)", hint="pass a prefix printed by `lwsbuild build --json`, or a wheel")
    return BuildFiles(str(root), provenance.read(described),
                      bounded.read_bytes(config_h, str(config_h), UnreadableInput).decode("utf-8", errors="replace"),
                      bounded.read_json(sbom, str(sbom), UnreadableInput) if sbom.is_file() else None)


def load_build(target: Path) -> BuildFiles:
    """A wheel file or an install prefix."""
    if target.is_file():
        return _from_wheel(target)
    if target.is_dir():
        return _from_prefix(target)
    raise UsageError(f"{target} does not exist", hint="pass a wheel (.whl) or an install prefix")


def _sbom_states(sbom: dict[str, Any] | None, where: str) -> dict[str, str | None]:
    """CVE id -> the analysis state the SBOM recorded (None where it recorded none). An SBOM of
    another shape than lwsbuild writes (CycloneDX's vulnerabilities[].analysis.state) is refused."""
    def shape(what: str, value: object, expected: str) -> UnreadableInput:
        shown = json.dumps(value)
        return UnreadableInput(f"{where}: {what} is {shown if len(shown) <= 40 else shown[:37] + '...'}, "
                               f"expected {expected} (not an SBOM lwsbuild wrote)")

    states: dict[str, str | None] = {}
    vulnerabilities = (sbom or {}).get("vulnerabilities", [])
    if not isinstance(vulnerabilities, list):
        raise shape("vulnerabilities", vulnerabilities, "an array")
    for v in vulnerabilities:
        if not isinstance(v, dict) or not isinstance(v.get("id"), str):
            raise shape("a vulnerability", v, 'an object with an "id" string')
        analysis = v.get("analysis", {})
        if not isinstance(analysis, dict):
            raise shape(f"{v['id']}'s analysis", analysis, "an object")
        state = analysis.get("state")
        if state is not None and not isinstance(state, str):
            raise shape(f"{v['id']}'s analysis state", state, "a string")
        states[v["id"]] = state
    return states


class Report(TypedDict):
    """`lwsbuild audit --json`; the build's facts come from its provenance.json."""

    build: str  # the wheel or prefix audited
    lws_version: str
    series: str
    variant: str
    unfixed: bool
    marks: list[str]
    sbom: bool  # whether the build carries an SBOM
    cves: list[dict[str, object]]  # CveStatus.to_json() with the SBOM's state and whether it agrees
    exploitable: list[str]  # CVE ids


def audit(target: Path) -> Report:
    files = load_build(target)
    statuses = cves.build_status(files.provenance, cves.macros_defined(files.config_h))
    recorded = _sbom_states(files.sbom, f"{files.where}: {prefix.SBOM_NAME}")
    rows: list[dict[str, object]] = []
    for status in statuses:
        row = status.to_json()
        row["sbom_state"] = recorded.get(status.cve.id)
        row["sbom_agrees"] = None if files.sbom is None else recorded.get(status.cve.id) == status.state
        rows.append(row)
    described = files.provenance
    version, variant = files.described
    return {"build": files.where, "lws_version": version, "series": described.series,
            "variant": variant, "unfixed": described.unfixed,
            "marks": list(described.marks), "sbom": files.sbom is not None, "cves": rows,
            "exploitable": [s.cve.id for s in statuses if s.state == "exploitable"]}


def render(report: Report) -> str:
    marks = "".join(f" [{m}]" for m in report["marks"])
    lines = [(f"lws {report['lws_version']}  variant {report['variant']}  series {report['series']}{marks}  "
              f"({report['build']})"),
             f"{'CVE':16} {'state':13} {'fix':5} {'series did':14} detail"]
    for row in report["cves"]:
        note = ""
        if row["sbom_agrees"] is False:
            note = f"  [the build's SBOM says {row['sbom_state']}]"
        lines.append(f"{row['id']:16} {row['state']:13} {row['fix']:5} {row['fix_status']:14} {row['detail']}{note}")
    if not report["sbom"]:
        lines.append("note: this build carries no SBOM (built before lwsbuild wrote one); statuses computed from "
                     "provenance.json and lws_config.h")
    lines.append(f"{len(report['exploitable'])} exploitable" + (f": {', '.join(report['exploitable'])}"
                                                                 if report["exploitable"] else ""))
    return "\n".join(lines)
