"""A hang is a finding with a cause: every thread's stack is dumped and the locks are named."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwsbuild.stress import stacks

DATA = Path(__file__).parent / "data"


@pytest.fixture
def deadlocked(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A real process stuck in an ABBA deadlock between two named threads."""
    binary = tmp_path / "abba"
    subprocess.run(["cc", "-g", "-O0", "-pthread", str(DATA / "abba_deadlock.c"), "-o", str(binary)], check=True)
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed (.ci/run installs it)")
def test_a_deadlock_dump_names_each_thread_the_lock_it_waits_for_and_where(deadlocked: subprocess.Popen[str]) -> None:
    tool, text = stacks.dump(deadlocked.pid)
    assert tool == "gdb" and "lws-svc-1" in text
    found = stacks.blocked(text)
    blocked = {b.thread: b for b in found}
    # No lws context here: the locks are named by address, their holders come from pthread's record.
    assert blocked["lws-svc-1"].holder == "lws-svc-2" and blocked["lws-svc-1"].waiter == "connect_timeout"
    assert blocked["lws-svc-2"].holder == "lws-svc-1" and blocked["lws-svc-2"].waiter == "free_wsi"
    assert blocked["lws-svc-1"].lock.startswith("mutex 0x") and blocked["lws-svc-1"].lock != blocked["lws-svc-2"].lock
    assert "abba_deadlock.c:" in blocked["lws-svc-2"].where
    assert blocked["lws-svc-2"].describe().startswith("lws-svc-2 waits for mutex 0x")
    assert sorted(stacks.cycle(found)) == ["lws-svc-1", "lws-svc-2"]


def test_lws_locks_are_named_and_the_cycle_found_in_a_stored_lws_deadlock() -> None:
    # A real dump (gdb + the lock script) of the unfixed 4.3.5 asan build stalled under --mix
    # refused=1,blackhole=1: upstream's zombie check blocks on pt 0's lock holding the context lock.
    found = stacks.blocked((DATA / "gdb-unfixed-deadlock.txt").read_text())
    text = [b.describe() for b in found]
    assert any(t.startswith("lws-svc-3 waits for pt 0's lock held by lws-svc-0 in lws_sul_debug_zombies")
               for t in text), text
    assert any(t.startswith("lws-svc-0 waits for the context lock held by lws-svc-3 in lws_close_free_wsi")
               for t in text), text
    assert stacks.cycle(found) == ["lws-svc-3", "lws-svc-0"]


def test_threads_not_waiting_on_a_lock_are_not_reported() -> None:
    text = ('Thread 2 (Thread 0x7f (LWP 11) "lws-svc-1"):\n'
            "#0  0x00007f in __GI___poll (fds=0x1, nfds=2) at poll.c:29\n"
            "#1  0x00007f in _lws_plat_service_tsi (context=0x1) at unix-service.c:140\n")
    assert stacks.blocked(text) == []
