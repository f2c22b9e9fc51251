"""`git+URL[@REF]` mirrors through gitpython: remote URLs, local paths, bare repos, file:// URLs."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import MirrorFailed
from ..releases import Release
from .treeid import isolated_git_env


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
            return cls(spec, body, None)
        return cls(spec, url, ref)

    def materialize(self, release: Release, dest: Path) -> str | None:
        try:
            import git
        except ImportError as exc:  # gitpython refuses to import without a git executable
            raise MirrorFailed(f"git mirror unusable: {str(exc).splitlines()[0]}") from None

        ref = self.ref or release.tag
        local = "://" not in self.url or self.url.startswith("file://")
        with tempfile.TemporaryDirectory(prefix="lwsbuild-git-") as scratch:
            try:
                repo = git.Repo.init(scratch, bare=True)
                with repo.git.custom_environment(**isolated_git_env()):
                    # A shallow fetch of just the ref keeps an upstream fetch small.
                    depth = {} if local else {"depth": 1}
                    repo.git.fetch(self.url, f"+{_refspec(ref)}:refs/lwsbuild/want", no_tags=True, **depth)
                    commit = repo.commit("refs/lwsbuild/want")
            except (git.GitCommandError, ValueError) as exc:
                detail = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
                reason = detail[-1].strip().removeprefix("stderr: ").strip("' ") if detail else "failed"
                raise MirrorFailed(f"git fetch of {ref} from {self.url}: {reason}") from None
            dest.mkdir()
            # `git archive` writes exactly the committed tree: no .git, no attributes rewriting.
            try:
                archive = subprocess.run(["git", "--git-dir", scratch, "archive", "--format=tar", commit.hexsha],
                                         capture_output=True, env=isolated_git_env(), check=True).stdout
                subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, capture_output=True, check=True)
            except subprocess.CalledProcessError as exc:
                reason = (exc.stderr or b"").decode(errors="replace").strip() or f"exit {exc.returncode}"
                raise MirrorFailed(f"unpacking {ref} from {self.url} failed: {reason}") from None
        # Same tree, other commit (a re-made or rewritten history): not the pinned release.
        if release.commit and commit.hexsha != release.commit:
            return f"{self.url} {ref} is commit {commit.hexsha}, but libwebsockets {release.version} is pinned to commit {release.commit}"
        return None


def _refspec(ref: str) -> str:
    if ref.startswith("refs/") or len(ref) == 40:
        return ref
    return f"refs/tags/{ref}" if ref.startswith("v") else ref
