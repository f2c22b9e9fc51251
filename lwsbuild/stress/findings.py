"""Sanitizer output → findings: what went wrong, where (top frames), how often, and when first.

Parses what the stress harness leaves on stderr — AddressSanitizer / LeakSanitizer / ThreadSanitizer /
UBSan reports, glibc heap-check aborts, assertions, lws's "Zombie Sul" check — plus how the process
ended (signal, harness watchdog) into `Finding` values. Judging them (known upstream reports vs
defects) is `known_races.py`'s job; running the harness is `stress.py`'s.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

# Frames of the sanitizer runtime, glibc and the abort machinery say nothing about the defect:
# the top frames shown (and matched against known reports) start below them.
_NOISE_FILE = re.compile(r"(^|/)(libsanitizer|sanitizer_common|nptl|sysdeps|stdlib|assert|malloc|string|csu)/")
_NOISE_FUNC = re.compile(r"^(__interceptor_|__GI_|__libc_|__pthread_kill|__assert_fail|raise$|abort$|pthread_mutex_|"
                         r"pthread_create$|realloc$|malloc$|calloc$|free$|start_thread$|clone3?$)")
TOP_FRAMES = 6

_SAN_ERROR = re.compile(r"^==\d+==ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer):"
                        r" (.*)$")
_TSAN_WARNING = re.compile(r"^WARNING: ThreadSanitizer: (.*?)(?: \(pid=\d+\))?$")
_SAN_FATAL = re.compile(r"^(?:==\d+==)?FATAL: (\w+Sanitizer): (.*)$")
_SUMMARY = re.compile(r"^SUMMARY: (\w+): (.*)$")
_FRAME = re.compile(r"^\s+#(\d+) (?:0x[0-9a-f]+ in )?(.*)$")
_UBSAN = re.compile(r"^(\S+:\d+(?::\d+)?): runtime error: (.*)$")
_ASSERT = re.compile(r"^(?:\S+: )?(\S+?):(\d+): (\S+): Assertion `(.*)' failed\.")
_ZOMBIE = re.compile(r"\b(lws_sul_debug_zombies: ERROR: Zombie Sul .*)$")
# glibc's malloc checks print one of these and abort (tcache, fastbin and chunk consistency).
_GLIBC = re.compile(r"^((?:double free or corruption|free\(\)|malloc\(\)|realloc\(\)|munmap_chunk\(\)|"
                    r"malloc_consolidate\(\)|corrupted size vs\. prev_size|corrupted double-linked list)[^\n]*)$")
_REPORT_END = re.compile(r"^(={10,}|==\d+==ABORTING)$")
# Stack sections that describe the context (where memory or a mutex or a thread came from), not the
# conflicting operations themselves: never used to classify a report. ASan's "freed by" is kept: it
# is the other half of a use-after-free.
_CONTEXT_SECTION = re.compile(r"^\s*(Location is|Mutex M\d+ .*created at|Thread T\d+ .*created|previously allocated by|"
                              r"allocated by|Thread T\d+ created)")


@dataclass(frozen=True)
class Finding:
    kind: str  # "heap-use-after-free", "data race", "lock-order-inversion", "Zombie Sul", "watchdog stall", …
    tool: str  # AddressSanitizer, ThreadSanitizer, UBSan, glibc, lws, assert, harness, signal
    summary: str  # one line
    stacks: tuple[tuple[str, ...], ...] = ()  # the accesses' stacks, noise removed, each "func file:line"
    count: int = 1  # reports with the same signature
    line: int | None = None  # index of the first stderr line of the first report
    t: float | None = None  # seconds since the harness started, when that line arrived
    known: str = ""  # id of the known upstream report it matches (then it does not fail the run)
    known_reason: str = ""
    # Each access stack's very first frame's function, noise included: "the racing access is in
    # this function's own code" (and not in a free() or pthread call it makes).
    accessed_in: tuple[str, ...] = ()

    @property
    def frames(self) -> tuple[str, ...]:
        return self.stacks[0][:TOP_FRAMES] if self.stacks else ()

    @property
    def functions(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(frame.split(" ", 1)[0] for frame in stack) for stack in self.stacks)

    @property
    def signature(self) -> tuple[str, ...]:
        """Same kind and same top functions of every access = the same defect reported again.

        Stacks are sorted: TSan reports one race as A-then-B or B-then-A depending on who came second.
        """
        tops = sorted("<".join(fns[:3]) for fns in self.functions) or [self.summary]
        return (self.kind, *tops)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "tool": self.tool, "summary": self.summary, "frames": list(self.frames),
                "stacks": [list(s[:TOP_FRAMES]) for s in self.stacks], "count": self.count, "t": self.t,
                "known": self.known or None, "known_reason": self.known_reason or None}


@dataclass
class _Report:
    """One report being read: header, then stack sections."""

    kind: str
    tool: str
    summary: str
    line: int
    sections: list[tuple[bool, list[str]]] = field(default_factory=list)  # (is_access, frames)

    def frames_of(self, frame: str) -> None:
        if not self.sections:
            self.sections.append((True, []))
        self.sections[-1][1].append(frame)

    def finish(self) -> Finding:
        accesses = [frames for access, frames in self.sections if access and frames]
        stacks = tuple(tuple(f for f in frames if not _is_noise(f)) for frames in accesses)
        return Finding(self.kind, self.tool, self.summary, tuple(s for s in stacks if s), line=self.line,
                       accessed_in=tuple(frames[0].split(" ", 1)[0] for frames in accesses))


def _frame(text: str) -> str:
    """`func file:line (lib+0x12)` or `func file:line` or `(lib+0x12)` → `func file:line`."""
    text = re.sub(r"( \(BuildId: [0-9a-f]+\))?$", "", text.strip())
    text = re.sub(r" \([^()]*\+0x[0-9a-f]+\)$", "", text)
    if text.startswith("("):
        return "?? " + text
    return text


def _is_noise(frame: str) -> bool:
    func, _, where = frame.partition(" ")
    return bool(_NOISE_FUNC.match(func) or _NOISE_FILE.search(where) or func in ("??", "<null>"))


def _normalise_kind(text: str) -> str:
    text = text.strip()
    if text.startswith("lock-order-inversion"):
        return "lock-order-inversion"
    if text.startswith("attempting double-free"):
        return "double-free"
    if text.startswith("attempting free on address which was not malloc"):
        return "bad-free"
    if text.startswith("detected memory leaks"):
        return "memory leak"
    # "heap-use-after-free on address 0x…", "SEGV on unknown address 0x… (pc …)"
    return re.split(r" on (?:unknown )?address| \(pc | \(pid=", text, maxsplit=1)[0].strip()


def _signal_kind(kind: str) -> str | None:
    """ASan's report for a deadly signal: the abort or trap it explains gets its frames."""
    return {"ABRT": "abort", "ILL": "UBSan trap (SIGILL)"}.get(kind)


