"""Soak: every stress profile for a long time on the fixed asan and tsan builds, one after another.

A short run proves little about a race that needs hours of schedules; this runs `lwsbuild stress
--json --profile NAME --duration SECONDS` (exactly as a user would) for each profile and variant,
and prints per run: connections, connections/s, max open, verdict, the first finding, and the
machine's load before and after (a soak shares the machine; a loaded one changes the rate, not the
verdict). Each run's report (JSON, logs, stack dump on a stall) is kept under --report.

    python3 bench/soak.py                                   # 30 min per profile, asan and tsan: hours
    python3 bench/soak.py --minutes 5 --profiles tsi0-timeouts --variants asan

Exit status: 0 when every run is clean, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lwsbuild.stress import profiles


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def soak(profile: str, variant: str, minutes: float, report: Path) -> dict:
    directory = report / f"{variant}-{profile}"
    argv = [sys.executable, "-m", "lwsbuild", "stress", "--json", "--variant", variant, "--profile", profile,
            "--duration", f"{minutes * 60:g}", "--sample-ms", "10000", "--report", str(directory)]
    before, began = _load(), time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    wall = time.monotonic() - began
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        data = {"verdict": "error", "error": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    first = data.get("first_finding") or {}
    return {"profile": profile, "variant": variant, "minutes": minutes, "verdict": data.get("verdict"),
            "connections": data.get("connections", 0), "cps": data.get("cps", 0.0),
            "max_concurrent": data.get("max_concurrent", 0), "known_reports": data.get("known_reports", 0),
            "first_finding": f"{first.get('kind')}: {first.get('summary', '')[:120]}" if first else "",
            "wall_s": round(wall, 1), "load": f"{before} -> {_load()}", "report": str(directory),
            "returncode": done.returncode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="per profile and variant (default 30)")
    parser.add_argument("--profiles", default="all", help="comma-separated names, or all (default)")
    parser.add_argument("--variants", default="asan,tsan", help="comma-separated (default asan,tsan)")
    parser.add_argument("--report", default="soak-report", help="directory for every run's report")
    args = parser.parse_args()
    names = profiles.names() if args.profiles == "all" else args.profiles.split(",")
    for name in names:
        profiles.get(name)  # an unknown name fails before hours of runs
    report = Path(args.report).resolve()
    rows = []
    print(f"{'variant':7} {'profile':16} {'min':>5} {'connections':>12} {'conn/s':>8} {'max open':>9} "
          f"{'known':>6}  verdict  load")
    for variant in args.variants.split(","):
        for name in names:
            row = soak(name, variant, args.minutes, report)
            rows.append(row)
            print(f"{variant:7} {name:16} {args.minutes:5g} {row['connections']:12,} {row['cps']:8,.0f} "
                  f"{row['max_concurrent']:9,} {row['known_reports']:6}  {row['verdict']}  {row['load']}"
                  + (f"\n        first finding: {row['first_finding']}" if row["first_finding"] else ""),
                  flush=True)
    report.mkdir(parents=True, exist_ok=True)
    (report / "soak.json").write_text(json.dumps(rows, indent=2) + "\n")
    clean = all(row["verdict"] == "clean" for row in rows)
    print(f"{sum(r['connections'] for r in rows):,} connections in {len(rows)} runs: "
          + ("all clean" if clean else "NOT clean"))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
