"""lws-stress against a plain-socket baseline, side by side in one run: how much the library and the
harness cost per connection.

Builds bench/baseline_client.c (cc -O2, into a temporary directory) and runs it, then
`lwsbuild stress --json` on the release and asan builds, all with the same profile: same service
thread count, same refused : black-hole : echo mix, same connect timeout, same asked rate, same cap
on open connections and RLIMIT_NOFILE. The baseline does each connection's work with non-blocking
sockets and epoll and no libwebsockets (see its header for what it does not do), so each lws-stress
run's connections/s over the baseline's is libwebsockets' and the harness's overhead together.
Goals (issue 14): release >= 5,000 conn/s and asan >= 2,000 conn/s at a profile with >= 1/3
black-hole targets and a 5 s timeout (the default: tsi0-timeouts), 0 findings, no cap binding unsaid.
Each variant runs with the default series and, side by side, without the throughput set (fix 0021,
the timer insert that walked every pending timer): what that fix is worth, in the same run.

    python3 bench/throughput.py                         # 20 s per run: ~3 minutes
    python3 bench/throughput.py --duration 5 --rounds 2 # shorter runs, interleaved twice

Loopback only; every run bounded by its duration plus its drain. Exit 0 when every lws-stress run
is clean (throughput goals are reported, not enforced), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lwsbuild.stress import profiles
from lwsbuild.stress.run import HARNESS_DEFAULTS

GOALS = {"release": 5000.0, "asan": 2000.0}
BASELINE_SOURCE = REPO / "bench" / "baseline_client.c"


@dataclass(frozen=True)
class Run:
    name: str  # "baseline", or the variant, with the series when it is not the first one asked
    data: dict  # the summary (baseline) or `lwsbuild stress --json`
    returncode: int
    wall_s: float
    load_before: str
    load_after: str
    variant: str = ""  # "" for the baseline
    series: str = ""

    @property
    def cps(self) -> float:
        return float(self.data.get("cps", 0.0))

    @property
    def clean(self) -> bool:
        return self.returncode == 0 and self.data.get("verdict", "clean") == "clean"

    @property
    def skipped(self) -> int:
        if self.name == "baseline":
            return int(self.data.get("skipped_cap", 0))
        return int((self.data.get("capped") or {}).get("skipped_at_max_concurrent", 0))


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def build_baseline(workdir: Path) -> Path:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise SystemExit(f"throughput: no C compiler {cc!r} on PATH (install gcc or set CC)")
    exe = workdir / "baseline-client"
    subprocess.run([cc, "-O2", "-pthread", "-o", str(exe), str(BASELINE_SOURCE)], check=True)
    return exe


@dataclass(frozen=True)
class Load:
    """The one profile every run gets, resolved to explicit values."""

    profile: str
    threads: int
    tsi0_initiates: int
    cps: int  # per initiating thread, asked
    mix: str
    timeout_secs: int
    duration: float
    max_concurrent: int
    nofile: int

    @property
    def initiating(self) -> int:
        return self.threads - (0 if self.tsi0_initiates else 1)

    def blackhole_share(self) -> float:
        weights = {k: int(v) for k, _, v in (item.partition("=") for item in self.mix.split(","))}
        return weights.get("blackhole", 0) / (sum(weights.values()) or 1)


def resolve(args: argparse.Namespace) -> Load:
    flags = profiles.get(args.profile).profile.to_json()
    get = lambda name, default: flags.get(name, default)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = args.nofile or (hard if hard != resource.RLIM_INFINITY and hard < 65536 else 65536)
    # Every kind holds one descriptor per open connection, an echo two (client and server): keep
    # room for the echo servers' side and lws's own, so the cap, not EMFILE, is what binds
    # (measured: nofile - 2048 let the baseline run out of descriptors at ~9,000 conn/s).
    max_concurrent = args.max_concurrent or max(1000, nofile - 4096)
    return Load(args.profile, get("threads", HARNESS_DEFAULTS["threads"]),
                get("tsi0_initiates", HARNESS_DEFAULTS["tsi0_initiates"]), args.cps,
                get("mix", "refused=1,blackhole=1,echo=2"), get("timeout_secs", HARNESS_DEFAULTS["timeout_secs"]),
                args.duration, max_concurrent, nofile)


def run_baseline(exe: Path, load: Load) -> Run:
    argv = [str(exe), "--threads", str(load.threads), "--tsi0-initiates", str(load.tsi0_initiates),
            "--cps", str(load.cps), "--duration", f"{load.duration:g}", "--mix", load.mix,
            "--timeout-secs", str(load.timeout_secs), "--max-concurrent", str(load.max_concurrent),
            "--nofile", str(load.nofile)]
    print(f"throughput: baseline: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    before, began = _load(), time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=load.duration + load.timeout_secs + 60,
                          check=False)
    wall = time.monotonic() - began
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        print(proc.stderr, file=sys.stderr)
        data = {"cps": 0.0, "connections": 0, "max_concurrent": 0, "error": proc.stderr.strip()[-300:]}
    return Run("baseline", data, proc.returncode, wall, before, _load())


def run_stress(variant: str, series: str, name: str, load: Load, args: argparse.Namespace) -> Run:
    argv = [sys.executable, "-m", "lwsbuild", "stress", "--json", "--variant", variant, "--series", series,
            "--profile", load.profile, "--cps", str(load.cps), "--duration", f"{load.duration:g}",
            "--max-concurrent", str(load.max_concurrent), "--nofile", str(load.nofile), "--sample-ms", "1000"]
    argv += ["--lws-version", args.lws_version] if args.lws_version else []
    argv += ["--report", str(Path(args.report) / f"{variant}-{series}")] if args.report else []
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # build (cached) first, so the timed run is the stress run only
    subprocess.run([*argv[:3], "build", "--variant", variant, "--series", series,
                    *(["--lws-version", args.lws_version] if args.lws_version else [])],
                   capture_output=True, env=env, cwd=REPO, check=False)
    print(f"throughput: {name}: {' '.join(argv[3:])}", file=sys.stderr, flush=True)
    before, began = _load(), time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=load.duration * 3 + load.timeout_secs + 900, check=False)
    wall = time.monotonic() - began
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        print(proc.stderr.strip()[-2000:], file=sys.stderr)
        data = {"verdict": "error", "cps": 0.0, "connections": 0, "max_concurrent": 0, "sanitizer_reports": []}
    data.pop("samples", None)
    return Run(name, data, proc.returncode, wall, before, _load(), variant, series)


def table(rounds: list[list[Run]], load: Load) -> str:
    lines = [(f"profile {load.profile}: {load.threads} threads ({load.initiating} initiating), mix {load.mix} "
              f"({load.blackhole_share():.0%} black hole), {load.timeout_secs} s timeout, asked "
              f"{load.cps * load.initiating:,} conn/s, {load.duration:g} s per run, max-concurrent "
              f"{load.max_concurrent:,}, nofile {load.nofile:,}; {os.cpu_count()} CPUs")]
    for index, runs in enumerate(rounds):
        base = next((r for r in runs if r.name == "baseline"), None)
        names = [r.name for r in runs]

        def ratio(r: Run, base: Run | None = base) -> str:  # this round's baseline
            return f"{r.cps / base.cps:.2f}" if base and base.cps else "-"

        def findings(r: Run) -> str:
            if r.name == "baseline":
                return "-"
            return f"{r.data.get('defects', '?')} ({r.data.get('known_reports', 0)} known)"

        def capped(r: Run) -> str:
            clamped = r.name != "baseline" and (r.data.get("capped") or {}).get("nofile_clamped")
            if not r.skipped and not clamped:
                return "no"
            return f"CAPPED: {r.skipped:,} skipped" + (", nofile clamped" if clamped else "")

        def goal(r: Run) -> str:
            if r.variant not in GOALS:
                return "-"
            return f">= {GOALS[r.variant]:,.0f}: " + ("met" if r.cps >= GOALS[r.variant] and r.clean else "MISSED")

        rows = [
            ("connections/s", [f"{r.cps:,.0f}" for r in runs]),
            ("ratio to baseline", [ratio(r) for r in runs]),
            ("connections", [f"{int(r.data.get('connections', 0)):,}" for r in runs]),
            ("max open", [f"{int(r.data.get('max_concurrent', 0)):,}" for r in runs]),
            ("findings (not known)", [findings(r) for r in runs]),
            ("verdict", [r.data.get("verdict", "-") if r.name != "baseline" else
                         ("ok" if r.returncode == 0 else f"exit {r.returncode}") for r in runs]),
            ("cap bound", [capped(r) for r in runs]),
            ("goal conn/s", [goal(r) for r in runs]),
            ("outcomes", [_outcomes(r.data.get("outcomes", {})) for r in runs]),
            ("wall (s)", [f"{r.wall_s:.0f}" for r in runs]),
            ("load before/after", [f"{r.load_before} / {r.load_after}" for r in runs]),
        ]
        width = max(len(label) for label, _ in rows)
        cols = [max(len(n), *(len(values[i]) for _, values in rows)) for i, n in enumerate(names)]
        lines.append(f"round {index + 1}:" if len(rounds) > 1 else "")
        lines.append(" " * width + "  " + "  ".join(n.rjust(c) for n, c in zip(names, cols, strict=True)))
        lines += [label.ljust(width) + "  " + "  ".join(v.rjust(c) for v, c in zip(values, cols, strict=True))
                  for label, values in rows]
    return "\n".join(line for line in lines if line)


def _outcomes(outcomes: dict) -> str:
    return " ".join(f"{target[0]}:" + "/".join(f"{k[:4]}={v}" for k, v in counts.items() if v)
                    for target, counts in outcomes.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tsi0-timeouts",
                        help="lwsbuild profile whose threads, mix and timeout every run uses (default tsi0-timeouts: "
                             "1/3 black hole, 5 s timeout, every thread initiating)")
    parser.add_argument("--variants", default="release,asan", help="comma-separated (default release,asan)")
    # Asked above what 2 cores deliver, so every run goes as fast as it can: the rate is the result.
    parser.add_argument("--cps", type=int, default=2500, help="asked connections/s per initiating thread (default 2500)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of initiating per run (default 20)")
    parser.add_argument("--rounds", type=int, default=1, help="baseline, then each variant, this many times")
    parser.add_argument("--max-concurrent", type=int, help="cap on open connections (default: nofile - 4096)")
    parser.add_argument("--nofile", type=int, help="RLIMIT_NOFILE (default: the hard limit, at most 65536)")
    # The default series, then without the fix that removes the sorted-timer walk (0021): its worth,
    # measured side by side. A difference series builds once (cached) like any other.
    parser.add_argument("--series", default="all,all-throughput",
                        help="comma-separated fix series, each run on every variant (default all,all-throughput: "
                             "the default series and the same without the throughput set)")
    parser.add_argument("--lws-version")
    parser.add_argument("--report", metavar="DIR", help="keep each stress run's report in DIR/<variant>-<series>, and "
                                                         "throughput.json")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 10 or not 1 <= args.duration <= 600:
        parser.error("--rounds is 1..10 and --duration 1..600")

    load = resolve(args)
    rounds: list[list[Run]] = []
    with tempfile.TemporaryDirectory(prefix="lwsbuild-throughput-") as tmp:
        exe = build_baseline(Path(tmp))
        for _ in range(args.rounds):
            runs = [run_baseline(exe, load)]
            for position, series in enumerate(args.series.split(",")):
                runs += [run_stress(variant, series, variant if position == 0 else f"{variant} {series}", load, args)
                         for variant in args.variants.split(",")]
            rounds.append(runs)
    print(table(rounds, load))
    if args.report:
        Path(args.report).mkdir(parents=True, exist_ok=True)
        (Path(args.report) / "throughput.json").write_text(json.dumps(
            {"load": load.__dict__, "rounds": [[{"name": r.name, "series": r.series, **r.data, "wall_s": r.wall_s,
                                                 "load_before": r.load_before, "load_after": r.load_after}
                                                for r in runs] for runs in rounds]},
            indent=2, sort_keys=True, default=str) + "\n")
    stress_runs = [r for runs in rounds for r in runs if r.name != "baseline"]
    return 0 if all(r.clean for r in stress_runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
