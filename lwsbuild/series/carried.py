"""What a package built by someone else's tools carries of the fix series: `share/lwsbuild/series.json`.

`lwsbuild export` writes it beside the patches it hands a packager (a Debian source package installs
it with the -dev package); `lwsbuild audit PREFIX` reads it where a prefix has no provenance.json, so
`lwsbuild audit /usr` tells what an installed distribution package carries. A fix the distribution
carries itself (its own patch names the fix's CVE) has status `distribution`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from lwsbuild.common import bounded
from lwsbuild.common.records import Record
from lwsbuild.errors import UnreadableInput
from lwsbuild.series.fixes import PatchRecord, PreparedTree

SCHEMA = 1
DISTRIBUTION = "distribution"  # a PatchRecord status: the packager's own patch closes it


@dataclass(frozen=True)
class Carried(Record):
    schema: int
    lws_version: str
    tree_id: str  # the pristine release tree the patches were checked against
    series: str
    packager: str  # "debian 4.3.5-1+deb13u3+lwsbuild1", "conan libwebsockets/4.3.5"
    patches: tuple[PatchRecord, ...]
    # CMake options the export gave the packager's build ({"LWS_MAX_SMP": "8"}); {}: theirs as they are
    configure: dict[str, str] = field(default_factory=dict)

    @property
    def unfixed(self) -> bool:
        return False  # export refuses --unfixed: nobody ships the bug on purpose

    @property
    def marks(self) -> tuple[str, ...]:
        return ()


def of(prepared: PreparedTree, packager: str, theirs: dict[str, str] | None = None,
       configure: dict[str, str] | None = None) -> Carried:
    """The record of `prepared`'s results; `theirs` maps a fix id to the packager's own patch that
    carries it instead of ours; `configure`, the CMake options the export set in the packager's build."""
    theirs = theirs or {}
    records = []
    for result in prepared.results:
        record = result.record()
        if result.fix.id in theirs:
            record = replace(record, status=DISTRIBUTION, patch=theirs[result.fix.id], sha256=None)
        records.append(record)
    return Carried(SCHEMA, prepared.source.release.version, prepared.source.tree_id, prepared.series.name,
                   packager, tuple(records), dict(configure or {}))


def read(path: Path) -> Carried:
    data = bounded.read_json(path, str(path), UnreadableInput)
    hint = "the file was not written by this lwsbuild's `export`: read it with the lwsbuild that wrote it"
    if data.get("schema") != SCHEMA:
        raise UnreadableInput(f"{path}: schema {data.get('schema')!r}, this lwsbuild reads {SCHEMA}", hint=hint)
    try:
        patches = tuple(PatchRecord(**entry) for entry in data["patches"])
        configure = data.get("configure", {})
        if not isinstance(configure, dict):
            raise TypeError(f"configure is {type(configure).__name__}, not an object")
        return Carried(SCHEMA, str(data["lws_version"]), str(data["tree_id"]), str(data["series"]),
                       str(data["packager"]), patches, {str(k): str(v) for k, v in configure.items()})
    except (KeyError, TypeError) as exc:
        raise UnreadableInput(f"{path}: not a series record ({exc})", hint=hint) from None
