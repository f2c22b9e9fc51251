"""Hostile sources (issue 9): what a mirror delivers can be refused, never run, never written outside.

A mirror can withhold or delay a tree; it must not get a command run, a file written outside the
cache, or unverified bytes accepted. These tests need no libwebsockets tree: they use a tiny
stand-in tree with --allow-unpinned (the checks run before and regardless of the tree id), or call
the source machinery directly with a release pinned to the stand-in's tree id.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, run_cli
from helpers import cachestate
from helpers.archives import evil_git_dir, fake_tree, tar_of, tree_entries, write_tar, zip_of
from helpers.checks import error_line
from helpers.gitrepo import git, make_repo
from helpers.loopback import LoopbackServer, RawServer
from lwsbuild.source.releases import Release

UNPINNED = ("--allow-unpinned",)


def _assert_refused(result: CliResult, exit_code: int = 3) -> str:
    """One error line with a fix hint and the expected exit code; no traceback, nothing on stdout."""
    assert result.returncode == exit_code, result.stderr
    line = error_line(result)
    assert "Traceback" not in result.stderr and "(fix: " in line, line
    assert result.stdout == ""
    return line


def _assert_cache_clean(cache: Path) -> None:
    if cache.exists():
        assert cachestate.entries(cache) == set()
        assert cachestate.leftovers(cache) == set()


# --- 1. a `.git` inside a tree -------------------------------------------------------------------

def _evil_entries(tmp_path: Path, git_path: str, marker: Path) -> list[tuple[str, str, bytes | str]]:
    tree = fake_tree(tmp_path / "tree")
    entries = tree_entries(tree)
    for rel, data in evil_git_dir(marker).items():
        entries.append(("file", f"{git_path}/{rel}", data))
    return entries


@pytest.mark.parametrize("kind, git_path", [
    *[("tar", name) for name in (".git", "lib/.git", ".GIT", "lib/.Git", ".git.", "git~1")],
    ("zip", ".git"), ("zip", "lib/.GIT"),
])
def test_archive_with_a_git_dir_is_refused_and_runs_nothing(kind: str, git_path: str, tmp_path: Path) -> None:
    marker = tmp_path / "filter-ran"
    entries = _evil_entries(tmp_path, git_path, marker)
    archive = (tar_of if kind == "tar" else zip_of)(tmp_path / f"evil.{kind}", entries)
    cache = tmp_path / "cache"
    # `patch` copies the tree and runs `git apply` in it: where a .git's filter would run.
    result = run_cli("patch", "--source", f"archive:{archive}", *UNPINNED, cache=cache)
    line = _assert_refused(result)
    assert ".git path" in line and git_path in line
    assert not marker.exists(), "the .git's filter ran"
    _assert_cache_clean(cache)


def test_archive_with_a_git_file_is_refused(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "tree")
    archive = tar_of(tmp_path / "evil.tar", [*tree_entries(tree), ("file", "lib/.git", b"gitdir: /tmp\n")])
    result = run_cli("fetch", "--source", f"archive:{archive}", *UNPINNED, cache=tmp_path / "cache")
    assert "'libwebsockets-4.3.5/lib/.git'" in _assert_refused(result)


@pytest.mark.parametrize("git_path", ["lib/.git", ".GIT"])
def test_dir_with_a_nested_git_dir_is_refused(git_path: str, tmp_path: Path) -> None:
    marker = tmp_path / "filter-ran"
    tree = fake_tree(tmp_path / "tree", {f"{git_path}/{rel}": data for rel, data in evil_git_dir(marker).items()})
    cache = tmp_path / "cache"
    result = run_cli("patch", "--source", f"dir:{tree}", *UNPINNED, cache=cache)
    assert ".git path" in _assert_refused(result)
    assert not marker.exists()
    _assert_cache_clean(cache)


def test_dir_checkout_top_level_git_is_left_out_not_copied(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "tree")
    make_repo(tree, "v4.3.5")  # a checkout: its own .git is metadata, not source
    result = run_cli("fetch", "--source", f"dir:{tree}", *UNPINNED, "--json", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert not (Path(result.json["path"]) / ".git").exists()


def _commit_with_git_entry(repo: Path, marker: Path, name: str) -> None:
    """Give `repo`'s v4.3.5 a tree holding a `.git`-like directory `name` (made with plumbing: porcelain
    refuses)."""
    def blob(data: bytes) -> str:
        return subprocess.run(["git", "hash-object", "-w", "--stdin"], input=data, cwd=repo, capture_output=True,
                              check=True).stdout.decode().strip()

    def mktree(lines: list[str]) -> str:
        return subprocess.run(["git", "mktree"], input="".join(f"{line}\n" for line in lines).encode(), cwd=repo,
                              capture_output=True, check=True).stdout.decode().strip()

    files = evil_git_dir(marker)
    info = mktree([f"100644 blob {blob(files['info/attributes'])}\tattributes"])
    keep = mktree([f"100644 blob {blob(b'')}\t.keep"])
    objects = mktree([f"040000 tree {keep}\tinfo"])
    refs = mktree([f"040000 tree {keep}\theads"])
    dot_git = mktree([f"100644 blob {blob(files['HEAD'])}\tHEAD", f"100644 blob {blob(files['config'])}\tconfig",
                      f"040000 tree {info}\tinfo", f"040000 tree {objects}\tobjects", f"040000 tree {refs}\trefs"])
    top = git("ls-tree", "HEAD", cwd=repo).splitlines()
    tree = mktree([*top, f"040000 tree {dot_git}\t{name}"])
    commit = git("commit-tree", tree, "-m", "evil", cwd=repo)
    git("tag", "-f", "v4.3.5", commit, cwd=repo)


# git archive (2.39) itself refuses '.git' and its NTFS spellings, but not HFS+'s (ignorable code
# points): a macOS checkout or copy of such a tree has a working .git.
@pytest.mark.parametrize("name", [".g\u200cit", "\ufeff.git"])
def test_git_mirror_whose_tree_holds_a_git_dir_is_refused(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "filter-ran"
    repo = make_repo(fake_tree(tmp_path / "repo"), "v4.3.5")
    _commit_with_git_entry(repo, marker, name)
    cache = tmp_path / "cache"
    result = run_cli("patch", "--source", f"git+file://{repo}@v4.3.5", *UNPINNED, cache=cache)
    assert ".git path" in _assert_refused(result)
    assert not marker.exists()
    _assert_cache_clean(cache)


def test_git_apply_discovers_no_repository_in_the_tree(tmp_path: Path) -> None:
    """Even a tree that somehow holds a .git (an old cache entry): patching runs no filter of it."""
    from lwsbuild.series import fixes as series

    marker = tmp_path / "filter-ran"
    tree = fake_tree(tmp_path / "tree", {f".git/{rel}": data for rel, data in evil_git_dir(marker).items()})
    # A .git above the tree too: discovery must not climb to it.
    for rel, data in evil_git_dir(marker).items():
        (tmp_path / ".git" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ".git" / rel).write_bytes(data)
    patch = tmp_path / "p.patch"
    patch.write_text("--- a/lib/core-net/client/connect3.c\n+++ b/lib/core-net/client/connect3.c\n"
                     "@@ -1 +1 @@\n-int connect3(void) { return 0; }\n+int connect3(void) { return 1; }\n")
    assert series._git_apply(tree, patch, "--check").returncode == 0
    assert series._git_apply(tree, patch).returncode == 0
    assert (tree / "lib/core-net/client/connect3.c").read_text() == "int connect3(void) { return 1; }\n"
    assert not marker.exists(), "git apply obeyed a .git's config"


# --- 2. git+ spec injection ----------------------------------------------------------------------

@pytest.mark.parametrize("template", [
    "git+--upload-pack=touch {marker};true",
    "git+--upload-pack=touch {marker};true@v4.3.5",
    "git+{repo}@--upload-pack=touch injected;true",
    "git+ext::sh -c touch% {marker}",
    "git+fd::0",
])
def test_git_spec_cannot_inject_an_option_or_a_command(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "injected"  # the command runs in tmp_path (cwd) when it runs at all
    repo = make_repo(fake_tree(tmp_path / "repo"), "v4.3.5")
    spec = template.format(marker=marker, repo=repo)
    cache = tmp_path / "cache"
    result = run_cli("fetch", "--source", spec, *UNPINNED, cache=cache, cwd=tmp_path, timeout=60)
    _assert_refused(result, exit_code=2)
    assert not marker.exists(), "a command from the spec ran"
    _assert_cache_clean(cache)


@pytest.mark.parametrize("spec, message", [("git+http://127.0.0.1:9/x.git", "http:// transport is not allowed"),
                                           ("archive:ftp://127.0.0.1:9/x.tar.gz", "ftp:// archives are not supported")])
def test_transports_outside_the_allowed_ones_are_refused(spec: str, message: str, tmp_path: Path) -> None:
    result = run_cli("fetch", "--source", spec, *UNPINNED, cache=tmp_path, timeout=60)
    assert message in _assert_refused(result, exit_code=2)


def test_git_missing_repository_says_so_in_one_sentence(tmp_path: Path) -> None:
    result = run_cli("fetch", "--source", f"git+file://{tmp_path}/missing@v4.3.5", *UNPINNED, cache=tmp_path / "c")
    line = _assert_refused(result)
    assert "and the repository exists" not in line
    assert "does not appear to be a git repository" in line


# --- 3. tar extraction that does not rely on tarfile's 'data' filter -----------------------------

def _realpath_overflow_tar(out: Path, climb: int) -> Path:
    """The realpath-overflow bypass of tarfile's 'data' filter (CPython < 3.11.13/3.12.11): links
    through directories so deep that os.path.realpath gives up resolving, so "escape" looks inside
    the destination while the kernel takes it `climb` levels above it."""
    comp, steps = "d" * 247, "abcdefghijklmnop"
    entries: list[tuple[str, str, bytes | str]] = []
    path = ""
    for step in steps:
        entries += [("dir", f"{path}{comp}", b""), ("symlink", f"{path}{step}", comp)]
        path = f"{path}{comp}/"
    linkpath = "/".join(steps) + "/" + "l" * 254
    entries += [("symlink", linkpath, "../" * len(steps)), ("symlink", "escape", linkpath + "/.." * climb),
                ("file", "escape/outside.txt", b"written outside\n")]
    return tar_of(out, entries, prefix="")


def test_tar_realpath_overflow_cannot_write_outside_the_cache(tmp_path: Path) -> None:
    # Extraction happens in <cache>/trees/.staging-*/tree.raw: climbing 4 levels leaves the cache;
    # the deep directories around it keep any miscount inside tmp_path.
    base = tmp_path / "a" / "b" / "c" / "d" / "e" / "f"
    cache = base / "cache"
    archive = _realpath_overflow_tar(tmp_path / "overflow.tar", climb=4)
    result = run_cli("fetch", "--source", f"archive:{archive}", *UNPINNED, cache=cache)
    _assert_refused(result)
    assert not list(tmp_path.rglob("outside.txt")), "a member was written outside the destination"
    _assert_cache_clean(cache)


@pytest.mark.parametrize("entries, message", [
    ([("symlink", "lib", "."), ("symlink", "lib2", "lib/../.."), ("file", "x", b"")], "link leaving the tree"),
    ([("symlink", "a", "b"), ("symlink", "b", "a"), ("symlink", "c", "a/x")], "loops or leaves the tree"),
    ([("symlink", "up", ".."), ("file", "up/evil.txt", b"x")], "member under a link"),
    ([("hardlink", "h", "/etc/passwd")], "escapes the tree"),
    ([("hardlink", "h", "../../outside")], "escapes the tree"),
    ([("fifo", "pipe", b"")], "special member"),
    ([("file", "x", b"1"), ("file", "x", b"2")], "two members named"),
    ([("file", "f", b"1"), ("file", "f/under", b"2")], "member under a file"),
])
def test_tar_members_are_checked_without_the_data_filter(entries: list[tuple[str, str, Any]], message: str,
                                                          tmp_path: Path) -> None:
    from lwsbuild.errors import UnsafeArchive
    from lwsbuild.source import archive

    out = tar_of(tmp_path / "t.tar", [("file", "CMakeLists.txt", b"x\n"), *entries])
    (tmp_path / "scratch").mkdir()
    with pytest.raises(UnsafeArchive, match=message):
        archive.extract(out, tmp_path / "scratch" / "tree")
    assert list((tmp_path / "scratch").iterdir()) == []


# --- 4. one deadline per download ----------------------------------------------------------------

def _small_archive(tmp_path: Path) -> Path:
    return write_tar(fake_tree(tmp_path / "small"), tmp_path / "small.tar.gz")


def test_trickled_download_stops_at_the_deadline(tmp_path: Path) -> None:
    archive = _small_archive(tmp_path)
    with LoopbackServer({"x.tar.gz": archive}) as server:
        server.trickle = (1, 0.25)  # the whole file would take minutes
        started = time.monotonic()
        result = run_cli("fetch", "--source", f"archive:{server.url('x.tar.gz')}", *UNPINNED, cache=tmp_path / "c",
                         env={"LWSBUILD_DOWNLOAD_TIMEOUT": "2"}, timeout=60)
        elapsed = time.monotonic() - started
    line = _assert_refused(result)
    assert "took longer than 2 s" in line and "LWSBUILD_DOWNLOAD_TIMEOUT" in line
    assert elapsed < 20, elapsed  # the whole body would take minutes; 2 s + start-up on a loaded machine
    _assert_cache_clean(tmp_path / "c")


def test_trickled_headers_stop_at_the_deadline(tmp_path: Path) -> None:
    # A status line a byte every 0.5 s: each read succeeds, only a total deadline can end it.
    with RawServer(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n", pause=0.5) as server:
        started = time.monotonic()
        result = run_cli("fetch", "--source", f"archive:{server.url('x.tar.gz')}", *UNPINNED, cache=tmp_path / "c",
                         env={"LWSBUILD_DOWNLOAD_TIMEOUT": "2"}, timeout=60)
        elapsed = time.monotonic() - started
    assert "took longer than 2 s" in _assert_refused(result)
    assert elapsed < 20, elapsed  # the whole body would take minutes; 2 s + start-up on a loaded machine


def test_stalled_git_fetch_stops_at_the_deadline(tmp_path: Path) -> None:
    # A git:// server answering one byte a second: git's own reads never time out.
    with RawServer(b"0" * 100, pause=1.0) as server:
        started = time.monotonic()
        result = run_cli("fetch", "--source", f"git+git://127.0.0.1:{server.port}/lws.git@v4.3.5", *UNPINNED,
                         cache=tmp_path / "c", env={"LWSBUILD_DOWNLOAD_TIMEOUT": "2"}, timeout=60)
        elapsed = time.monotonic() - started
    assert "took longer than 2 s" in _assert_refused(result)
    assert elapsed < 20, elapsed
    _assert_cache_clean(tmp_path / "c")


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_bad_download_timeout_is_a_usage_error(value: str, tmp_path: Path) -> None:
    with LoopbackServer({}) as server:
        result = run_cli("fetch", "--source", f"archive:{server.url('x.tar.gz')}", *UNPINNED, cache=tmp_path,
                         env={"LWSBUILD_DOWNLOAD_TIMEOUT": value}, timeout=60)
    assert "LWSBUILD_DOWNLOAD_TIMEOUT" in _assert_refused(result, exit_code=2)


# --- 5. bounded extraction -----------------------------------------------------------------------

def _declared_bomb(out: Path, size: int) -> Path:
    """A gzip tar whose one member declares `size` bytes but carries 64 KiB: the header alone must stop it."""
    header = tarfile.TarInfo("libwebsockets-4.3.5/huge.bin")
    header.size = size
    raw = header.tobuf(format=tarfile.GNU_FORMAT) + bytes(64 * 1024)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    out.write_bytes(compressor.compress(raw) + compressor.flush())
    return out


def test_archive_declaring_more_than_the_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    archive = _declared_bomb(tmp_path / "bomb.tar.gz", 2 << 30)
    result = run_cli("fetch", "--source", f"archive:{archive}", *UNPINNED, cache=tmp_path / "c")
    assert "expands to more than 1024 MiB" in _assert_refused(result)
    _assert_cache_clean(tmp_path / "c")


def _zeros_tar_gz(out: Path, members: int, size: int) -> Path:
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        for index in range(members):
            info = tarfile.TarInfo(f"libwebsockets-4.3.5/zeros-{index}.bin")
            info.size = size
            tar.addfile(info, io.BytesIO(bytes(size)))
    return out


@pytest.mark.parametrize("limit, members, size, message", [
    ("MAX_TREE_BYTES", 1, 8 << 20, "expands to more than 1 MiB"),
    ("MAX_TREE_MEMBERS", 200, 10, "has more than 50 members"),
])
def test_extraction_stops_at_the_size_and_member_limits(limit: str, members: int, size: int, message: str,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lwsbuild.errors import UnsafeArchive
    from lwsbuild.source import admission, archive

    monkeypatch.setattr(admission, limit, {"MAX_TREE_BYTES": 1 << 20, "MAX_TREE_MEMBERS": 50}[limit])
    bomb = _zeros_tar_gz(tmp_path / "bomb.tar.gz", members, size)
    dest = tmp_path / "scratch" / "tree"
    dest.parent.mkdir()
    with pytest.raises(UnsafeArchive, match=message):
        archive.extract(bomb, dest)
    # Refused before writing what it declared: at most what fit under the limit reached the disk.
    written = sum(p.stat().st_size for p in (tmp_path / "scratch").rglob("*") if p.is_file())
    assert written <= 1 << 20
    assert list((tmp_path / "scratch").iterdir()) == []


def test_zip_declaring_more_than_the_limit_is_refused_before_a_byte(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from lwsbuild.errors import UnsafeArchive
    from lwsbuild.source import admission, archive

    monkeypatch.setattr(admission, "MAX_TREE_BYTES", 1 << 20)
    out = zip_of(tmp_path / "bomb.zip", [("file", "zeros.bin", bytes(4 << 20))])
    (tmp_path / "scratch").mkdir()
    with pytest.raises(UnsafeArchive, match="declares more than"):
        archive.extract(out, tmp_path / "scratch" / "tree")
    assert list((tmp_path / "scratch").iterdir()) == []


# --- 6. malformed input: one line, never a traceback ---------------------------------------------

@pytest.mark.parametrize("entries, message", [
    ([("file", "a", b"x"), ("symlink", "a", "CMakeLists.txt")], "two members named"),
    ([("symlink", "a", "CMakeLists.txt"), ("symlink", "a", "README")], "two members named"),
    ([("file", "f", b"x"), ("file", "f/under", b"y")], "member under a file"),
    ([("symlink", "l", "."), ("file", "l/x", b"y")], "member under a link"),
])
def test_malformed_zip_is_one_line(entries: list[tuple[str, str, Any]], message: str, tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "bad.zip", [("file", "CMakeLists.txt", b"x\n"), *entries])
    result = run_cli("fetch", "--source", f"archive:{archive}", *UNPINNED, cache=tmp_path / "c")
    assert message in _assert_refused(result)
    _assert_cache_clean(tmp_path / "c")


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_dir_with_a_fifo_or_socket_is_one_line(kind: str, tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "tree")
    special = tree / "lib" / "special"
    if kind == "fifo":
        os.mkfifo(special)
        holder = None
    else:
        holder = socket.socket(socket.AF_UNIX)
        holder.bind(str(special))
    try:
        result = run_cli("fetch", "--source", f"dir:{tree}", *UNPINNED, cache=tmp_path / "c", timeout=60)
    finally:
        if holder is not None:
            holder.close()
    assert f"has a {kind}" in _assert_refused(result)
    _assert_cache_clean(tmp_path / "c")


@pytest.mark.parametrize("kind", ["dir", "archive"])
def test_a_100_kb_source_path_is_one_short_line(kind: str, tmp_path: Path) -> None:
    result = run_cli("fetch", "--source", f"{kind}:/{'x' * 100_000}", *UNPINNED, cache=tmp_path)
    line = _assert_refused(result, exit_code=2)
    assert len(line) < 500


@pytest.mark.parametrize("kind", ["dir", "archive"])
def test_a_path_with_an_overlong_component_is_one_line(kind: str, tmp_path: Path) -> None:
    result = run_cli("fetch", "--source", f"{kind}:/tmp/{'x' * 300}/y", *UNPINNED, cache=tmp_path)
    line = _assert_refused(result)
    assert len(line) < 500


@pytest.mark.parametrize("reply", [
    b"garbage, not HTTP\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
])
def test_broken_http_mirror_is_one_line_and_the_next_mirror_is_tried(reply: bytes, tmp_path: Path) -> None:
    good = _small_archive(tmp_path)
    with RawServer(reply) as bad:
        bad_url = bad.url("x.tar.gz")
        alone = run_cli("fetch", "--source", f"archive:{bad_url}", *UNPINNED, cache=tmp_path / "c1",
                        timeout=60)
        assert "not valid HTTP" in _assert_refused(alone)
        both = run_cli("fetch", "--source", f"archive:{bad_url}", "--source", f"archive:{good}",
                       *UNPINNED, "--json", cache=tmp_path / "c2", timeout=60)
    assert both.returncode == 0, both.stderr
    assert both.json["mirror"] == f"archive:{good}"
    assert "Traceback" not in both.stderr
    assert next(line for line in both.stderr.splitlines() if "failed:" in line).startswith(
        f"lwsbuild: mirror archive:{bad_url} failed: download of")


@pytest.mark.parametrize("spec", ["dir:/nonexistent/lws", "archive:/nonexistent/lws.tar.gz",
                                  "git+file:///nonexistent/lws.git@v4.3.5", "archive:http://127.0.0.1:9/x.tar.gz"])
def test_every_source_error_carries_a_fix_hint(spec: str, tmp_path: Path) -> None:
    _assert_refused(run_cli("fetch", "--source", spec, *UNPINNED, cache=tmp_path, timeout=60))


# --- 7. the cache answers openly; --refresh verifies; unpinned deliveries never become the pin ----

@pytest.fixture()
def fake_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Release, Path]:
    """A release pinned to the stand-in tree's id and a commit no local repo has, in a fresh cache."""
    from lwsbuild.source.treeid import tree_id

    monkeypatch.setenv("LWSBUILD_CACHE", str(tmp_path / "cache"))
    tree = fake_tree(tmp_path / "pinned-tree")
    release = Release("4.3.5", "v4.3.5", "2024-01-01", "1" * 40, tree_id(tree), (f"dir:{tree}",))
    return release, tree


