"""The CI build matrix: pinned version × variant, each cell with its mirror chain and expected fixes.

`expected` is what `lwsbuild patch` must report per fix on that release (applied / upstream /
not-needed), read from the series' lines like `lwsbuild versions`; `forms` says what each fix is
there (ours / upstream / not-needed) with the upstream commit.

The JSON form is what GitHub Actions' `strategy.matrix` takes through `fromJSON`:
`{"include": [{"lws-version": "4.3.5", "variant": "asan", ...}, ...]}`.

Versions outside the fix series (some fix has no line for them) are left out of `all`, and naming one
explicitly is a usage error, as it is for every other command: such a cell could only fail, so the
matrix refuses to plan it rather than hand CI a job that is red by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lwsbuild.build import variants
from lwsbuild.build.variants import Variant
from lwsbuild.errors import UnknownVersionError, UnsupportedVersionError, UsageError
from lwsbuild.series import fixes as series
from lwsbuild.series.fixes import Line
from lwsbuild.source import releases
from lwsbuild.source.releases import Release

ALL = "all"
DEFAULT = "default"
# GitHub Actions refuses a matrix that expands to more jobs than this.
GITHUB_MAX_JOBS = 256


@dataclass(frozen=True)
class Cell:
    release: Release
    variant: Variant
    forms: dict[str, Line]  # fix id -> its line on this release (every fix covers a planned release)

    @property
    def expected(self) -> dict[str, str]:
        return {pid: series.expected_status(line) for pid, line in self.forms.items()}

    @property
    def stress(self) -> bool:
        """The stress harness proves the fix only under a sanitizer."""
        return self.variant.sanitizer is not None

    @property
    def smoke(self) -> bool:
        """The ctypes smoke needs the library in a Python process: a sanitizer that cannot be loaded
        there (variants.toml `python = false`: TSan) is not smoke-tested."""
        return self.variant.sanitizer is None or self.variant.sanitizer.python

    @property
    def verify(self) -> bool:
        """`lwsbuild verify` rebuilds elsewhere and compares bytes: a sanitizer build names its cache
        path in ASan's/UBSan's metadata (gcc 12), so only the others verify from another cache."""
        return self.variant.sanitizer is None

    def to_json(self) -> dict[str, Any]:
        return {
            "lws-version": self.release.version,
            "variant": self.variant.name,
            "tag": self.release.tag,
            "tree-id": self.release.tree_id,
            "mirrors": list(self.release.mirrors),
            "debian-suites": list(self.release.debian_suites),
            "expected": self.expected,
            "forms": {pid: f"upstream {line.upstream}" if line.upstream else line.form for pid, line in self.forms.items()},
            "needs": [pid for pid, line in self.forms.items() if line.form == "ours"],
            "sanitizer": self.variant.sanitizer_name,
            "smoke": self.smoke,
            "stress": self.stress,
            "verify": self.verify,
            "default": self.release.version == releases.default_version(),
        }


@dataclass(frozen=True)
class Matrix:
    cells: tuple[Cell, ...]

    def to_json(self) -> dict[str, Any]:
        return {"include": [cell.to_json() for cell in self.cells]}

    def render(self) -> str:
        ids = list(self.cells[0].expected) if self.cells else []
        header = (f"{'version':9} {'variant':8} {'smoke':5} {'stress':6} {'verify':6} " + " ".join(f"{i:10}" for i in ids)
                  + " mirrors")
        lines = [header]
        for cell in self.cells:
            chain = " > ".join(m.split("+", 1)[0].split(":", 1)[0] for m in cell.release.mirrors)
            lines.append(f"{cell.release.version:9} {cell.variant.name:8} {_yes(cell.smoke):5} {_yes(cell.stress):6} "
                         f"{_yes(cell.verify):6} "
                         + " ".join(f"{cell.expected[i]:10}" for i in ids) + f" {chain}")
        return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _items(values: list[str] | None) -> list[str]:
    """Repeated flags and comma-separated lists, flattened, first occurrence kept."""
    seen: list[str] = []
    for value in values or []:
        for item in value.split(","):
            item = item.strip()
            if item and item not in seen:
                seen.append(item)
    return seen


def select_versions(values: list[str] | None) -> list[Release]:
    """`all` = every pin the series supports; `default` or nothing = the default pin."""
    names = _items(values) or [DEFAULT]
    chosen: dict[str, Release] = {}
    for name in names:
        if name == ALL:
            picked = [r for r in releases.all_releases() if _supported(r)]
        else:
            picked = [_pinned_and_supported(releases.default_version() if name == DEFAULT else name)]
        for release in picked:
            chosen.setdefault(release.version, release)
    return list(chosen.values())


def _pinned_and_supported(name: str) -> Release:
    # The releases layer's hints point at --allow-unpinned / --lws-version, which the matrix has not.
    try:
        release = releases.get(name)
    except UnknownVersionError as exc:
        raise UnknownVersionError(str(exc), hint="the matrix builds pins only: `lwsbuild versions` lists them") from None
    try:
        series.check_supported(release, series.select(series.ALL))
    except UnsupportedVersionError as exc:
        raise UnsupportedVersionError(str(exc), hint="drop it from --versions; `--versions all` lists every "
                                                     "supported pin") from None
    return release


def _covering(release: Release) -> dict[str, Line]:
    """Every fix's line on a planned release (select_versions planned supported releases only)."""
    forms = series.forms(release)
    return {pid: line for pid, line in forms.items() if line is not None}


def _supported(release: Release) -> bool:
    return series.supported(release)


def select_variants(values: list[str] | None) -> list[Variant]:
    """`all` or nothing = every variant, in variants.toml order."""
    names = _items(values) or [ALL]
    chosen: dict[str, Variant] = {}
    for name in names:
        for picked in (variants.names() if name == ALL else [name]):
            chosen.setdefault(picked, variants.get(picked))
    return list(chosen.values())


def build_matrix(versions: list[str] | None = None, variant_names: list[str] | None = None) -> Matrix:
    chosen_variants = select_variants(variant_names)
    cells = tuple(Cell(release, variant, _covering(release))
                  for release in select_versions(versions) for variant in chosen_variants)
    if len(cells) > GITHUB_MAX_JOBS:
        raise UsageError(f"the matrix has {len(cells)} cells, more than the {GITHUB_MAX_JOBS} jobs GitHub Actions runs",
                         hint="narrow --versions or --variants")
    return Matrix(cells)
