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
Goals (issue 24): release >= 0.8x and asan >= 0.45x the baseline measured without a descriptor cap.
Each variant runs with the default series and, side by side, without the throughput set (0021, the
timer insert that walked every pending timer; 0024, the header-table walks on every close): what
the set is worth, in the same run (`--series all,all-0024,all-throughput` shows each fix's share).

The baseline without the descriptor cap: RLIMIT_NOFILE's hard limit binds it (at ~9,000 conn/s a
third of the connections wait 5 s on the black hole: ~15,000 open). The bench raises the hard limit
to fs.nr_open when it may (root with CAP_SYS_RESOURCE); when it may not, it runs the baseline as
--baseline-procs processes sharing the threads (each with its own descriptor limit) and sums them,
and the table says which.

Then the rate sweep (issue 24): lws-stress asked 1,000 ... 64,000 conn/s in all (0.12x ... 8x what
release does here), per variant, asked vs achieved as a table and a plot (the `plot` extra;
--plot-from redraws from a report's JSON): over-asked, the harness must hold its best rate
(admission by a batch per service round, --admit-batch).

    python3 bench/throughput.py                         # 20 s per ratio run, 15 s per sweep point, 2 rounds, each run settled: ~55 minutes
    python3 bench/throughput.py --duration 5 --rounds 2 --sweep ""  # ratios only, interleaved twice

Loopback only; every run bounded by its duration plus its drain. Exit 0 when every lws-stress run
is clean (throughput goals are reported, not enforced), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lwsbuild.build.harness import BY_NAME as HARNESS_FLAGS
from lwsbuild.stress import profiles

GOALS = {"release": 5000.0, "asan": 2000.0}  # conn/s (issue 14)
RATIO_GOALS = {"release": 0.8, "asan": 0.45}  # of the uncapped baseline (issue 24)
OVERLOAD = 4.0  # asked this many times the best rate ...
OVERLOAD_HOLDS = 0.95  # ... it achieves at least this share of it
BASELINE_SOURCE = REPO / "bench" / "baseline_client.c"
NR_OPEN = Path("/proc/sys/fs/nr_open")


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
        loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        loadavg = "?"
    return f"{loadavg} tw {_time_wait()}"


def _time_wait() -> int:
    """TCP sockets in TIME_WAIT on this machine (/proc/net/sockstat's `tw`)."""
    try:
        fields = next(line.split() for line in Path("/proc/net/sockstat").read_text().splitlines()
                      if line.startswith("TCP:"))
        return int(fields[fields.index("tw") + 1])
    except (OSError, StopIteration, ValueError, IndexError):
        return 0


# A run at thousands of conn/s leaves ~10,000 loopback sockets in TIME_WAIT for 60 s, and the next
# run's every connect() searches past them for a local port (__inet_hash_connect): measured, asan
# asked 64,000 right after such a run made 2,920 / 3,071 conn/s, settled 3,248 / 3,280. Every run
# starts settled, so the order of the runs does not weigh on their rates.
SETTLE_MAX_S = 75.0


def settle(threshold: int) -> None:
    """Wait (at most SETTLE_MAX_S) until fewer than `threshold` sockets are in TIME_WAIT."""
    deadline = time.monotonic() + SETTLE_MAX_S
    while threshold and _time_wait() >= threshold and time.monotonic() < deadline:
        time.sleep(1.0)


def raise_nofile() -> str:
    """Raise RLIMIT_NOFILE's hard limit to fs.nr_open (children inherit it) when this process may;
    say what applies either way."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        ceiling = int(NR_OPEN.read_text())
    except (OSError, ValueError):
        ceiling = hard
    if hard != resource.RLIM_INFINITY and hard < ceiling:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, ceiling))
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if now >= ceiling:
        return f"RLIMIT_NOFILE hard limit {now:,} (fs.nr_open {ceiling:,})"
    return (f"RLIMIT_NOFILE hard limit {now:,} per process, not raisable here (fs.nr_open {ceiling:,}; raising "
            f"it needs CAP_SYS_RESOURCE{', which this root lacks' if os.geteuid() == 0 else ''})")


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
    baseline_procs: int = 1  # the baseline split over processes, each its own descriptor limit
    settle_tw: int = 0  # each run starts once fewer sockets than this are in TIME_WAIT (0: at once)

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
    threads = get("threads", HARNESS_FLAGS["threads"].default)
    tsi0_initiates = get("tsi0_initiates", HARNESS_FLAGS["tsi0_initiates"].default)
    least = 1 if tsi0_initiates else 2  # threads a baseline process needs: one that initiates
    # measured: 2 processes of 2 threads still reached their caps (19,141 conn/s, 257,159 skipped)
    procs = args.baseline_procs or (1 if hard == resource.RLIM_INFINITY or hard >= 262144 else threads // least)
    if threads % procs or threads // procs < least:
        raise SystemExit(f"throughput: --baseline-procs {procs} must split {threads} threads into {least} or more each")
    return Load(args.profile, threads, tsi0_initiates, args.cps,
                get("mix", "refused=1,blackhole=1,echo=2"), get("timeout_secs", HARNESS_FLAGS["timeout_secs"].default),
                args.duration, max_concurrent, nofile, procs, args.settle_tw)


def run_baseline(exe: Path, load: Load) -> Run:
    """The baseline, as --baseline-procs processes at once (the threads split between them), summed."""
    argv = [str(exe), "--threads", str(load.threads // load.baseline_procs), "--tsi0-initiates",
            str(load.tsi0_initiates), "--cps", str(load.cps), "--duration", f"{load.duration:g}", "--mix", load.mix,
            "--timeout-secs", str(load.timeout_secs), "--max-concurrent", str(load.max_concurrent),
            "--nofile", str(load.nofile)]
    print(f"throughput: baseline: {load.baseline_procs} x {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    settle(load.settle_tw)
    before, began = _load(), time.monotonic()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(load.baseline_procs)]
    parts, returncode = [], 0
    for proc in procs:
        out, err = proc.communicate(timeout=load.duration + load.timeout_secs + 60)
        returncode = returncode or proc.returncode
        try:
            parts.append(json.loads(out.strip().splitlines()[-1]))
        except (json.JSONDecodeError, IndexError):
            print(err, file=sys.stderr)
            parts.append({"cps": 0.0, "connections": 0, "max_concurrent": 0, "error": err.strip()[-300:]})
    wall = time.monotonic() - began
    return Run("baseline", _summed(parts), returncode, wall, before, _load())


def _summed(parts: list[dict]) -> dict:
    """One baseline summary from its processes': counts and rates add up; max open is each process's,
    summed (an upper bound: their peaks need not coincide)."""
    data = dict(parts[0])
    for key in ("cps", "connections", "max_concurrent", "skipped_cap", "server_echoes"):
        data[key] = sum(part.get(key, 0) for part in parts)
    outcomes: dict[str, dict[str, int]] = {}
    for part in parts:
        for target, counts in part.get("outcomes", {}).items():
            for outcome, count in counts.items():
                outcomes.setdefault(target, {})[outcome] = outcomes.get(target, {}).get(outcome, 0) + count
    data["outcomes"], data["processes"] = outcomes, len(parts)
    return data


def run_stress(variant: str, series: str, name: str, load: Load, args: argparse.Namespace, tag: str = "") -> Run:
    argv = [sys.executable, "-m", "lwsbuild", "stress", "--json", "--variant", variant, "--series", series,
            "--profile", load.profile, "--cps", str(load.cps), "--duration", f"{load.duration:g}",
            "--max-concurrent", str(load.max_concurrent), "--nofile", str(load.nofile), "--sample-ms", "1000"]
    argv += ["--lws-version", args.lws_version] if args.lws_version else []
    argv += ["--report", str(Path(args.report) / f"{variant}-{series}{tag}")] if args.report else []
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # build (cached) first, so the timed run is the stress run only
    subprocess.run([*argv[:3], "build", "--variant", variant, "--series", series,
                    *(["--lws-version", args.lws_version] if args.lws_version else [])],
                   capture_output=True, env=env, cwd=REPO, check=False)
    print(f"throughput: {name}: {' '.join(argv[3:])}", file=sys.stderr, flush=True)
    settle(load.settle_tw)
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
              f"{load.max_concurrent:,}, nofile {load.nofile:,}; {os.cpu_count()} CPUs; baseline: "
              f"{load.baseline_procs} process(es) x {load.threads // load.baseline_procs} threads")]
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

        def ratio_goal(r: Run, base: Run | None = base) -> str:
            if r.variant not in RATIO_GOALS or not base or not base.cps:
                return "-"
            wanted = RATIO_GOALS[r.variant]
            return f">= {wanted:.2f}: " + ("met" if r.cps / base.cps >= wanted and r.clean else "MISSED")

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
            ("goal ratio", [ratio_goal(r) for r in runs]),
            ("outcomes", [_outcomes(r.data.get("outcomes", {})) for r in runs]),
            ("wall (s)", [f"{r.wall_s:.0f}" for r in runs]),
            ("load, TIME_WAIT before/after", [f"{r.load_before} / {r.load_after}" for r in runs]),
        ]
        width = max(len(label) for label, _ in rows)
        cols = [max(len(n), *(len(values[i]) for _, values in rows)) for i, n in enumerate(names)]
        lines.append(f"round {index + 1}:" if len(rounds) > 1 else "")
        lines.append(" " * width + "  " + "  ".join(n.rjust(c) for n, c in zip(names, cols, strict=True)))
        lines += [label.ljust(width) + "  " + "  ".join(v.rjust(c) for v, c in zip(values, cols, strict=True))
                  for label, values in rows]
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class Point:
    """One asked rate of one variant, run once per sweep round: its rate is the mean of the rounds
    (an asan run's rate moves by 10-20 % between two runs of the same point, measured here)."""

    variant: str
    asked: int  # conn/s, all initiating threads
    runs: tuple[Run, ...]

    @property
    def cps(self) -> float:
        return statistics.fmean(run.cps for run in self.runs)

    @property
    def spread(self) -> tuple[float, float]:
        return min(run.cps for run in self.runs), max(run.cps for run in self.runs)

    @property
    def clean(self) -> bool:
        return all(run.clean for run in self.runs)

    @property
    def behind(self) -> int:
        return max(int((run.data.get("admission") or {}).get("behind", 0)) for run in self.runs)


def sweep(load: Load, args: argparse.Namespace) -> list[Point]:
    """Each variant asked each rate of --sweep (per initiating thread), the default series, in
    --sweep-rounds rounds: up the rates, then down, so a drift of the machine over the sweep (other
    work, heat) weighs on the low and the high rates alike."""
    series = args.series.split(",")[0]
    rates = [int(x) for x in args.sweep.split(",")]
    runs: dict[tuple[str, int], list[Run]] = {}
    for index in range(args.sweep_rounds):
        for variant in args.sweep_variants.split(","):
            for per_thread in rates if index % 2 == 0 else rates[::-1]:
                asked = replace(load, cps=per_thread, duration=args.sweep_duration)
                tag = f"-sweep-{per_thread}" + (f"-r{index + 1}" if args.sweep_rounds > 1 else "")
                runs.setdefault((variant, per_thread), []).append(run_stress(
                    variant, series, f"{variant} asked {per_thread * load.initiating:,}", asked, args, tag=tag))
    return [Point(variant, per_thread * load.initiating, tuple(found)) for (variant, per_thread), found in runs.items()]


def holds(points: list[Point], variant: str) -> tuple[float, float, float] | None:
    """(best mean conn/s, worst mean conn/s asked >= OVERLOAD x best, their ratio), None when no
    point was asked that much."""
    mine = [p for p in points if p.variant == variant]
    best = max((p.cps for p in mine), default=0.0)
    over = [p.cps for p in mine if best and p.asked >= OVERLOAD * best]
    return (best, min(over), min(over) / best) if over else None


def sweep_table(points: list[Point]) -> str:
    variants = list(dict.fromkeys(p.variant for p in points))
    rounds = max(len(p.runs) for p in points)
    lines = ["rate sweep (asked vs achieved, conn/s" + (f": mean of {rounds} rounds [lowest-highest]" if rounds > 1
                                                     else "") + "; share of the variant's best; behind = due, "
             "not admitted):"]
    width = 44 if rounds > 1 else 30
    lines.append(f"{'asked':>8}  " + "  ".join(f"{v:>{width}}" for v in variants))
    for asked in sorted({p.asked for p in points}):
        cells = []
        for variant in variants:
            point = next((p for p in points if p.variant == variant and p.asked == asked), None)
            best = max(p.cps for p in points if p.variant == variant) or 1.0
            if point is None:
                cells.append(f"{'-':>{width}}")
                continue
            low, high = point.spread
            spread = f" [{low:,.0f}-{high:,.0f}]" if rounds > 1 else ""
            verdict = "" if point.clean else " NOT CLEAN"
            cells.append(f"{point.cps:>8,.0f}{spread} {point.cps / best:>5.2f} {point.behind:>9,} behind{verdict}"
                         .rjust(width))
        lines.append(f"{asked:>8,}  " + "  ".join(cells))
    for variant in variants:
        held = holds(points, variant)
        if held is None:
            lines.append(f"{variant}: no point asked {OVERLOAD:g}x its best rate: extend --sweep")
            continue
        best, worst, share = held
        lines.append(f"{variant}: best {best:,.0f} conn/s; asked >= {OVERLOAD:g}x it, at least {worst:,.0f} = "
                     f"{share:.2f} of it (goal >= {OVERLOAD_HOLDS:.2f}: {'met' if share >= OVERLOAD_HOLDS else 'MISSED'})")
    return "\n".join(lines)


def plot_sweep(points: list[dict], path: Path, title: str) -> str:
    """Asked vs achieved per variant (log-log), the asked = achieved line for reference."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'lwsbuild[plot]'; then --plot-from)"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in dict.fromkeys(p["variant"] for p in points):
        mine = sorted((p["asked"], p["cps"], p.get("cps_rounds") or [p["cps"]]) for p in points
                      if p["variant"] == variant)
        ax.errorbar([a for a, _, _ in mine], [c for _, c, _ in mine],
                    yerr=[[c - min(r) for _, c, r in mine], [max(r) - c for _, c, r in mine]],
                    marker="o", capsize=3, label=variant)
    asked = [p["asked"] for p in points]
    ax.plot([min(asked), max(asked)], [min(asked), max(asked)], color="0.7", linestyle="--", label="achieved = asked")
    ax.set_xscale("log")
    ax.set_xlabel("asked connections/s (all initiating threads)")
    ax.set_ylabel("achieved connections/s")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"


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
    parser.add_argument("--cps", type=int, default=8000,
                        help="asked connections/s per initiating thread (default 8000: more than the uncapped "
                             "baseline does here, so each ratio run goes as fast as it can)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of initiating per run (default 20)")
    parser.add_argument("--rounds", type=int, default=1, help="baseline, then each variant, this many times")
    parser.add_argument("--max-concurrent", type=int, help="cap on open connections (default: nofile - 4096)")
    parser.add_argument("--nofile", type=int, help="RLIMIT_NOFILE (default: the hard limit, at most 65536)")
    # The default series, then without the fixes that remove lws's per-connection list walks (0021,
    # 0024): their worth, measured side by side. A difference series builds once (cached) like any other.
    parser.add_argument("--series", default="all,all-throughput",
                        help="comma-separated fix series, each run on every variant (default all,all-throughput: "
                             "the default series and the same without the throughput set)")
    parser.add_argument("--baseline-procs", type=int,
                        help="run the baseline as N processes sharing the threads, each with its own descriptor limit "
                             "(default: 1 when the hard limit is >= 262,144 or was raised, else as many as the threads "
                             "allow)")
    parser.add_argument("--sweep", default="250,500,1000,2000,4000,8000,16000",
                        help="asked conn/s per initiating thread for the rate sweep, comma-separated (\"\": no sweep)")
    parser.add_argument("--sweep-variants", default="release,asan")
    parser.add_argument("--sweep-duration", type=float, default=15.0, help="seconds per sweep point (default 15)")
    parser.add_argument("--settle-tw", type=int, default=1000,
                        help="start each run once fewer than N TCP sockets are in TIME_WAIT (at most 75 s: the last "
                             "run's 10,000 slow every connect() of the next; 0: no wait; default 1000)")
    parser.add_argument("--sweep-rounds", type=int, default=2,
                        help="run the sweep this many times, up then down the rates; each point's rate is the mean "
                             "(default 2)")
    parser.add_argument("--plot", default="throughput-sweep.png", help="the sweep's plot (default ./throughput-sweep.png)")
    parser.add_argument("--plot-from", metavar="JSON", help="only redraw the plot from a --report's throughput.json")
    parser.add_argument("--lws-version")
    parser.add_argument("--report", metavar="DIR", help="keep each stress run's report in DIR/<variant>-<series>, and "
                                                         "throughput.json")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 10 or not 1 <= args.duration <= 600:
        parser.error("--rounds is 1..10 and --duration 1..600")

    if args.plot_from:
        saved = json.loads(Path(args.plot_from).read_text())
        print(plot_sweep(saved["sweep"], Path(args.plot), saved.get("title", "")))
        return 0

    limit = raise_nofile()
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
    points = sweep(load, args) if args.sweep else []
    print(limit)
    print(table(rounds, load))
    title = (f"lws-stress rate sweep: {load.profile}, {load.threads} threads, {args.sweep_duration:g} s per point, "
             f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs")
    sweep_points = [{"variant": p.variant, "asked": p.asked, "cps": p.cps, "cps_rounds": [r.cps for r in p.runs],
                     "admission": [r.data.get("admission") for r in p.runs],
                     "verdict": [r.data.get("verdict") for r in p.runs],
                     "load": [[r.load_before, r.load_after] for r in p.runs]} for p in points]
    if points:
        print(sweep_table(points))
        print(plot_sweep(sweep_points, Path(args.plot), title))
    if args.report:
        Path(args.report).mkdir(parents=True, exist_ok=True)
        (Path(args.report) / "throughput.json").write_text(json.dumps(
            {"load": load.__dict__, "nofile_limit": limit, "title": title, "sweep": sweep_points,
             "rounds": [[{"name": r.name, "series": r.series, **r.data, "wall_s": r.wall_s,
                          "load_before": r.load_before, "load_after": r.load_after}
                         for r in runs] for runs in rounds]},
            indent=2, sort_keys=True, default=str) + "\n")
    stress_runs = [r for runs in rounds for r in runs if r.name != "baseline"] + [r for p in points for r in p.runs]
    return 0 if all(r.clean for r in stress_runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
