"""A distribution's own security patches for a release, read at run time and set against ours.

Debian's source package of a release carries its security fixes in debian/patches (a `series`
file, DEP-3 headers). `lwsbuild debian-patches` finds the security suite's source package through
this machine's apt configuration (a private apt state, as the `debian` mirror does), downloads its
.debian.tar.xz by the sha256 the signed index gives (cached under downloads/<sha256>/ like every
verified download), reads the patch series, and classifies each patch: does it apply to the pinned
tree, which CVEs does it name, and what does our series do about them (lwsbuild/resources/cves.toml). Nothing
of it is kept in this repository; the diffs the series applies are ours.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from lwsbuild.common import cache, tools
from lwsbuild.common.records import Record
from lwsbuild.errors import PATCH, MirrorFailed
from lwsbuild.series import cves
from lwsbuild.series.fixes import PreparedTree
from lwsbuild.source import debian
from lwsbuild.source.archive import download
from lwsbuild.source.releases import Release
from lwsbuild.source.treeid import isolated_git_env

_PACKAGE = "libwebsockets"
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def security_archive() -> debian.AptEntry:
    """The Debian security archive this machine's apt is configured with (its own address: the
    security suites are served apart from the main archive)."""
    for path, text in debian.apt_source_files():
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
                if ("deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no"
                        and any(s.endswith("-security") for s in fields.get("Suites", "").split())):
                    return debian.AptEntry(fields.get("URIs", "").split()[0], fields.get("Signed-By"))
        else:
            for line in text.splitlines():
                words = shlex.split(line.split("#", 1)[0]) if line.strip() else []
                options = [w for w in words if w.startswith("[") or w.endswith("]") or "=" in w]
                plain = [w for w in words if w not in options]
                if len(plain) >= 3 and plain[0] == "deb" and plain[2].endswith("-security"):
                    signed = next((o.split("=", 1)[1].rstrip("]") for o in options if "signed-by=" in o), None)
                    return debian.AptEntry(plain[1], signed)
    raise MirrorFailed("no Debian security archive in this machine's apt sources (/etc/apt/sources.list*)")


class _SecurityApt(debian._PrivateApt):
    """The debian mirror's private apt, with a deb-src line for one security suite."""

    # Deliberately not calling super().__init__: it would list the main archive.
    def __init__(self, suite: str) -> None:
        self.root = cache.area("apt") / f"security-{suite}"
        entry = security_archive()
        signed = f" [signed-by={entry.signed_by}]" if entry.signed_by else ""
        for sub in ("lists/partial", "archives/partial", "parts"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        (self.root / "sources.list").write_text(f"deb-src{signed} {entry.uri} {suite} main\n")


class OurFix(TypedDict):
    """What our series does about one CVE a distribution patch names."""

    cve: str
    fix: str | None  # our fix's id (cves.toml), None if lwsbuild does not know the CVE
    status: str  # the fix's status on the prepared tree, or why there is none
    compiled_in: NotRequired[bool]  # only when the build's lws_config.h was given


@dataclass(frozen=True)
class DistroPatch(Record):
    name: str
    cves: tuple[str, ...]
    subject: str
    files: tuple[str, ...]
    on_release: str  # applies | present | conflict: against the pinned tree as released
    ours: tuple[OurFix, ...]  # per CVE the patch names


@dataclass(frozen=True)
class DistroPackage:
    version: str
    suite: str
    filename: str
    sha256: str
    patches: tuple[DistroPatch, ...]

    def to_json(self) -> dict[str, object]:
        return {"distribution": "debian", "version": self.version, "suite": self.suite, "filename": self.filename,
                "sha256": self.sha256, "patches": [p.to_json() for p in self.patches]}


def _package(apt: debian._PrivateApt, lock: Path, version: str) -> tuple[str, list[tuple[str, str, str]]] | None:
    """(package version, [(uri, filename, sha256)]) of the newest source package `apt` lists, if it
    has a .debian.tar.* (a native or 1.0 package has none: nothing to read)."""
    found = debian.source_files(apt, lock, version)
    if found is None or not any(".debian.tar." in filename for _, filename, _ in found[1]):
        return None
    return found


def locate_package(release: Release) -> tuple[str, str, list[tuple[str, str, str]]]:
    """(suite, package version, [(uri, filename, sha256)]) of the release's source package: the newest
    a security suite carries, else the one its own suites ship (Debian 12's 4.1.6-3 has no security
    upload: its patches are the package's own)."""
    suites = [f"{s}-security" for s in release.debian_suites if s not in ("sid", "unstable", "experimental")]
    if not release.debian_suites:
        raise MirrorFailed(f"Debian has no suite carrying libwebsockets {release.version}")
    for suite in suites:
        found = _package(_SecurityApt(suite), cache.area("apt") / f"security-{suite}", release.version)
        if found:
            return (suite, *found)
    own = "-".join(release.debian_suites)
    found = _package(debian._PrivateApt(release.debian_suites), cache.area("apt") / own, release.version)
    if found:
        return ("/".join(release.debian_suites), *found)
    raise MirrorFailed(f"no Debian suite ({', '.join([*suites, *release.debian_suites])}) carries "
                       f"libwebsockets {release.version}")


def locate(release: Release) -> tuple[str, str, str, str, str]:
    """(suite, package version, uri, filename, sha256) of the release's .debian.tar.*."""
    suite, version, files = locate_package(release)
    uri, filename, sha256 = next(f for f in files if ".debian.tar." in f[1])
    return suite, version, uri, filename, sha256


def read_patches(archive: Path) -> list[tuple[str, str]]:
    """(name, text) of each patch in debian/patches/series order."""
    with tarfile.open(archive) as tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}

        def text(name: str) -> str | None:
            member = members.get(name)
            handle = tar.extractfile(member) if member else None
            return handle.read().decode("utf-8", errors="replace") if handle else None

        series_text = text("debian/patches/series")
        if series_text is None:
            return []
        names = [line.split()[0] for line in series_text.splitlines() if line.strip() and not line.startswith("#")]
        return [(name, text(f"debian/patches/{name}") or "") for name in names]


