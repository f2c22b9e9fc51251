"""The `debian` mirror: the upstream tarball (.orig.tar.gz) from Debian's source archive.

The archive address is read from this machine's apt configuration at run time; apt runs with a
private state directory and a `deb-src` list of its own, so the system's apt state is untouched.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lwsbuild.common import cache
from lwsbuild.errors import DebianMirrorFailed
from lwsbuild.source.archive import download, extract
from lwsbuild.source.releases import Release

_SOURCES = [Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")]
_PACKAGE = "libwebsockets"


@dataclass(frozen=True)
class AptEntry:
    uri: str
    signed_by: str | None


def _entries_from_deb822(text: str) -> list[AptEntry]:
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
        if "deb" not in fields.get("Types", "").split() or fields.get("Enabled", "yes") == "no":
            continue
        suites = fields.get("Suites", "").split()
        if not suites or any("security" in s for s in suites):
            continue
        for uri in fields.get("URIs", "").split():
            found.append(AptEntry(uri, fields.get("Signed-By")))
    return found


def _entries_from_list(text: str) -> list[AptEntry]:
    found = []
    for line in text.splitlines():
        words = shlex.split(line.split("#", 1)[0]) if line.strip() else []
        if not words or words[0] != "deb":
            continue
        options = {}
        if words[1].startswith("["):
            opts = []
            while not words[1].endswith("]"):
                opts.append(words.pop(1))
            opts.append(words.pop(1))
            options = dict(o.split("=", 1) for o in " ".join(opts).strip("[] ").split() if "=" in o)
        if len(words) >= 3 and "security" not in words[2]:
            found.append(AptEntry(words[1], options.get("signed-by")))
    return found


def apt_source_files() -> Iterator[tuple[Path, str]]:
    """(path, text) of this machine's apt source files: deb822 `.sources` and one-line `.list`."""
    for base in _SOURCES:
        files = sorted(base.glob("*")) if base.is_dir() else [base]
        for path in files:
            if path.is_file() and (path.suffix in (".sources", ".list") or path.name == "sources.list"):
                yield path, path.read_text(errors="replace")


def debian_archive() -> AptEntry:
    """The first Debian archive this machine's apt is configured with."""
    candidates: list[AptEntry] = []
    for path, text in apt_source_files():
        candidates += _entries_from_deb822(text) if path.suffix == ".sources" else _entries_from_list(text)
    for entry in candidates:
        if (entry.signed_by and "debian-archive-keyring" in entry.signed_by) or entry.uri.rstrip("/").endswith("/debian"):
            return entry
    raise DebianMirrorFailed("no Debian archive in this machine's apt sources (/etc/apt/sources.list*)")


class _PrivateApt:
    """apt-get/apt-cache with state, cache and source list of their own under the lwsbuild cache."""

    def __init__(self, suites: tuple[str, ...]) -> None:
        self.root = cache.area("apt") / "-".join(suites)
        entry = debian_archive()
        signed = f" [signed-by={entry.signed_by}]" if entry.signed_by else ""
        (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "parts").mkdir(exist_ok=True)
        (self.root / "status").touch()
        lines = "".join(f"deb-src{signed} {entry.uri} {suite} main\n" for suite in suites)
        (self.root / "sources.list").write_text(lines)

    def _options(self) -> list[str]:
        settings = {
            "Dir::State": self.root, "Dir::State::Lists": self.root / "lists",
            "Dir::State::status": self.root / "status", "Dir::Cache": self.root,
            "Dir::Cache::archives": self.root / "archives",
            "Dir::Etc::SourceList": self.root / "sources.list", "Dir::Etc::SourceParts": self.root / "parts",
            "APT::Sandbox::User": "root", "Acquire::Retries": "0", "Acquire::http::Timeout": "20",
        }
        return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]

    def run(self, tool: str, *args: str) -> str:
        try:
            result = subprocess.run([tool, *self._options(), *args], capture_output=True, text=True, timeout=300,
                                    check=False)
        except FileNotFoundError:
            raise DebianMirrorFailed(f"{tool} is not installed: the debian mirror needs apt") from None
        except subprocess.TimeoutExpired:
            raise DebianMirrorFailed(f"{tool} {args[0]} timed out") from None
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["failed"])[-1]
            raise DebianMirrorFailed(f"{tool} {args[0]}: {last}")
        return result.stdout


def newest(versions: list[str]) -> str:
    """The newest of Debian package versions, as dpkg orders them."""
    def newer(a: str, b: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, "gt", b], check=False).returncode == 0
    best = versions[0]
    for v in versions[1:]:
        if newer(v, best):
            best = v
    return best


def source_files(apt: _PrivateApt, lock: Path, version: str) -> tuple[str, list[tuple[str, str, str]]] | None:
    """(package version, [(uri, filename, sha256)]) of the newest source package of upstream `version`
    that `apt`'s suites list (the files its signed index gives a SHA256 for); None if they list none.
    The one reading of apt's source listings: the mirror takes the .orig tarball, debian-patches the
    .debian.tar.* of a suite's package."""
    with cache.lock(lock):
        apt.run("apt-get", "update", "-q")
        listed = re.findall(r"^Version: (\S+)$", apt.run("apt-cache", "showsrc", _PACKAGE), re.MULTILINE)
        matching = [v for v in listed if re.sub(r"^\d+:", "", v).split("-")[0] == version]
        if not matching:
            return None
        package_version = newest(matching)
        listing = apt.run("apt-get", "source", "--print-uris", "-q", f"{_PACKAGE}={package_version}")
    files = [(uri, filename, checksum.removeprefix("SHA256:"))
             for uri, filename, _size, checksum in re.findall(r"^'(\S+)' (\S+) (\d+) (\S+)$", listing, re.MULTILINE)
             if checksum.startswith("SHA256:")]
    return package_version, files


@dataclass(frozen=True)
class DebianMirror:
    spec: str = "debian"

    @classmethod
    def parse(cls, spec: str) -> DebianMirror:
        return cls(spec)

    def locate(self, release: Release) -> tuple[str, str, str]:
        """(uri, filename, sha256) of the release's .orig.tar.gz in Debian's archive."""
        if not release.debian_suites:
            raise DebianMirrorFailed(f"Debian carries no libwebsockets {release.version}",
                                     hint="use another mirror: --source git+URL@TAG, archive:URL|PATH or dir:PATH")
        found = source_files(_PrivateApt(release.debian_suites), cache.area("apt") / "-".join(release.debian_suites),
                             release.version)
        if found is None:
            raise DebianMirrorFailed(f"Debian's {'/'.join(release.debian_suites)} has no libwebsockets {release.version}",
                                     hint="use another mirror: --source git+URL@TAG, archive:URL|PATH or dir:PATH")
        for uri, filename, sha256 in found[1]:
            if filename.endswith((".orig.tar.gz", ".orig.tar.xz")):
                return uri, filename, sha256
        raise DebianMirrorFailed(f"Debian lists no upstream tarball with a SHA256 for libwebsockets {release.version}")

    def materialize(self, release: Release, dest: Path) -> None:
        uri, filename, sha256 = self.locate(release)
        extract(download(uri, filename, sha256, dest.parent), dest)