def parse(lines: Sequence[str], times: Sequence[float | None] | None = None) -> list[Finding]:
    """Every report in the harness's stderr, in order of first appearance, same signatures merged."""
    found: list[Finding] = []
    report: _Report | None = None
    pending_abort: Finding | None = None  # an assert / glibc / Zombie Sul line waiting for ASan's ABRT stack

    def close() -> None:
        nonlocal report, pending_abort
        if report is None:
            return
        finding = report.finish()
        signal_kind = _signal_kind(report.kind)
        if signal_kind == "abort" and pending_abort is not None:
            # ASan's "ABRT on unknown address" is the stack of the assert/glibc abort just printed
            found[found.index(pending_abort)] = replace(pending_abort, stacks=finding.stacks)
        elif signal_kind is not None:
            found.append(replace(finding, kind=signal_kind,
                                 tool="UBSan" if report.kind == "ILL" else finding.tool))
        else:
            found.append(finding)
        report, pending_abort = None, None

    for index, raw in enumerate(lines):
        line = raw.rstrip("\n")
        if report is not None:
            if frame := _FRAME.match(line):
                report.frames_of(_frame(frame.group(2)))
                continue
            starts_report = bool(_SAN_ERROR.match(line) or _TSAN_WARNING.match(line) or _UBSAN.match(line))
            summary = _SUMMARY.match(line)
            if summary and summary.group(1) != "UndefinedBehaviorSanitizer":
                report.summary = summary.group(2)
            # TSan, LSan and UBSan are done at their SUMMARY (TSan goes on running: halt_on_error=0);
            # ASan goes on with shadow bytes and thread origins up to ==PID==ABORTING.
            ends = (_REPORT_END.match(line) or (summary and report.tool != "AddressSanitizer")
                    or (report.tool == "UBSan" and line.strip()))
            if not (ends or starts_report):
                if line.strip() and not line.startswith(" " * 4) and line.endswith(":"):
                    report.sections.append((not _CONTEXT_SECTION.match(line), []))
                continue  # blank lines, shadow bytes, legends, "Cycle in lock order graph", …
            close()
            if _REPORT_END.match(line) or summary:
                continue  # the terminator itself; anything else (a report, an assert) is read below
        if m := _SAN_ERROR.match(line):
            report = _Report(_normalise_kind(m.group(2)), m.group(1), m.group(2), index)
        elif m := _TSAN_WARNING.match(line):
            report = _Report(_normalise_kind(m.group(1)), "ThreadSanitizer", m.group(1), index)
        elif m := _UBSAN.match(line):
            report = _Report("runtime error", "UBSan", f"runtime error: {m.group(2)} ({m.group(1)})", index)
        elif m := _SAN_FATAL.match(line):
            found.append(Finding("sanitizer fatal", m.group(1), m.group(2), line=index))
        elif m := _ZOMBIE.search(line):
            pending_abort = Finding("Zombie Sul", "lws", m.group(1), line=index)
            found.append(pending_abort)
        elif m := _ASSERT.search(line):
            path, number, func, expr = m.groups()
            if pending_abort is not None and pending_abort.kind == "Zombie Sul" and func == "lws_sul_debug_zombies":
                continue  # the assert that follows the zombie report is part of it
            pending_abort = Finding("lws assert" if "libwebsockets" in path else "assertion", "assert",
                                    f"{func}: Assertion `{expr}' failed ({path}:{number})", line=index)
            found.append(pending_abort)
        elif m := _GLIBC.match(line):
            pending_abort = Finding(re.sub(r" \(.*\)$", "", m.group(1)).rstrip(":"), "glibc", m.group(1), line=index)
            found.append(pending_abort)
    close()
    return _merge([replace(f, t=_time_of(f.line, times)) for f in found])


