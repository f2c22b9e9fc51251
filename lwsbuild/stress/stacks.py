"""A stalled process's threads: dump every thread's stack (gdb, else eu-stack), find which mutex each
blocked thread waits for and which thread holds it, name lws's locks, and find the cycle. A hang is
then a finding with a cause ("deadlock: lws-svc-0 waits for pt 3's lock held by lws-svc-3, which
waits for the context lock held by lws-svc-0") rather than just "it stopped"."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

DUMP_TIMEOUT_S = 90.0  # gdb reading a sanitizer build's symbols takes a while

# Frames that mean "blocked acquiring a lock", innermost first in a stack.
_WAIT_FRAMES = ("__lll_lock_wait", "___pthread_mutex_lock", "__pthread_mutex_lock", "pthread_mutex_lock",
                "__pthread_mutex_lock_full")
# Functions that only take a lock: the waiter is the first frame above them. lws_context_lock() and
# lws_pt_lock() are macros over lws_mutex_refcount_lock() in some releases, functions in others.
_LOCK_FUNCTIONS = ("lws_mutex_refcount_lock", "lws_context_lock", "lws_pt_lock", "lws_vhost_lock",
                   "_lws_vhost_lock")

# lws's own locks, read through the harness's `cx` (the context) when the library has debug types:
# "LOCK <name> <mutex address> <owner LWP>" per line. A build without them prints an error instead,
# and the locks are then named by their address.
_LWS_LOCKS = """\
set $c = (struct lws_context *)cx
printf "LOCK context %p %d\\n", &$c->mr.lock, $c->mr.lock.__data.__owner
set $n = 0
while $n < $c->count_threads
  printf "LOCK pt%d %p %d\\n", $n, &$c->pt[$n].mr.lock, $c->pt[$n].mr.lock.__data.__owner
  set $n = $n + 1
end
set $v = $c->vhost_list
while $v
  printf "LOCK vhost:%s %p %d\\n", $v->name, &$v->mr.lock, $v->mr.lock.__data.__owner
  set $v = $v->vhost_next
end
"""

_THREAD = re.compile(r'^Thread \d+ \(.*?LWP (\d+)\)\)?(?: "([^"]*)")?')
_FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?([\w.@]+) \((.*?)\)(?: (?:at|from) (\S+))?$")
_MUTEX_ARG = re.compile(r"\b(?:futex_word|futex|mutex|mr)=(?:\w+@entry=)?(0x[0-9a-f]+)")
_LOCK_LINE = re.compile(r"^LOCK (\S+) (0x[0-9a-f]+) (-?\d+)$", re.MULTILINE)
_OWNER_LINE = re.compile(r"^OWNER (0x[0-9a-f]+) (-?\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class BlockedThread:
    thread: str  # the thread's name (the harness names them lws-svc-N) or its LWP
    lock: str  # "the context lock", "pt 3's lock", "vhost stress-echo's lock" or "mutex 0x…"
    holder: str  # the thread holding it ("" when unknown)
    waiter: str  # the first function above the locking call: who waits
    where: str  # its file:line when gdb knows it

    def describe(self) -> str:
        held = f" held by {self.holder}" if self.holder else ""
        return f"{self.thread} waits for {self.lock}{held} in {self.waiter}" + (f" ({self.where})" if self.where else "")


@dataclass(frozen=True)
class Thread:
    lwp: int
    name: str
    frames: tuple[tuple[str, str, str], ...]  # (function, arguments, file:line), innermost first


def dump(pid: int) -> tuple[str, str]:
    """(tool, text) of every thread's stack of process `pid`, followed by the owners of the mutexes
    the blocked threads wait for; tool is "" when no debugger could attach."""
    gdb = shutil.which("gdb")
    if gdb:
        text = _gdb(gdb, pid, ["thread apply all bt"], script=_LWS_LOCKS)
        waited = sorted({m for t in _threads(text) if (m := _waited_mutex(t))} - set(_lws_locks(text)))
        if waited:  # any other mutex: its owner from pthread's own record (needs no lws types)
            text += _gdb(gdb, pid, [f'printf "OWNER %p %d\\n", {m}, ((pthread_mutex_t *){m})->__data.__owner'
                                    for m in waited])
        return "gdb", text
    eu_stack = shutil.which("eu-stack")
    if eu_stack:
        return "eu-stack", _run([eu_stack, "-p", str(pid)])
    return "", "no stack dump: neither gdb nor eu-stack is installed (apt-get install gdb)"


def _gdb(gdb: str, pid: int, commands: list[str], script: str = "") -> str:
    argv = [gdb, "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off"]
    for command in commands:
        argv += ["-ex", command]
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", prefix="lwsbuild-locks-") as file:
        if script:  # last: a build without lws's debug types stops the script at its first line
            file.write(script)
            file.flush()
            argv += ["-x", file.name]
        return _run(argv)


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DUMP_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return f"{command[0]} did not finish within {DUMP_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"{command[0]} could not run: {exc.strerror}"
    return done.stdout + (f"\n[{command[0]} stderr]\n{done.stderr}" if done.stderr.strip() else "")


def _threads(text: str) -> list[Thread]:
    """gdb's `thread apply all bt` → threads with their frames."""
    threads: list[Thread] = []
    lwp, name = 0, ""
    frames: list[tuple[str, str, str]] = []
    for line in text.splitlines() + ["Thread 0 (end (LWP 0))"]:
        head = _THREAD.match(line)
        if head:
            if lwp:
                threads.append(Thread(lwp, name, tuple(frames)))
            lwp, name, frames = int(head.group(1)), head.group(2) or f"LWP {head.group(1)}", []
            continue
        frame = _FRAME.match(line.strip())
        if frame and lwp:
            frames.append((frame.group(2), frame.group(3), frame.group(4) or ""))
    return threads


