"""What `lwsbuild verify` costs against the build it checks, measured side by side in one run.

Per round, alternating: a cold `lwsbuild build` and a cold `lwsbuild wheel` (each in a fresh cache
seeded with the verified source tree), then `lwsbuild verify` of that wheel (a rebuild in its own
private cache, seeded from the same tree, and the byte comparison). Prints the medians and the
ratios verify / cold wheel and verify / cold build.

Usage: python bench/verify_cost.py [--rounds N] [--variant release]
ccache is disabled everywhere, so no side is served from a compiler cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_overhead import _env, _lwsbuild, _seeded_cache, _timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", default="release")
    args = parser.parse_args()
    _, out = _timed(_lwsbuild("fetch", "--json"), _env())
    source = json.loads(out)
    builds, wheels, verifies = [], [], []
    with tempfile.TemporaryDirectory(prefix="lwsbuild-bench-") as scratch:
        root = Path(scratch)
        for round_ in range(args.rounds):
            elapsed, _ = _timed(_lwsbuild("build", "--variant", args.variant), _env(_seeded_cache(root, source)), root)
            builds.append(elapsed)
            cache = _seeded_cache(root, source)
            elapsed, out = _timed(_lwsbuild("wheel", "--variant", args.variant, "-o", str(root / f"w{round_}"),
                                            "--json"), _env(cache), root)
            wheels.append(elapsed)
            wheel = json.loads(out)["wheel"]
            elapsed, out = _timed(_lwsbuild("verify", wheel, "--json"), _env(cache), root)
            if not json.loads(out)["identical"]:
                raise SystemExit(f"verify found differences: {out}")
            verifies.append(elapsed)
    build, wheel, verify = (statistics.median(times) for times in (builds, wheels, verifies))
    print(f"variant {args.variant}, {args.rounds} rounds, medians")
    for name, value, times in (("cold lwsbuild build", build, builds), ("cold lwsbuild wheel", wheel, wheels),
                               ("lwsbuild verify WHEEL", verify, verifies)):
        print(f"  {name:24} {value:7.2f} s   ({' '.join(f'{t:.2f}' for t in times)})")
    print(f"  verify / cold wheel      {verify / wheel:7.2f}")
    print(f"  verify / cold build      {verify / build:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
