"""What lwsbuild costs on top of CMake, measured side by side in one run.

  1. cold `lwsbuild build` (fresh cache seeded with the verified source tree: patch, configure,
     build, install) vs the same CMake project configured, built and installed by hand from the
     same spec, alternating, ROUNDS times each; ratio of the medians (goal <= 1.05);
  2. a warm `lwsbuild build` that finds its build in the cache (goal <= 0.3 s), and within it the
     cost of checking the cache entries it uses against their manifests (sizes and times), timed in
     process on the same entries; a warm `lwsbuild build --refresh` (every byte hashed, tree ids
     computed again) beside it;
  3. `lwsbuild --help` (goal <= 0.3 s).

Usage: python bench/build_overhead.py [--rounds N] [--variant release]
The first fetch of the source (a download) is not part of any number. ccache is disabled for both
sides, so neither is served from a compiler cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))


def _env(cache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(CHECKOUT), CCACHE_DISABLE="1")
    if cache is not None:
        env["LWSBUILD_CACHE"] = str(cache)
    return env


def _timed(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return elapsed, result.stdout


def _lwsbuild(*args: str) -> list[str]:
    return [sys.executable, "-m", "lwsbuild", *args]


def _seeded_cache(root: Path, source: dict) -> Path:
    """A fresh cache holding only the verified pristine tree (cache.py's trees/<tree-id> layout)."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=root))
    shutil.copytree(source["path"], cache / "trees" / source["tree_id"], symlinks=True)
    meta = Path(source["path"]).with_suffix(".json")
    if meta.is_file():
        shutil.copyfile(meta, cache / "trees" / f"{source['tree_id']}.json")
    return cache


def _by_hand(root: Path, cache: Path, variant: str) -> float:
    """configure + build + install of the same project and spec, with plain cmake."""
    os.environ["LWSBUILD_CACHE"] = str(cache)
    from lwsbuild.build import cmake as build
    from lwsbuild.build import variants
    from lwsbuild.series import fixes as series
    from lwsbuild.source import fetch as sources
    from lwsbuild.source import releases

    release = releases.get(releases.default_version())
    prepared = series.prepare(sources.fetch(release), series.select(series.ALL))
    spec = build.plan(prepared, variants.get(variant), variants.options_for(variants.get(variant), {}, release.version))
    work = Path(tempfile.mkdtemp(prefix="by-hand-", dir=root))
    spec_file = build.write_spec(spec, work)
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    env = dict(build.cmake_env(spec), CCACHE_DISABLE="1")
    jobs = str(os.cpu_count() or 2)
    start = time.perf_counter()
    for command in (["cmake", "-S", str(build.PROJECT_DIR), "-B", str(work / "build"), *generator,
                     f"-DLWSBUILD_SPEC={spec_file}", f"-DCMAKE_C_COMPILER={spec.compiler.path}"],
                    ["cmake", "--build", str(work / "build"), "-j", jobs],
                    ["cmake", "--install", str(work / "build"), "--prefix", str(work / "prefix")]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}")
    return time.perf_counter() - start


def _cache_checks(cache: Path) -> float:
    """The median time of the cheap checks a warm build makes: the tree, the prepared tree, the prefix."""
    os.environ["LWSBUILD_CACHE"] = str(cache)
    from lwsbuild.common import cache as entries

    used = [*(cache / "trees").glob("[0-9a-f]*[!n]"), *(cache / "prepared").glob("[0-9a-f]*[!n]"),
            *(cache / "builds").glob("*/prefix")]
    used = [entry for entry in used if entry.is_dir()]
    times = []
    for _ in range(9):
        start = time.perf_counter()
        for entry in used:
            if entries.check(entry, full=False) != []:
                raise SystemExit(f"{entry} does not pass its check")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", default="release")
    args = parser.parse_args()

    _, out = _timed(_lwsbuild("fetch", "--json"), _env(None if "LWSBUILD_CACHE" not in os.environ
                                                      else Path(os.environ["LWSBUILD_CACHE"])))
    source = json.loads(out)
    with tempfile.TemporaryDirectory(prefix="lwsbuild-bench-") as scratch:
        root = Path(scratch)
        tool, hand = [], []
        # The prepared tree the by-hand side builds is made (uncounted) before its clock starts.
        for _ in range(args.rounds):
            cache = _seeded_cache(root, source)
            elapsed, _ = _timed(_lwsbuild("build", "--variant", args.variant, "--json"), _env(cache), cwd=root)
            tool.append(elapsed)
            hand.append(_by_hand(root, _seeded_cache(root, source), args.variant))
        warm = [_timed(_lwsbuild("build", "--variant", args.variant), _env(cache), cwd=root)[0] for _ in range(9)]
        checks = _cache_checks(cache)
        refresh = [_timed(_lwsbuild("build", "--variant", args.variant, "--refresh"), _env(cache), cwd=root)[0]
                   for _ in range(3)]
        helps = [_timed(_lwsbuild("--help"), _env(cache), cwd=root)[0] for _ in range(10)]

    ratio = statistics.median(tool) / statistics.median(hand)
    rows = [
        ("cold lwsbuild build", f"{statistics.median(tool):.2f} s", " ".join(f"{t:.2f}" for t in tool)),
        ("cold cmake by hand", f"{statistics.median(hand):.2f} s", " ".join(f"{t:.2f}" for t in hand)),
        ("  ratio (goal <= 1.05)", f"{ratio:.3f}", "ok" if ratio <= 1.05 else "OVER"),
        ("warm lwsbuild build (goal <= 0.3 s)", f"{statistics.median(warm):.3f} s",
         "ok" if statistics.median(warm) <= 0.3 else "OVER"),
        ("  of it: checking tree, prepared, prefix", f"{checks:.3f} s",
         f"{checks / statistics.median(warm):.0%} of the warm build"),
        ("warm lwsbuild build --refresh", f"{statistics.median(refresh):.3f} s",
         f"{statistics.median(refresh) / statistics.median(warm):.1f}x the warm build"),
        ("lwsbuild --help (goal <= 0.3 s)", f"{statistics.median(helps):.3f} s",
         "ok" if statistics.median(helps) <= 0.3 else "OVER"),
    ]
    print(f"variant {args.variant}, {args.rounds} cold rounds, medians; {os.cpu_count()} CPUs")
    for name, value, note in rows:
        print(f"  {name:36} {value:>10}   {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
