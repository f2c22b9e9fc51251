"""`git+URL[@REF]` mirrors: remote URLs, local paths, bare repos, file:// URLs.

git runs in a private bare repository with no user or system config, only over the transports in
ALLOWED_PROTOCOLS (no `ext::` or other remote helpers: they run commands), with the URL after `--`
(a URL or ref starting with '-' is refused: it would be an option), within the download deadline.
The tree is taken from the object database by `git archive` and written through the same checks as
an archive's members: a repository holding a `.git` path, a link out or a bomb is refused.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lwsbuild.common import cache, tools
from lwsbuild.errors import FETCH, GitFetchFailed, ToolMissing, UsageError
from lwsbuild.source.admission import TreeWriter, shown
from lwsbuild.source.archive import download_deadline_s, feed_tar
from lwsbuild.source.releases import Release
from lwsbuild.source.treeid import isolated_git_env

ALLOWED_PROTOCOLS = ("https", "git", "ssh", "file")
_SPEC_HINT = "use git+URL[@REF] with an https://, git://, ssh:// or file:// URL or a local path"


def _git_env() -> dict[str, str]:
    return isolated_git_env({"GIT_ALLOW_PROTOCOL": ":".join(ALLOWED_PROTOCOLS), "GIT_PROTOCOL_FROM_USER": "0",
                             "GIT_ATTR_NOSYSTEM": "1"})


# Config that keeps git from running anything a repository or the environment names.
_SAFE_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never",
                "-c", "core.attributesFile=/dev/null")


@dataclass(frozen=True)
class GitMirror:
    spec: str
    url: str
    ref: str | None

    @classmethod
    def parse(cls, spec: str) -> GitMirror:
        body = spec.removeprefix("git+")
        url, sep, ref = body.rpartition("@")
        # An '@' inside the URL (user@host:path) is not a ref separator.
        if not sep or not url or "/" in ref or ":" in ref:
            url, ref = body, ""
        if url.startswith("-") or ref.startswith("-"):
            raise UsageError(f"--source {shown(spec)}: a git URL or ref cannot start with '-' (git would read it "
                             "as an option)", hint=_SPEC_HINT)
        if re.search(r"[\x00-\x1f\x7f]", body):
            raise UsageError(f"--source {shown(spec)} has a control character", hint=_SPEC_HINT)
        helper = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)::", url)
        if helper:  # <transport>::<address> runs git-remote-<transport>; ext:: runs any command
            raise UsageError(f"--source {shown(spec)}: git remote helpers ({helper.group(1)}::) are not allowed",
                             hint=_SPEC_HINT)
        scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
        if scheme and scheme.group(1).lower() not in ALLOWED_PROTOCOLS:
            raise UsageError(f"--source {shown(spec)}: the {scheme.group(1)}:// transport is not allowed",
                             hint=_SPEC_HINT)
        return cls(spec, url, ref or None)

    def _git(self, scratch: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[bytes]:
        """git in its own process group: at the deadline the group is killed, so a transport helper
        (git-remote-https) cannot hold the pipes open past it."""
        command = [_git_program(), *_SAFE_CONFIG, "--git-dir", str(scratch), *args]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env=_git_env(), start_new_session=True) as proc:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise
        return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)

    def materialize(self, release: Release, dest: Path) -> str | None:
        _git_program()  # a machine without git: this mirror fails, the next one is tried
        ref = self.ref or release.tag
        local = "://" not in self.url or self.url.startswith("file://")
        deadline = download_deadline_s()
        with cache.scratch("git") as scratch:
            try:
                self._git(scratch, "init", "-q", "--bare", "--template=", timeout=60).check_returncode()
                # A shallow fetch of just the ref keeps an upstream fetch small; `--` ends the options.
                depth = [] if local else ["--depth=1"]
                fetched = self._git(scratch, "fetch", "-q", "--no-tags", *depth, "--", self.url,
                                    f"+{_refspec(ref)}:refs/lwsbuild/want", timeout=deadline)
                if fetched.returncode != 0:
                    raise GitFetchFailed(f"git fetch of {shown(ref, quote=False)} from {shown(self.url, quote=False)}: {_reason(fetched.stderr)}")
                resolved = self._git(scratch, "rev-parse", "--verify", "-q", "refs/lwsbuild/want^{commit}", timeout=60)
                commit = resolved.stdout.decode().strip()
                if resolved.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}", commit):
                    raise GitFetchFailed(f"{shown(ref, quote=False)} from {shown(self.url, quote=False)} is not a commit")
                self._unpack(scratch, commit, dest, ref)
            except subprocess.TimeoutExpired:
                raise GitFetchFailed(f"git fetch of {shown(ref, quote=False)} from {shown(self.url, quote=False)} took longer than {deadline:g} s",
                                     hint="the mirror is too slow or stalled: use another one, or set "
                                          "LWSBUILD_DOWNLOAD_TIMEOUT (seconds)") from None
            except subprocess.CalledProcessError as exc:
                raise GitFetchFailed(f"git could not make a private repository: {_reason(exc.stderr)}") from None
        # Same tree, other commit (a re-made or rewritten history): not the pinned release.
        if release.commit and commit != release.commit:
            return f"{self.url} {ref} is commit {commit}, but libwebsockets {release.version} is pinned to commit {release.commit}"
        return None

    def _unpack(self, scratch: Path, commit: str, dest: Path, ref: str) -> None:
        """`git archive` of the commit, streamed through the tree checks: exactly the committed
        tree, and nothing a hostile repository could add (a `.git` entry, a link out, a bomb)."""
        git = _git_program()
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen([git, *_SAFE_CONFIG, "--git-dir", str(scratch), "archive", "--format=tar", commit],
                                    stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=_git_env())
            assert proc.stdout is not None  # stdout=PIPE
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                    feed_tar(tar, TreeWriter(dest, f"{shown(self.url, quote=False)} {shown(ref, quote=False)}",
                                             seconds=download_deadline_s()))
                returncode = proc.wait(timeout=60)
            except (tarfile.TarError, OSError) as exc:
                raise GitFetchFailed(f"unpacking {shown(ref, quote=False)} from {shown(self.url, quote=False)} failed: {exc}") from None
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
            if returncode != 0:
                errors.seek(0)
                raise GitFetchFailed(f"unpacking {shown(ref, quote=False)} from {shown(self.url, quote=False)} failed: {_reason(errors.read())}")


def _git_program() -> str:
    try:
        return tools.require("git", "a git+ source", FETCH)
    except ToolMissing as exc:
        raise GitFetchFailed(str(exc), hint=exc.hint) from None


def _reason(stderr: bytes | str | None) -> str:
    """git's own first complaint: its 'fatal:'/'error:' line, not the advice that follows it."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal:", "error:"):
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()[:300]
    return (lines[0][:300] if lines else "failed")


def _refspec(ref: str) -> str:
    if ref.startswith("refs/") or len(ref) == 40:
        return ref
    return f"refs/tags/{ref}" if ref.startswith("v") else ref

