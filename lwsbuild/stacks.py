"""A stalled process's threads: dump every thread's stack (gdb, else eu-stack) and name the locks
the threads are blocked on, so a hang is a finding with a cause rather than just "it stopped"."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

DUMP_TIMEOUT_S = 90.0  # gdb reading a sanitizer build's symbols takes a while

# Frames that mean "blocked acquiring a lock", innermost first in a stack. lws_pt_lock() is a
# macro over lws_mutex_refcount_lock(), so a refcount lock not reached through lws_context_lock()
# is a pt lock.
_WAIT_FRAMES = ("__lll_lock_wait", "__futex_abstimed_wait", "futex_wait", "___pthread_mutex_lock",
                "__pthread_mutex_lock", "pthread_mutex_lock")
_LOCK_KINDS = (("lws_context_lock", "context lock"), ("lws_vhost_lock", "vhost lock"),
               ("lws_mutex_refcount_lock", "pt lock"), ("lws_pt_lock", "pt lock"))

_THREAD = re.compile(r'^Thread \d+ \(.*?(?:LWP (\d+))?\)(?: "([^"]*)")?')
_FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?([\w.@]+) \(.*?\)(?: (?:at|from) (\S+))?")


@dataclass(frozen=True)
class BlockedThread:
    thread: str  # the thread's name (the harness names them lws-svc-N) or its LWP
    lock: str  # "context lock", "vhost lock", "pt lock" or "mutex"
    waiter: str  # the first lws/harness function above the lock call: who waits
    where: str  # its file:line when gdb knows it

    def describe(self) -> str:
        return f"{self.thread} waits for the {self.lock} in {self.waiter}" + (f" ({self.where})" if self.where else "")


def dump(pid: int) -> tuple[str, str]:
    """(tool, text) of every thread's stack of process `pid`; tool is "" when none could attach."""
    gdb = shutil.which("gdb")
    if gdb:
        command = [gdb, "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off",
                   "-ex", "thread apply all bt"]
        return "gdb", _run(command)
    eu_stack = shutil.which("eu-stack")
    if eu_stack:
        return "eu-stack", _run([eu_stack, "-p", str(pid)])
    return "", "no stack dump: neither gdb nor eu-stack is installed (apt-get install gdb)"


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DUMP_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"{command[0]} did not finish within {DUMP_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"{command[0]} could not run: {exc.strerror}"
    return done.stdout + (f"\n[{command[0]} stderr]\n{done.stderr}" if done.returncode else "")


def _threads(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """gdb's `thread apply all bt` → [(thread name, [(function, file:line), ...innermost first])]."""
    threads: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        head = _THREAD.match(line)
        if head:
            threads.append((head.group(2) or f"LWP {head.group(1)}", []))
            continue
        frame = _FRAME.match(line.strip())
        if frame and threads:
            threads[-1][1].append((frame.group(2), frame.group(3) or ""))
    return threads


def blocked(text: str) -> list[BlockedThread]:
    """Each thread blocked acquiring a lock, with the kind of lock and who is waiting for it."""
    found = []
    for name, frames in _threads(text):
        functions = [f for f, _ in frames]
        if not any(w in f for f in functions[:4] for w in _WAIT_FRAMES):
            continue
        kind, index = "mutex", 0
        for i, function in enumerate(functions[:8]):
            match = next((k for fn, k in _LOCK_KINDS if function == fn), None)
            if match:
                kind, index = match, i
                if match != "pt lock":
                    break  # lws_context_lock/lws_vhost_lock call the refcount lock: the outer name wins
        waiter = next(((f, where) for f, where in frames[index + 1:]
                       if not any(f == fn for fn, _ in _LOCK_KINDS)), ("?", ""))
        found.append(BlockedThread(name, kind, waiter[0], waiter[1]))
    return found
