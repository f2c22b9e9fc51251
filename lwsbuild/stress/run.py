"""Run the C stress harness (`bin/lws-stress` of a build prefix) under its sanitizer and judge it.

The harness prints its progress as JSON lines on stdout (start, samples, summary or watchdog); lws
and the sanitizers write to stderr. Both are streamed to log files as they arrive, each stderr line
timestamped on arrival, so a finding has a time on the same clock as the samples. The verdict is
the sanitizers' own reports (findings.py) judged against the known upstream reports
(known_races.py) — never "it did not crash".
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import threading
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from lwsbuild.build import harness
from lwsbuild.build.harness import Value
from lwsbuild.common import prefix as prefix_layout
from lwsbuild.common import reportdir
from lwsbuild.errors import HarnessError, UsageError
from lwsbuild.stress import findings as findings_mod
from lwsbuild.stress import known_races, stacks
from lwsbuild.stress.findings import Finding

if TYPE_CHECKING:
    from lwsbuild.build.cmake import Install
    from lwsbuild.build.variants import Sanitizer

HARNESS = Path(prefix_layout.STRESS_HARNESS)
STARTUP_LIMIT_S = 120.0  # until the harness prints its start line (TSan start-up is slow)
TEARDOWN_MARGIN_S = 60.0  # after the harness's own watchdog would have fired: drain, destroy, report
# After its watchdog fires the harness stays as it is this long, so every thread's stack can be dumped.
STALL_WAIT_S = stacks.DUMP_TIMEOUT_S + 30
_MAX_KEPT_LINES = 2_000_000  # stderr lines kept in memory for parsing; the log file has them all

@dataclass(frozen=True)
class Profile:
    """The harness's load profile: the flags given (resources/harness.toml declares them, in its
    order), every other one the harness's own default."""

    flags: tuple[tuple[str, Value], ...] = ()

    @classmethod
    def of(cls, **given: Value | None) -> Profile:
        return cls.from_mapping(given)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Profile:
        """The harness flags among `values` (other keys, such as a command line's, are not flags);
        None: not given."""
        return cls(tuple((flag.name, values[flag.name]) for flag in harness.options()  # type: ignore[misc]
                         if values.get(flag.name) is not None))

    def get(self, name: str) -> Value | None:
        """The value given for flag `name`, None when the harness's default applies."""
        return dict(self.flags).get(name)

    def value(self, name: str) -> Value:
        """The value the harness runs with: given, else its default (computed defaults: None given)."""
        given = self.get(name)
        default = harness.BY_NAME[name].default
        found = given if given is not None else default
        assert found is not None, f"{name} has a computed default: ask get()"
        return found

    def with_caps(self, nofile_hard: int | None = None) -> Profile:
        """This profile with --max-concurrent and --nofile following its load when not given: the
        connections it keeps open are rate x how long each kind stays open, so a 5 s connect timeout
        with a third of black-hole targets needs thousands of descriptors (issue: a fixed cap of 4000
        silently throttled such profiles). Twice the estimate, at least the harness's defaults.

        Within the process's hard RLIMIT_NOFILE (`nofile_hard`, default: this process's): an
        over-asked profile's estimate can exceed it, and then the cap is what the limit holds
        instead of a descriptor limit the harness would have to clamp (reported as a binding cap
        though nothing was skipped, and EMFILE before the cap). What the user gives is kept."""
        hard = _nofile_hard() if nofile_hard is None else nofile_hard
        cap = self.get("max_concurrent")
        if cap is None:
            cap = max(int(self.value("max_concurrent")), int(2 * self.expected_open()) + 100)
            if self.get("nofile") is None:
                cap = min(int(cap), max(int(self.value("max_concurrent")), (hard - 1024) // 2))
        # each echo connection is two descriptors (client and the in-process server), plus lws's own
        nofile = self.get("nofile")
        if nofile is None:
            nofile = min(max(int(self.value("nofile")), 2 * int(cap) + 1024), hard)
        return Profile.from_mapping({**dict(self.flags), "max_concurrent": cap, "nofile": nofile})

    def expected_open(self) -> float:
        """Connections open at once in the steady state, from the profile's rate and mix."""
        weights = _mix_weights(str(self.value("mix")))
        total = sum(weights.values()) or 1
        initiating = int(self.value("threads")) - (0 if self.value("tsi0_initiates") else 1)
        rate = initiating * int(self.value("cps"))
        seconds = {"refused": 0.01, "blackhole": float(self.value("timeout_secs")),
                   "echo": 0.05 + int(self.value("hold_ms")) / 1000}
        return rate * sum(weights[kind] / total * seconds[kind] for kind in weights)

    def argv(self) -> list[str]:
        return [arg for name, value in self.flags for arg in (harness.BY_NAME[name].flag, _flag_value(value))]

    def to_json(self) -> dict[str, Any]:
        return dict(self.flags)


def _nofile_hard() -> int:
    """The hard RLIMIT_NOFILE the harness inherits (a large number when unlimited)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else int(hard)


def _mix_weights(mix: str) -> dict[str, int]:
    kinds = _mix_kinds()
    weights = {}
    for item in mix.split(","):
        name, _, weight = item.partition("=")
        if name.strip() in kinds and weight.strip().isascii() and weight.strip().isdigit():
            weights[name.strip()] = int(weight)
    return weights  # a malformed mix is the harness's to refuse, with its own message


def _mix_kinds() -> list[str]:
    """The target kinds, as the harness's default mix names them."""
    return [item.partition("=")[0] for item in str(harness.BY_NAME["mix"].default).split(",")]


def _flag_value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def sanitizer_env(sanitizer: Sanitizer | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The sanitizer options set for a build's harness (variants.toml [sanitizer.NAME.options]): ours
    first, the user's own *SAN_OPTIONS after them, so an explicit user choice wins (and is recorded
    in the run's JSON)."""
    if sanitizer is None:
        return {}
    return sanitizer.stress_env(dict(os.environ) if base is None else base)


def command(prefix: Path, sanitizer: Sanitizer | None, profile: Profile) -> list[str]:
    program = prefix / HARNESS
    if not os.access(program, os.X_OK):
        raise HarnessError(f"{prefix} has no stress harness ({HARNESS} is missing)",
                           hint="rebuild the prefix with `lwsbuild build` (it installs bin/lws-stress)")
    return under_sanitizer([str(program), *profile.argv(), harness.BY_NAME["stall_wait"].flag,
                            _flag_value(STALL_WAIT_S)], sanitizer)


def under_sanitizer(argv: list[str], sanitizer: Sanitizer | None) -> list[str]:
    """`argv` as a program instrumented with `sanitizer` must be started: without address-space
    randomisation where the sanitizer needs that (variants.toml: TSan's shadow layout), its
    children too."""
    setarch = shutil.which("setarch")
    if sanitizer is not None and sanitizer.no_aslr and setarch:
        return [setarch, platform.machine(), "-R", *argv]
    return argv


@dataclass(frozen=True)
class StressRun:
    build: dict[str, Any]  # Install.to_json() of the build under test
    profile: Profile
    command: tuple[str, ...]
    env: dict[str, str]  # the sanitizer options set for the run
    returncode: int
    start: dict[str, Any] | None
    samples: tuple[dict[str, Any], ...]
    summary: dict[str, Any] | None
    watchdog: dict[str, Any] | None
    findings: tuple[Finding, ...]
    wall_s: float
    log_dir: Path
    killed: bool = False  # lwsbuild's own wall-clock limit ended the run
    stack_dump: str = ""  # the tool that dumped every thread's stack on a stall ("" = none was taken)
    blocked: tuple[str, ...] = ()  # threads blocked on a lock at the stall, "<thread> waits for the <lock> in <fn>"

    @property
    def failing(self) -> list[Finding]:
        return known_races.failing(list(self.findings))

    @property
    def verdict(self) -> str:
        return known_races.verdict(list(self.findings))

    @property
    def first_finding(self) -> Finding | None:
        timed = sorted(self.failing, key=lambda f: (f.t is None, f.t or 0.0))
        return timed[0] if timed else None

    @property
    def connections(self) -> int:
        for source in (self.summary, self.watchdog, self.samples[-1] if self.samples else None):
            if source and "connections" in source:
                return int(source["connections"])
        return 0

    @property
    def duration_s(self) -> float:
        if self.summary:
            return float(self.summary["duration_s"])
        # no summary: the run ended early; measure up to the last sample it printed
        if self.samples:
            return float(self.samples[-1]["t"])
        return float(self.watchdog.get("t", 0.0)) if self.watchdog else 0.0

    @property
    def ended_early(self) -> float | None:
        """When a run without a summary stopped: its first finding's time, else its last sample's."""
        if self.summary:
            return None
        first = self.first_finding
        return first.t if first is not None and first.t is not None else self.duration_s

    @property
    def cps(self) -> float:
        if self.summary:
            return float(self.summary["cps"])
        return self.connections / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def max_concurrent(self) -> int:
        if self.summary:
            return int(self.summary["max_concurrent"])
        return max((int(s.get("concurrent", 0)) for s in self.samples), default=0)

    @property
    def capped(self) -> dict[str, Any] | None:
        """How much a cap throttled the run: initiations skipped at --max-concurrent, a clamped
        RLIMIT_NOFILE. None when no cap bound (the profile ran as asked)."""
        skipped = sum(int(t.get("skipped_cap", 0)) for t in (self.summary or {}).get("per_thread", []))
        clamped = bool((self.start or {}).get("nofile_clamped"))
        if not skipped and not clamped:
            return None
        return {"skipped_at_max_concurrent": skipped, "max_concurrent": (self.start or {}).get("max_concurrent"),
                "nofile": (self.start or {}).get("nofile"), "nofile_clamped": clamped}

    @property
    def admission(self) -> dict[str, Any] | None:
        """How the initiating threads admitted connections: each round at most `batch` (--admit-batch),
        whatever the asked rate; `behind` is what the schedule asked and the threads had not admitted
        when they stopped (over-asked, they fall behind instead of bursting). None without a summary."""
        threads = (self.summary or {}).get("per_thread")
        if not threads:
            return None
        return {"batch": (self.start or {}).get("admit_batch"),
                "max_round": max(int(t.get("max_round", 0)) for t in threads),
                "batch_rounds": sum(int(t.get("batch_rounds", 0)) for t in threads),
                "behind": sum(int(t.get("behind", 0)) for t in threads)}

    @property
    def label(self) -> str:
        b = self.build
        what = "UNFIXED" if b.get("unfixed") else f"series {b.get('series')}"
        return f"libwebsockets {b.get('version')} {b.get('variant')} ({what})"

    @property
    def server(self) -> dict[str, Any] | None:
        """--server-threads: what the server context served (HTTP answers, raw clients per kind)."""
        summary = self.summary or {}
        if not summary.get("server_threads"):
            return None
        return {key: summary.get(key) for key in ("server_threads", "http_served", "rogue", "server_service_calls")}

    def to_json(self) -> dict[str, Any]:
        first = self.first_finding
        return {
            "verdict": self.verdict,
            "connections": self.connections, "cps": round(self.cps, 1), "max_concurrent": self.max_concurrent,
            "duration_s": round(self.duration_s, 3), "outcomes": (self.summary or {}).get("outcomes", {}),
            "server": self.server,
            "capped": self.capped, "admission": self.admission,
            "sanitizer_reports": [f.to_json() for f in self.findings],
            "defects": len(self.failing), "known_reports": len(self.findings) - len(self.failing),
            "first_finding": first.to_json() if first else None,
            "returncode": self.returncode, "killed": self.killed, "watchdog": self.watchdog,
            "lws_version": (self.start or {}).get("lws_version"),
            "build": self.build, "profile": self.profile.to_json(), "harness": self.start,
            "command": list(self.command), "env": self.env, "wall_s": round(self.wall_s, 3),
            "samples": list(self.samples), "blocked": list(self.blocked), "stack_dump": self.stack_dump,
            "logs": {"stdout": str(self.log_dir / "stdout.log"), "stderr": str(self.log_dir / "stderr.log"),
                     **({"stacks": str(self.log_dir / "stacks.txt")} if self.stack_dump else {})},
        }


class _Reader(threading.Thread):
    """Copies one pipe to a log file line by line, noting when each line arrived; with `events`,
    also decodes the harness's JSON lines as they come."""

    def __init__(self, pipe: IO[bytes], log: BinaryIO, events: bool = False) -> None:
        super().__init__(daemon=True)
        self.pipe, self.log, self.parse_events = pipe, log, events
        self.lines: list[str] = []
        self.times = array("d")  # time.monotonic() of each kept line
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.count = 0

    def run(self) -> None:
        with self.log as out:
            for raw in iter(self.pipe.readline, b""):
                now = time.monotonic()
                out.write(raw)
                out.flush()  # a crash report must be on disk even if lwsbuild is killed next
                self.count += 1
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if self.parse_events and line.startswith("{"):
                    try:
                        self.events.append((now, json.loads(line)))
                    except json.JSONDecodeError:
                        pass  # a line cut short by a crash
                elif len(self.lines) < _MAX_KEPT_LINES:
                    self.lines.append(line)
                    self.times.append(now)


def run(install: Install, profile: Profile, log_dir: Path) -> StressRun:
    """Run the harness of `install` with `profile`; logs go to `log_dir` (stdout.log, stderr.log)."""
    sanitizer = install.spec.variant.sanitizer
    profile = profile.with_caps()
    argv = command(install.prefix, sanitizer, profile)
    san_env = sanitizer_env(sanitizer)
    reportdir.ready(log_dir)
    # Made before the harness starts: a report directory that cannot take them stops nothing midway.
    logs = reportdir.create(log_dir / "stdout.log"), reportdir.create(log_dir / "stderr.log")
    began = time.monotonic()
    try:
        # The caller's environment, on purpose: this runs a finished build (nothing is compiled), and a
        # user's own *SAN_OPTIONS are part of the run (recorded in its JSON).
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, **san_env})
    except OSError as exc:
        for log in logs:
            log.close()
        raise HarnessError(f"cannot start {argv[0]}: {exc.strerror}") from None
    assert proc.stdout is not None and proc.stderr is not None
    out = _Reader(proc.stdout, logs[0], events=True)
    err = _Reader(proc.stderr, logs[1])
    out.start()
    err.start()
    killed = False
    dumped = ""
    try:
        while proc.poll() is None:
            time.sleep(0.2)
            stalled = any(event.get("type") == "watchdog" for _, event in out.events)
            overdue = time.monotonic() > _deadline(began, out)
            if stalled or overdue:
                # A hang is a finding: take every thread's stack while it is still hung, then end it.
                dumped = _dump_stacks(proc.pid, log_dir)
                proc.kill()
                killed = overdue and not stalled
                break
        proc.wait()
        ended = time.monotonic()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        out.join(timeout=30)
        err.join(timeout=30)
    return _judge(install, profile, argv, san_env, proc.returncode, out, err, began, ended, log_dir, killed, dumped)


def _dump_stacks(pid: int, log_dir: Path) -> str:
    tool, text = stacks.dump(pid)
    reportdir.write_text(log_dir / "stacks.txt", text)
    return tool


def _deadline(began: float, out: _Reader) -> float:
    """Wall-clock bound: the harness's own limits (from its start line) plus a margin."""
    for when, event in out.events[:1]:
        if event.get("type") == "start":
            return (when + float(event["duration"]) + float(event["watchdog"]) + float(event["timeout_secs"])
                    + float(event.get("hold_ms", 0)) / 1000 + TEARDOWN_MARGIN_S)
    return began + STARTUP_LIMIT_S


def _judge(install: Install, profile: Profile, argv: list[str], san_env: dict[str, str], returncode: int,
           out: _Reader, err: _Reader, began: float, ended: float, log_dir: Path, killed: bool,
           dumped: str = "") -> StressRun:
    events = out.events
    start = next(((w, e) for w, e in events if e.get("type") == "start"), None)
    t0 = start[0] if start else began
    samples = tuple(e for _, e in events if e.get("type") == "sample")
    summary = next((e for _, e in events if e.get("type") == "summary"), None)
    watchdog_at = next(((w, e) for w, e in events if e.get("type") == "watchdog"), None)
    watchdog = watchdog_at[1] if watchdog_at else None
    times = [round(t - t0, 3) for t in err.times]

    if returncode == 2 and start is None:
        raise UsageError(f"lws-stress refused its arguments: {_last_words(err)}", hint="see `lws-stress --help`")
    found = findings_mod.parse(err.lines, times)
    fatal = next((f for f in found if f.kind == "sanitizer fatal"), None)
    if fatal is not None:  # the sanitizer runtime could not run the harness: no verdict either way
        raise HarnessError(f"{fatal.tool} could not start lws-stress: {fatal.summary}",
                           hint="for TSan's 'unexpected memory mapping', install setarch (util-linux) or "
                                "set vm.mmap_rnd_bits=28")
    if killed:
        found.append(Finding("hung", "lwsbuild", f"lws-stress did not finish within its limits (killed after "
                                                 f"{ended - began:.0f} s)", t=round(ended - t0, 3)))
    found = findings_mod.from_exit(found, returncode, watchdog=watchdog, summary=summary,
                                   watchdog_t=round(watchdog_at[0] - t0, 3) if watchdog_at else None,
                                   ended_t=round(ended - t0, 3))
    waits = stacks.blocked((log_dir / "stacks.txt").read_text()) if dumped else []
    blocked = tuple(b.describe() for b in waits)
    if blocked:
        # The stall's finding names the locks and, when the waits close, the cycle: that is what
        # tells a deadlock from a slow machine.
        ring = stacks.cycle(waits)
        kind = "deadlock" if ring else None
        why = f"deadlock between {' and '.join(ring)}; " if ring else ""
        found = [replace(f, kind=kind or f.kind, summary=f"{why}{f.summary}; blocked: {' | '.join(blocked)}",
                         stacks=(blocked,))
                 if f.kind.startswith("watchdog") or f.kind == "hung" else f for f in found]
    if start is None and not [f for f in found if f.tool not in ("harness", "signal")]:
        raise HarnessError(f"lws-stress failed before starting (exit {returncode}): {_last_words(err)}",
                           hint=f"see {log_dir / 'stderr.log'}")
    return StressRun(install.to_json(), profile, tuple(argv), san_env, returncode, start[1] if start else None,
                     samples, summary, watchdog, tuple(known_races.classify(found)), ended - began,
                     log_dir, killed, dumped, blocked)


def _last_words(reader: _Reader) -> str:
    lines = [line for line in reader.lines if line.strip()]
    return lines[-1][:300] if lines else "no output"


def summary_table(run: StressRun, profile_name: str) -> str:
    """The run as a Markdown table row with its header (GitHub Actions' step summary)."""
    first = run.first_finding
    found = f"{first.kind}: {first.summary}" if first else "none"
    return "\n".join(["| stress | profile | connections | conn/s | max open | verdict | first finding |",
                      "|---|---|---:|---:|---:|---|---|",
                      (f"| {run.label} | {profile_name} | {run.connections:,} | {run.cps:,.0f} | "
                      f"{run.max_concurrent:,} | {run.verdict} | {found.replace('|', '/')} |")])


def render(run: StressRun) -> str:
    """The human-readable account of a run."""
    lines = [(f"{run.label}: {run.connections:,} connections in {run.duration_s:.1f} s ({run.cps:,.0f} conn/s), "
              f"max {run.max_concurrent:,} concurrent: {run.verdict.upper()}")]
    for finding in run.failing:
        when = f" at {finding.t:.1f} s" if finding.t is not None else ""
        lines.append(f"  {finding.kind} x{finding.count}{when}: {finding.summary}")
        lines += [f"      {frame}" for frame in finding.frames]
        for other in finding.stacks[1:2]:  # a race's other access (or a lock-order cycle's other edge)
            lines += ["    against:"] + [f"      {frame}" for frame in other[:3]]
    known = [f for f in run.findings if f.known]
    if known:
        ids = sorted({f.known for f in known})
        lines.append(f"  known upstream reports (not failing): {sum(f.count for f in known)} in {len(known)} "
                     f"signatures ({', '.join(ids)}; see lwsbuild/resources/known_races.toml)")
    capped = run.capped
    if capped:
        lines.append(f"  CAPPED: {capped['skipped_at_max_concurrent']:,} initiations skipped at --max-concurrent "
                     f"{capped['max_concurrent']}" + (f"; RLIMIT_NOFILE clamped to {capped['nofile']}"
                                                       if capped["nofile_clamped"] else "")
                     + " (the rate above is not the profile's)")
    admission = run.admission
    if admission and admission["behind"]:
        lines.append(f"  BEHIND: {admission['behind']:,} connections due by --cps not admitted (at most "
                     f"{admission['batch']} per service round: asked more than the threads did)")
    outcomes = (run.summary or {}).get("outcomes", {})
    if outcomes:
        lines.append("  outcomes: " + "; ".join(f"{target} " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
                                                for target, counts in outcomes.items()))
    server = run.server
    if server:
        lines.append(f"  server context ({server['server_threads']} threads): {server['http_served'] or 0:,} HTTP answers; "
                     "raw clients " + "; ".join(f"{kind} {c['started']:,} started, {c['answered']:,} answered"
                                                for kind, c in (server["rogue"] or {}).items()))
    return "\n".join(lines)
