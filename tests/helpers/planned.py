"""Planned builds without fetching anything: the real BuildSpec and its provenance (the one writer),
on a prepared tree that is only named. For tests of what reads provenance and names wheels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lwsbuild.build import cmake as build
from lwsbuild.build import variants
from lwsbuild.build.provenance import Provenance
from lwsbuild.series import fixes as series
from lwsbuild.series.fixes import PatchRecord
from lwsbuild.source import releases
from lwsbuild.source.fetch import Source

NOWHERE = Path("/nonexistent/lwsbuild-test")


def spec(variant: str = "release", *, series_name: str = "all", unfixed: bool = False, unpinned: bool = False,
         defines: dict[str, str] | None = None, version: str | None = None, where: Path = NOWHERE) -> build.BuildSpec:
    release = releases.get(version or releases.default_version())
    source = Source(release, release.tree_id or "0" * 40, "dir:x", where / "tree", unpinned, True)
    prepared = series.PreparedTree(source, series.select(series_name), unfixed, where / "prepared", "f" * 40, ())
    chosen = variants.get(variant)
    return build.plan(prepared, chosen, variants.options_for(chosen, defines or {}, release.version))


def provenance(variant: str = "release", *, statuses: dict[str, str] | None = None, **kwargs: object) -> Provenance:
    """spec(...).provenance(), with the fixes of `statuses` (fix id -> applied, upstream, ...) recorded
    as the series would on the release."""
    described = spec(variant, **kwargs).provenance()  # type: ignore[arg-type]
    if statuses is None:
        return described
    fixes = {f.id: f for f in series.select(series.ALL).fixes}
    patches = []
    for fix_id, status in statuses.items():
        line = fixes[fix_id].line_for(described.lws.version)
        assert line is not None, (fix_id, described.lws.version)
        patches.append(PatchRecord(id=fix_id, status=status, title=fixes[fix_id].title, versions=line.versions,
                                   form=line.form, upstream=line.upstream or None, patch=line.patch or None,
                                   sha256=line.sha256 or None, not_needed=line.not_needed or None,
                                   unexpected=False))
    return dataclasses.replace(described, patches=tuple(patches))
