"""Shared test fixtures: the checkout's CLI, one cache per test session, builds made once.

Tests run the checkout's code (`python -m pytest` from the repo root puts it first on sys.path;
CLI subprocesses get it through PYTHONPATH). Expensive things — the Debian download, each lws
build — happen once per session in a session cache and are shared by every test that needs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lwsbuild.source.releases import default_version

REPO = Path(__file__).resolve().parent.parent
# The release the tests build and fetch: releases.toml's default (Debian ships it, so CI can fetch it).
DEFAULT_LWS = default_version()


# What the shared fixtures below cost, as the markers pyproject.toml declares: network (a package
# registry: here the Debian archive), build (builds libwebsockets), venv (a venv with a wheel
# installed). The session's builds fetch their source from Debian unless the cache holds it already.
# Tests say what they cost with the markers themselves; a test that uses one of these fixtures,
# directly or through another, gets its markers here too, so `-m "not build and not network and
# not venv"` cannot pick up a test that forgot one.
_FIXTURE_COSTS: dict[str, tuple[str, ...]] = {
    "debian_fetch": ("network",),
    "release_build": ("build", "network"),
    "asan_build": ("build", "network"),
    "tsan_build": ("build", "network"),
    "asan_unfixed_build": ("build", "network"),
    "static_prefix": ("build", "network"),  # tests/test_link_tls.py
    "tls_build": ("build", "network"),
    "release_venv": ("venv",),
    "asan_venv": ("venv",),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = getattr(item, "fixturenames", ())  # every fixture the test reaches, through others too
        costs = {cost for fixture in used for cost in _FIXTURE_COSTS.get(fixture, ())}
        for cost in sorted(costs - {mark.name for mark in item.iter_markers()}):
            item.add_marker(cost)


Json = dict[str, Any]  # a command's --json output


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Json:
        data: Json = json.loads(self.stdout)
        return data


Cli = Callable[..., CliResult]  # the `cli` fixture: run_cli against the session cache


def run_cli(*args: str, cache: Path | None = None, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 900) -> CliResult:
    """Run `python -m lwsbuild ARGS` from the checkout, as a user would run `lwsbuild ARGS`."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    if cache is not None:
        full_env["LWSBUILD_CACHE"] = str(cache)
    result = subprocess.run([sys.executable, "-m", "lwsbuild", *args], capture_output=True, text=True,
                            cwd=cwd or REPO, env=full_env, timeout=timeout, check=False)
    return CliResult(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One lwsbuild cache for the whole session (LWSBUILD_TEST_CACHE reuses one across sessions).

    Exported as LWSBUILD_CACHE while the session runs, so in-process pipeline calls share it too.
    """
    reused = os.environ.get("LWSBUILD_TEST_CACHE")
    path = Path(reused) if reused else tmp_path_factory.mktemp("lwsbuild-cache")
    path.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LWSBUILD_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def cli(session_cache: Path) -> Cli:
    """`cli("build", "--json")` runs against the session cache."""
    def run(*args: str, **kwargs: Any) -> CliResult:
        kwargs.setdefault("cache", session_cache)
        return run_cli(*args, **kwargs)
    return run


def _build(cli: Cli, *args: str) -> Json:
    result = cli("build", "--json", *args)
    assert result.returncode == 0, result.stderr
    return result.json


@pytest.fixture(scope="session")
def release_build(cli: Cli) -> Json:
    return _build(cli, "--variant", "release")


@pytest.fixture(scope="session")
def asan_build(cli: Cli) -> Json:
    return _build(cli, "--variant", "asan")


@pytest.fixture(scope="session")
def tsan_build(cli: Cli) -> Json:
    return _build(cli, "--variant", "tsan")


@pytest.fixture(scope="session")
def asan_unfixed_build(cli: Cli) -> Json:
    """The bug on purpose (--unfixed), under ASan."""
    return _build(cli, "--variant", "asan", "--unfixed")


@pytest.fixture(scope="session")
def release_prefix(release_build: Json) -> Path:
    return Path(release_build["prefix"])


@pytest.fixture(scope="session")
def asan_prefix(asan_build: Json) -> Path:
    return Path(asan_build["prefix"])


@pytest.fixture(scope="session")
def tsan_prefix(tsan_build: Json) -> Path:
    return Path(tsan_build["prefix"])


# --- the verified default release's tree, fetched from the default mirror list once per session ----

@pytest.fixture(scope="session")
def debian_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of its own, always fresh, so the fetch below really walks the mirror list."""
    return tmp_path_factory.mktemp("debian-cache")


@pytest.fixture(scope="session")
def debian_fetch(debian_cache: Path) -> CliResult:
    """`lwsbuild fetch --json` with the default mirrors: the session's one Debian download."""
    return run_cli("fetch", "--json", cache=debian_cache, timeout=600)


@pytest.fixture(scope="session")
def lws_tree(debian_fetch: CliResult) -> Path:
    """The verified, pristine tree of the default release (read-only: copy it before changing it)."""
    assert debian_fetch.returncode == 0, debian_fetch.stderr
    return Path(debian_fetch.json["path"])


# --- wheels, and fresh venvs they are installed into (test_wheel.py, test_c_consumers.py) --------

def _wheel(cli: Cli, out_dir: Path, *args: str) -> Json:
    result = cli("wheel", "--json", "-o", str(out_dir), *args)
    assert result.returncode == 0, result.stderr
    return result.json


@pytest.fixture(scope="session")
def release_wheel_info(cli: Cli, release_build: Json, tmp_path_factory: pytest.TempPathFactory) -> Json:
    """`lwsbuild wheel --json` of the release build (made after the build: packaging only)."""
    return _wheel(cli, tmp_path_factory.mktemp("release-wheel"), "--variant", "release")


@pytest.fixture(scope="session")
def asan_wheel_info(cli: Cli, asan_build: Json, tmp_path_factory: pytest.TempPathFactory) -> Json:
    return _wheel(cli, tmp_path_factory.mktemp("asan-wheel"), "--variant", "asan")


@pytest.fixture(scope="session")
def release_wheel(release_wheel_info: Json) -> Path:
    return Path(release_wheel_info["wheel"])


@pytest.fixture(scope="session")
def asan_wheel(asan_wheel_info: Json) -> Path:
    return Path(asan_wheel_info["wheel"])


@dataclass(frozen=True)
class Venv:
    """A venv with an lwsbuild wheel installed; commands run outside the checkout, without PYTHONPATH."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def site_lwsbuild(self) -> Path:
        return next(self.root.glob("lib/python3*/site-packages/lwsbuild"))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD")}
        return {**env, "PATH": f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}", **extra}

    def run(self, *command: str | Path, cwd: Path | None = None, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd or self.root,
                              env=self.env(**env), timeout=timeout, check=False)


def install_wheel(wheel: Path, root: Path) -> Venv:
    """A fresh venv that sees this environment's packages (the wheel's dependencies, so no registry
    is asked) with `wheel` installed by pip from the file alone."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(root)], check=True, timeout=300)
    venv = Venv(root)
    if sys.prefix != sys.base_prefix:
        # The tests themselves run in a venv: --system-site-packages reaches only the base
        # interpreter's packages, so point the new venv at this one's too (after its own).
        site = next(root.glob("lib/python3*/site-packages"))
        paths = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
        (site / "_lwsbuild_test_parent_env.pth").write_text("\n".join(sorted(paths)) + "\n")
    # --ignore-installed: the same version may already be visible from the system site (CI installs
    # the checkout); it must land in this venv all the same.
    result = venv.run(venv.python, "-m", "pip", "install", "--no-index", "--no-deps", "--ignore-installed",
                      "--quiet", wheel)
    assert result.returncode == 0, result.stderr
    return venv


@pytest.fixture(scope="session")
def release_venv(release_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return install_wheel(release_wheel, tmp_path_factory.mktemp("release-venv"))


@pytest.fixture(scope="session")
def asan_venv(asan_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return install_wheel(asan_wheel, tmp_path_factory.mktemp("asan-venv"))
