"""The SBOM of a build: CycloneDX 1.5 JSON, written at install time beside provenance.json.

One component (the libwebsockets library as built), its pedigree (the pinned upstream release, the
commit, and the patches applied to it: each of our diffs, with the CVEs it resolves), and a VEX
`vulnerabilities` array: every known CVE (lwsbuild/resources/cves.toml) with its analysis state on this build
(resolved / not_affected with justification / exploitable, lwsbuild/series/cves.py). Deterministic: the
serial number comes from the build key and the timestamp from SOURCE_DATE_EPOCH, so a rebuilt wheel
has the same bytes.

`python -m lwsbuild.build.sbom --provenance P --config lws_config.h --out FILE` is the install step of the
CMake project (cmake/CMakeLists.txt).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lwsbuild.build import provenance
from lwsbuild.build.provenance import Provenance
from lwsbuild.errors import LwsbuildError
from lwsbuild.series import cves
from lwsbuild.series import fixes as series
from lwsbuild.series.fixes import PatchRecord

__all__ = ["build_sbom", "main"]  # the public surface (lwsbuild/__init__.py)

SPEC_VERSION = "1.5"
_NAMESPACE = uuid.UUID("6f1c0b7e-3d7a-4d0e-9a51-6c7b9f2e0a11")  # lwsbuild's own: serials from build keys


def _purl(version: str) -> str:
    return f"pkg:github/warmcat/libwebsockets@v{version}"


def _patch_text(entry: PatchRecord) -> str | None:
    """The diff applied, read from the series (its sha256 must match what provenance recorded)."""
    if not entry.patch:
        return None
    path = series.series_dir() / entry.patch
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if entry.sha256 and hashlib.sha256(data).hexdigest() != entry.sha256:
        return None
    return data.decode("utf-8", errors="replace")


def build_sbom(described: Provenance, defined: set[str]) -> dict[str, Any]:
    lws = described.lws
    version = lws.version
    ref = f"libwebsockets@{version}"
    statuses = cves.build_status(described, defined)
    resolves: dict[str, list[str]] = {}
    for cve in cves.known():
        resolves.setdefault(cve.fix, []).append(cve.id)

    patches: list[dict[str, object]] = []
    for entry in described.patches:
        if entry.status not in ("applied", "reverted"):
            continue  # upstream / not-needed / absent: nothing was changed in the tree
        # Ours, or (UNFIXED builds) upstream's change taken out again: neither is upstream's own patch.
        patch: dict[str, object] = {"type": "unofficial"}
        text = _patch_text(entry)
        if text is not None:
            patch["diff"] = {"text": {"contentType": "text/x-diff", "content": text}}
        ids = resolves.get(entry.id, [])
        if ids and entry.status == "applied":
            patch["resolves"] = [{"type": "security", "id": i, "name": i} for i in ids]
        elif entry.status == "applied":
            patch["resolves"] = [{"type": "defect", "id": f"lwsbuild-{entry.id}", "name": entry.title}]
        patches.append(patch)

    properties = [
        {"name": "lwsbuild:series", "value": described.series},
        {"name": "lwsbuild:variant", "value": described.variant},
        {"name": "lwsbuild:unfixed", "value": str(described.unfixed).lower()},
        {"name": "lwsbuild:tree_id", "value": lws.tree_id},
        {"name": "lwsbuild:prepared_tree_id", "value": described.prepared_tree_id},
        {"name": "lwsbuild:build_key", "value": described.build_key},
        *({"name": "lwsbuild:mark", "value": m} for m in described.marks),
    ]
    for entry in described.patches:
        properties.append({"name": f"lwsbuild:fix:{entry.id}", "value": entry.status})

    component = {
        "type": "library", "bom-ref": ref, "name": "libwebsockets", "version": version,
        "description": f"libwebsockets {version} built by lwsbuild ({described.variant} variant)",
        "licenses": [{"license": {"id": "MIT"}}], "purl": _purl(version),
        "pedigree": {
            "ancestors": [{"type": "library", "bom-ref": f"upstream:{ref}", "name": "libwebsockets",
                           "version": version, "purl": _purl(version)}],
            "commits": [{"uid": str(lws.commit)}],
            **({"patches": patches} if patches else {}),
        },
        "properties": properties,
    }
    vulnerabilities: list[dict[str, object]] = []
    for status in statuses:
        analysis: dict[str, object] = {"state": status.state, "detail": status.detail}
        if status.justification:
            analysis["justification"] = status.justification
        if status.state == "resolved":
            analysis["response"] = ["update"]
        vuln: dict[str, object] = {"bom-ref": f"vex:{status.cve.id}", "id": status.cve.id, "source": {"name": "NVD"},
                "description": status.cve.summary, "analysis": analysis,
                "affects": [{"ref": ref}],
                "properties": [{"name": "lwsbuild:fix", "value": status.cve.fix},
                               {"name": "lwsbuild:fix_status", "value": status.fix_status}]}
        if status.cve.cwe.startswith("CWE-"):
            vuln["cwes"] = [int(status.cve.cwe[4:])]
        vulnerabilities.append(vuln)

    epoch = described.source_date_epoch
    product = f"lwsbuild-build:{described.build_key}"
    return {
        "bomFormat": "CycloneDX", "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_NAMESPACE, described.build_key)}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "lwsbuild",
                                      "version": described.lwsbuild_version}]},
            # The product this SBOM describes: the native part of an lwsbuild wheel / prefix, which
            # is libwebsockets as built (bom-refs are unique, so it is a component of its own).
            "component": {"type": "library", "bom-ref": product, "name": "lwsbuild-native",
                          "version": f"{version}-{described.variant}-{described.series}",
                          "description": "the native part of an lwsbuild build: libwebsockets, its headers and tools"},
        },
        "components": [component],
        "dependencies": [{"ref": product, "dependsOn": [ref]}, {"ref": ref, "dependsOn": []}],
        "vulnerabilities": vulnerabilities,
    }


def write_sbom(provenance_path: Path, config_h: Path, out: Path) -> dict[str, object]:
    sbom = build_sbom(provenance.read(provenance_path), cves.config_macros(config_h))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(sbom, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)
    return sbom


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lwsbuild.build.sbom")
    parser.add_argument("--provenance", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True, help="the build's lws_config.h")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        write_sbom(args.provenance, args.config, args.out)
    except (OSError, ValueError, KeyError) as exc:
        print(f"lwsbuild: error: cannot write the SBOM {args.out}: {exc} (fix: rebuild; the prefix's "
              f"provenance.json and include/lws_config.h must be readable)", file=sys.stderr)
        return 5
    except LwsbuildError as exc:
        return exc.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
