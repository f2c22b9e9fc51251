"""A long fuzz campaign over every outside input: the targets of tests/helpers/fuzz_targets.py, each
for its share of the time, in batches with fresh random seeds (CI runs them derandomized, briefly).

Prints, per target, the examples tried, the findings and the seconds spent, and the totals. A
finding is a failing example hypothesis has shrunk: its exception and the example are printed, and
the exit code is 1. Memory is bounded for the whole campaign (RLIMIT_AS), so a parse that would
allocate without bound fails as a finding (MemoryError) rather than taking the machine.

Usage: python bench/fuzz.py [--minutes 30] [--target NAME...] [--json FILE] [--memory-gib 4]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import traceback
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from helpers.fuzz_targets import Target, targets

BATCH = 200  # examples per seed: hypothesis explores from a fresh seed every batch


def _batch(target: Target, seed_value: int, counter: list[int]) -> None:
    @seed(seed_value)
    @settings(max_examples=BATCH, database=None, deadline=timedelta(seconds=10), derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        counter[0] += 1
        target.run(data.draw(target.strategy))

    run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="the whole campaign (default 30)")
    parser.add_argument("--target", action="append", help="only these targets (by name; repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="address-space limit (default 4 GiB)")
    args = parser.parse_args()
    limit = int(args.memory_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")  # zipfile's duplicate-name warning is an input, not a finding
    chosen = [t for t in targets() if not args.target or t.name in args.target]
    share = args.minutes * 60 / len(chosen)
    rows = []
    rng = random.Random()
    for target in chosen:
        counter, findings, started = [0], [], time.monotonic()
        while time.monotonic() - started < share:
            seed_value = rng.getrandbits(64)
            try:
                _batch(target, seed_value, counter)
            except Exception as exc:  # noqa: BLE001 - a finding: hypothesis has shrunk it already
                text = "".join(traceback.format_exception_only(exc)).strip()
                notes = "\n".join(getattr(exc, "__notes__", []))
                findings.append({"seed": seed_value, "error": text[-2000:], "example": notes[-2000:]})
                print(f"FINDING in {target.name} (seed {seed_value}):\n{text}\n{notes[:600]}", file=sys.stderr)
        rows.append({"target": target.name, "examples": counter[0], "findings": len(findings),
                     "seconds": round(time.monotonic() - started, 1), "details": findings})
        print(f"{target.name:28} {counter[0]:>9,} examples  {len(findings)} findings  "
              f"{rows[-1]['seconds']:>7.1f} s", flush=True)
    total = sum(r["examples"] for r in rows)
    found = sum(r["findings"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    print(f"{'total':28} {total:>9,} examples  {found} findings  {seconds:>7.1f} s "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, address space limited to {args.memory_gib:g} GiB)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "examples": total, "findings": found, "seconds": seconds,
                                         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