def _header(patch_text: str) -> str:
    """The DEP-3 / git-format-patch header: everything before the first diff."""
    return re.split(r"^(?:diff --git |--- )", patch_text, maxsplit=1, flags=re.MULTILINE)[0]


def _subject(header: str) -> str:
    match = re.search(r"^(?:Subject|Description):\s*(?:\[PATCH[^\]]*\]\s*)?(.+)$", header, re.MULTILINE)
    if match:
        return match.group(1).strip()
    # git-log style: "Author: …" / "Date: …" fields, a blank line, then the title
    lines = header.splitlines()
    while lines and (re.match(r"^[A-Za-z-]+: ", lines[0]) or lines[0].startswith("From ")):
        lines.pop(0)
    return next((line.strip() for line in lines if line.strip()), "")


def _check(tree: Path, patch: Path, *flags: str) -> bool:
    git = tools.require("git", "checking a distribution's patch", PATCH)
    env = isolated_git_env({"GIT_CEILING_DIRECTORIES": str(tree.parent)})
    return subprocess.run([git, "apply", "--check", "-p1", *flags, str(patch)], cwd=tree, env=env,
                          capture_output=True, check=False).returncode == 0


def classify(name: str, text: str, pristine: Path, prepared: PreparedTree, defined: set[str] | None) -> DistroPatch:
    header = _header(text)
    named = tuple(dict.fromkeys(_CVE.findall(name + "\n" + header)))
    files = tuple(dict.fromkeys(f.split("/", 1)[1] for f in re.findall(r"^\+\+\+ (\S+)", text, re.MULTILINE)
                                if "/" in f))
    with cache.scratch("distro-patch") as scratch:
        path = scratch / "p.patch"
        path.write_text(text)
        on_release = ("applies" if _check(pristine, path) else "present" if _check(pristine, path, "-R")
                      else "conflict")
    results = {r.fix.id: r.status for r in prepared.results}
    known = {c.id: c for c in cves.known()}
    ours: list[OurFix] = []
    for cve_id in named:
        cve = known.get(cve_id)
        if cve is None:
            ours.append({"cve": cve_id, "fix": None, "status": "unknown to lwsbuild (add it to cves.toml)"})
            continue
        entry: OurFix = {"cve": cve_id, "fix": cve.fix, "status": results.get(cve.fix, "not in series")}
        if defined is not None:
            entry["compiled_in"] = cve.is_compiled_in(defined)
        ours.append(entry)
    return DistroPatch(name, named, _subject(header), files, on_release, tuple(ours))


def debian_security_patches(prepared: PreparedTree, defined: set[str] | None = None) -> DistroPackage:
    release = prepared.source.release
    suite, version, uri, filename, sha256 = locate(release)
    with cache.scratch("distro") as scratch:
        archive = download(uri, filename, sha256, scratch)
        patches = read_patches(archive)
    return DistroPackage(version, suite, filename, sha256,
                         tuple(classify(n, t, prepared.source.path, prepared, defined) for n, t in patches))


def render(package: DistroPackage) -> str:
    lines = [(f"Debian {package.version} ({package.suite}): {len(package.patches)} patch(es), "
              f"{package.filename} sha256 {package.sha256[:16]}…")]
    for patch in package.patches:
        ours = "; ".join(f"{o['cve']}: fix {o['fix']} {o['status']}"
                         + ("" if o.get("compiled_in", True) else " (compiled out here)") for o in patch.ours)
        lines.append(f"  {patch.name:28} {patch.on_release:9} {ours or 'names no CVE'}")
    return "\n".join(lines)