def _time_of(line: int | None, times: Sequence[float | None] | None) -> float | None:
    if line is None or times is None or line >= len(times):
        return None
    return times[line]


def _merge(findings: list[Finding]) -> list[Finding]:
    merged: dict[tuple[str, ...], Finding] = {}
    for finding in findings:
        first = merged.get(finding.signature)
        merged[finding.signature] = finding if first is None else replace(first, count=first.count + finding.count)
    return list(merged.values())


def from_exit(findings: list[Finding], returncode: int, *, watchdog: dict[str, Any] | None,
              summary: dict[str, Any] | None, watchdog_t: float | None = None,
              ended_t: float | None = None) -> list[Finding]:
    """Add what the process's end says that the reports do not: a watchdog stall, an unexplained
    signal (a UBSan trap dies by SIGILL without a word), a silent non-zero exit, a missing summary."""
    found = list(findings)
    if watchdog is not None:
        threads = "; ".join(f"tsi {t['tsi']} {t['state']} ({t['last_progress_s_ago']:.1f} s)"
                            for t in watchdog.get("threads", []))
        stalled = float(watchdog.get("stalled_s", 0.0))
        fired = watchdog_t if watchdog_t is not None else watchdog.get("t")
        # The defect happened when progress stopped, not when the watchdog noticed.
        onset = round(max(0.0, fired - stalled), 3) if fired is not None else None
        found.append(Finding(f"watchdog {watchdog.get('reason', 'stall')}", "harness",
                             f"no progress for {stalled:.1f} s (fired at {fired or 0:.1f} s) while "
                             f"{watchdog.get('main', '?')} with {watchdog.get('concurrent', '?')} connections open: "
                             f"{threads}", t=onset))
    explained = bool(found)
    if returncode < 0 and not explained:
        name = _signal_name(-returncode)
        kind = {"SIGILL": "UBSan trap (SIGILL)", "SIGSEGV": "SEGV", "SIGABRT": "abort", "SIGBUS": "SIGBUS"}.get(name, name)
        why = " (a -fsanitize-undefined-trap-on-error check fired)" if name == "SIGILL" else ""
        found.append(Finding(kind, "signal", f"lws-stress killed by {name}{why} without a report", t=ended_t))
    elif returncode > 0 and not explained:
        found.append(Finding("abnormal exit", "harness", f"lws-stress exited with {returncode} without a report",
                             t=ended_t))
    elif returncode == 0 and summary is None and not explained:
        found.append(Finding("no summary", "harness", "lws-stress exited 0 without printing its summary", t=ended_t))
    if summary is not None:
        mismatched = sum(outcomes.get("mismatch", 0) for outcomes in summary.get("outcomes", {}).values())
        if mismatched:
            found.append(Finding("echo mismatch", "harness", f"{mismatched} echoes came back different from what was sent"))
    return found


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