def test_unpinned_delivery_of_the_pinned_tree_is_never_reported_as_pinned(fake_pin: tuple[Release, Path],
                                                                          tmp_path: Path) -> None:
    from lwsbuild.errors import SourceError
    from lwsbuild.source import fetch as sources

    release, tree = fake_pin
    repo = make_repo(fake_tree(tmp_path / "repo"), "v4.3.5")  # the same tree, another commit
    spec = f"git+{repo}@v4.3.5"
    first = sources.fetch(release, [spec], allow_unpinned=True)
    assert (first.tree_id, first.unpinned, first.mirror) == (release.tree_id, True, spec)
    # Asked for the pin with a mirror that cannot deliver: the cached tree came only unpinned.
    dead = Release(**{**release.__dict__, "mirrors": (f"dir:{tmp_path}/nowhere",)})
    with pytest.raises(SourceError):
        sources.fetch(dead)
    # A pinned delivery is recorded beside it, and from then on the cache serves it as that mirror's.
    pinned = sources.fetch(release)
    assert (pinned.unpinned, pinned.mirror, pinned.cached) == (False, f"dir:{tree}", False)
    again = sources.fetch(dead)
    assert (again.unpinned, again.mirror, again.cached) == (False, f"dir:{tree}", True)


def test_cache_answering_a_named_source_says_so_and_refresh_verifies(fake_pin: tuple[Release, Path], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from lwsbuild.errors import TreeIdMismatch
    from lwsbuild.source import fetch as sources

    release, tree = fake_pin
    sources.fetch(release)
    capsys.readouterr()
    tampered = fake_tree(tmp_path / "tampered", {"lib/core-net/client/connect3.c": b"int connect3(void) { return 1; }\n"})
    spec = f"dir:{tampered}"
    cached = sources.fetch(release, [spec])
    assert cached.cached and cached.to_json()["from_cache"] is True
    note = capsys.readouterr().err
    assert "served from the cache" in note and "--refresh" in note
    with pytest.raises(TreeIdMismatch):
        sources.fetch(release, [spec], refresh=True)
    refreshed = sources.fetch(release, [f"dir:{tree}"], refresh=True)
    assert (refreshed.cached, refreshed.to_json()["from_cache"], refreshed.unpinned) == (False, False, False)


def test_refresh_is_an_option_of_every_command_taking_sources(tmp_path: Path) -> None:
    for command in ("fetch", "patch", "build", "wheel", "smoke", "stress", "prove", "config"):
        result = run_cli(command, "--help", cache=tmp_path)
        assert result.returncode == 0 and "--refresh" in result.stdout, command
