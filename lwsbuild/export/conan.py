"""The series as a Conan 2 recipe folder: conanfile.py, conandata.yml, patches/, test_package/.

conandata.yml pins the release's source by sha256 (the upstream tarball Debian's archive carries,
whose tree lwsbuild verifies by git tree id; its URLs: upstream's tag archive, then Debian's copy)
and lists, per version, every patch with `patch_file`, `patch_description`, `patch_type`
(`vulnerability` for a CVE fix, `bugfix` otherwise; `official` would be upstream's own commit, which
the series never applies: a fix upstream has is in the release already) and `patch_source`. The
tarball itself is placed in `download-cache/s/<sha256>`, Conan's source download cache layout, so
`conan create` builds offline with `core.sources:download_cache` pointed there. The recipe links
the system's OpenSSL (no other Conan package is required); test_package does a WebSocket round trip
on 127.0.0.1 through the packaged library.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from lwsbuild.common import cache, prefix
from lwsbuild.common.records import Record
from lwsbuild.errors import ExportError
from lwsbuild.export import quilt
from lwsbuild.series import carried
from lwsbuild.series.fixes import PreparedTree
from lwsbuild.source import debian
from lwsbuild.source.archive import download

RECIPE = "conan_recipe"  # the templates, beside this module
DOWNLOAD_CACHE = "download-cache"
ARCHIVE = "archive:"
# The recipe's fixed configure: lwsbuild's own base (variants.toml) where it matters to users of the
# package: 8 service threads (LWS_MAX_SMP, what the fixes are for), no test apps, reproducible.
CMAKE = {"LWS_MAX_SMP": "8", "LWS_WITHOUT_TESTAPPS": True, "LWS_WITH_MINIMAL_EXAMPLES": False,
         "LWS_REPRODUCIBLE": True, "CMAKE_DISABLE_FIND_PACKAGE_Git": True, "DISABLE_WERROR": True}


@dataclass(frozen=True)
class ConanExport(Record):
    recipe: str  # the folder: `conan create DIR --version V`
    version: str
    sha256: str
    urls: tuple[str, ...]
    download_cache: str  # core.sources:download_cache for an offline build
    patches: tuple[str, ...]


def _yaml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def patch_type(patch: quilt.QuiltPatch) -> str:
    return "vulnerability" if patch.cves else "bugfix"


def patch_source(patch: quilt.QuiltPatch) -> str:
    if patch.upstream_later:
        return quilt.UPSTREAM_COMMIT + patch.upstream_later[1]
    if patch.cves:
        return quilt.CVE_RECORD + patch.cves[0]
    return f"lwsbuild fix series, fix {patch.fix.id} ({patch.line.patch})"


def conandata(version: str, urls: tuple[str, ...], sha256: str, patches: list[quilt.QuiltPatch],
              record: carried.Carried) -> str:
    lines = ["sources:", f"  {_yaml(version)}:", "    url:", *[f"      - {_yaml(u)}" for u in urls],
             f"    sha256: {_yaml(sha256)}", "patches:", f"  {_yaml(version)}:"]
    for patch in patches:
        lines += [f"    - patch_file: {_yaml(f'patches/{version}/{patch.name}')}",
                  f"      patch_description: {_yaml(patch.fix.title)}",
                  f"      patch_type: {_yaml(patch_type(patch))}",
                  f"      patch_source: {_yaml(patch_source(patch))}"]
    lines += ["lwsbuild:", f"  {_yaml(version)}: {_yaml(json.dumps(record.to_json(), sort_keys=True))}"]
    return "\n".join(lines) + "\n"


def _source(prepared: PreparedTree) -> tuple[tuple[str, ...], str, str]:
    """(urls, sha256, file name): the release's upstream tarball, as Debian's archive carries it."""
    release = prepared.source.release
    uri, filename, sha256 = debian.DebianMirror().locate(release)
    upstream = tuple(m[len(ARCHIVE):] for m in release.mirrors if m.startswith(ARCHIVE))
    return (*upstream, uri), sha256, filename


def write(prepared: PreparedTree, out: Path) -> ConanExport:
    quilt.refuse_unfixed(prepared.unfixed)
    version = prepared.source.release.version
    if prepared.source.unpinned:
        raise ExportError(f"libwebsockets {version} is UNPINNED: a recipe pins its source by sha256 of a verified tree")
    urls, sha256, filename = _source(prepared)
    chosen = quilt.patches(prepared)
    record = carried.of(prepared, f"conan libwebsockets/{version}", configure={"LWS_MAX_SMP": str(CMAKE["LWS_MAX_SMP"])})
    templates = Path(__file__).parent / RECIPE
    cmake = ", ".join(f"{json.dumps(k)}: {v!r}" for k, v in CMAKE.items())
    for template in sorted(templates.rglob("*")):
        if template.is_file() and "__pycache__" not in template.parts:
            target = out / template.relative_to(templates).with_suffix("" if template.suffix == ".in" else template.suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(template.read_text().replace("@SERIES@", prepared.series.name)
                              .replace("@CMAKE@", cmake).replace("@RECORD_PATH@", prefix.SERIES))
    for patch in chosen:
        target = out / "patches" / version / patch.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(patch.text)
    (out / "conandata.yml").write_text(conandata(version, urls, sha256, chosen, record))
    cached = out / DOWNLOAD_CACHE / "s" / sha256
    cached.parent.mkdir(parents=True)
    with cache.scratch("conan-source") as scratch:
        shutil.copyfile(download(urls[-1], filename, sha256, scratch), cached)
    return ConanExport(str(out), version, sha256, urls, str(out / DOWNLOAD_CACHE),
                       tuple(f"patches/{version}/{p.name}" for p in chosen))
