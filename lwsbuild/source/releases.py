"""version → Release: the pinned upstream releases declared in releases.toml."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from lwsbuild.errors import UnknownVersionError
from lwsbuild.resources import load
from lwsbuild.resources.load import Each, Table


@dataclass(frozen=True)
class Release:
    version: str  # "4.3.5"
    tag: str  # "v4.3.5"
    date: str  # commit date, YYYY-MM-DD
    commit: str | None  # None only for an unpinned release
    tree_id: str | None  # None only for an unpinned release
    mirrors: tuple[str, ...]  # source specs, tried in order
    debian_suites: tuple[str, ...] = ()
    # Submodule links (path, commit) of the pinned tree: no archive or directory can carry one, so
    # tree-id verification adds them before comparing (sources/treeid.py).
    gitlinks: tuple[tuple[str, str], ...] = ()
    # What lws_get_library_version() says, where upstream did not bump CMakeLists.txt for the tag.
    reports_version: str | None = None

    @property
    def pinned(self) -> bool:
        return self.tree_id is not None

    @property
    def source_date_epoch(self) -> int:
        day = _dt.date.fromisoformat(self.date)
        return int(_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC).timestamp())



def version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise UnknownVersionError(f"'{version}' is not a version number like 4.3.5") from None


def in_range(versions: str, version: str) -> bool:
    """Whether `version` lies in `versions`, a data file's "A.B.C" or "A.B.C - X.Y.Z" (inclusive);
    False when either is not a version number."""
    low, _, high = versions.partition(" - ")
    try:
        return version_key(low) <= version_key(version) <= version_key(high or low)
    except UnknownVersionError:
        return False


def normalize(version: str) -> str:
    return version.removeprefix("v")


SHAPE = Table({"default": str, "mirrors": [str],
               "release": Each(Table({"tag": str, "date": str, "commit": str, "tree_id": str},
                                     {"debian_suites": [str], "gitlinks": Each(str), "reports_version": str}))})


@cache
def _data() -> dict[str, Any]:
    return load.read(load.resource("releases.toml"), SHAPE)


def default_version() -> str:
    default: str = _data()["default"]
    return default


def all_releases() -> list[Release]:
    return sorted((get(v) for v in _data()["release"]), key=lambda r: version_key(r.version))


def _mirrors(tag: str) -> tuple[str, ...]:
    return tuple(m.replace("{tag}", tag) for m in _data()["mirrors"])


def get(version: str, allow_unpinned: bool = False) -> Release:
    version = normalize(version)
    entry = _data()["release"].get(version)
    if entry is None:
        version_key(version)  # a malformed version is its own error
        if not allow_unpinned:
            raise UnknownVersionError(f"libwebsockets {version} is not a pinned release")
        tag = f"v{version}"
        return Release(version, tag, _dt.date.today().isoformat(), None, None, _mirrors(tag))
    return Release(
        version=version,
        tag=entry["tag"],
        date=entry["date"],
        commit=entry["commit"],
        tree_id=entry["tree_id"],
        mirrors=_mirrors(entry["tag"]),
        debian_suites=tuple(entry.get("debian_suites", ())),
        gitlinks=tuple(sorted(entry.get("gitlinks", {}).items())),
        reports_version=entry.get("reports_version"),
    )