def _waited_mutex(thread: Thread) -> str | None:
    """The address of the mutex a thread is blocked on, if it is blocked on one."""
    if not any(w in f for f, _, _ in thread.frames[:5] for w in _WAIT_FRAMES):
        return None
    for _, arguments, _ in thread.frames[:6]:
        match = _MUTEX_ARG.search(arguments)
        if match:
            return match.group(1)
    return None


def _lws_locks(text: str) -> dict[str, tuple[str, int]]:
    """mutex address → (lock name, owner LWP) for lws's context, pt and vhost locks."""
    names = {}
    for name, address, owner in _LOCK_LINE.findall(text):
        if name == "context":
            label = "the context lock"
        elif name.startswith("pt"):
            label = f"pt {name[2:]}'s lock"
        else:
            label = f"vhost {name.split(':', 1)[1]}'s lock"
        names[address] = (label, int(owner))
    return names


def blocked(text: str) -> list[BlockedThread]:
    """Each thread blocked acquiring a lock: which lock, who holds it, who waits and where."""
    threads = _threads(text)
    by_lwp = {t.lwp: t.name for t in threads}
    locks = _lws_locks(text)
    owners = {address: int(owner) for address, owner in _OWNER_LINE.findall(text)}
    found = []
    for thread in threads:
        mutex = _waited_mutex(thread)
        if mutex is None:
            continue
        label, owner = locks.get(mutex, (f"mutex {mutex}", owners.get(mutex, 0)))
        above = [(f, where) for f, _, where in thread.frames
                 if f not in _LOCK_FUNCTIONS and not any(w in f for w in _WAIT_FRAMES)
                 and not f.startswith(("lll_", "futex"))]
        waiter, where = above[0] if above else ("?", "")
        holder = by_lwp.get(owner, f"LWP {owner}") if owner > 0 else ""
        found.append(BlockedThread(thread.name, label, holder, waiter, where))
    return found


def cycle(found: list[BlockedThread]) -> list[str]:
    """The threads of a wait-for cycle (a deadlock), in order, or [] when the waits do not close."""
    waits = {b.thread: b.holder for b in found if b.holder}
    for start in waits:
        path, current = [], start
        while current in waits and current not in path:
            path.append(current)
            current = waits[current]
        if current in path:
            return path[path.index(current):]
    return []
