"""Reading sanitizer output: real stderr captured from real harness runs (tests/data/README.md says
which run made each file) becomes findings with the right kind, top frames, count and time; the
known-upstream-report policy judges them."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import Json
from lwsbuild.errors import KnownRacesError
from lwsbuild.stress import findings, known_races
from lwsbuild.stress.findings import Finding

DATA = Path(__file__).parent / "data"


def lines(name: str) -> list[str]:
    path = DATA / name
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as handle:
            return handle.read().splitlines()
    return path.read_text().splitlines()


def only(found: list[Finding]) -> Finding:
    assert len(found) == 1, [(f.kind, f.summary) for f in found]
    return found[0]


def test_heap_use_after_free_has_kind_summary_and_both_stacks() -> None:
    finding = only(findings.parse(lines("asan-heap-use-after-free.stderr")))
    assert (finding.kind, finding.tool, finding.count) == ("heap-use-after-free", "AddressSanitizer", 1)
    assert finding.summary == "heap-use-after-free libwebsockets-4.3.5/lib/core/lws_dll2.c:177 in lws_dll2_remove"
    assert finding.frames[:2] == ("lws_dll2_remove libwebsockets-4.3.5/lib/core/lws_dll2.c:177",
                                  "lws_sul_cancel libwebsockets-4.3.5/lib/core-net/sorted-usec-list.c:70")
    freed_by = finding.functions[1]
    assert "__lws_free_wsi" in freed_by and "_realloc" in freed_by  # the free is kept: the other half of a UAF
    assert all("interceptor" not in frame for stack in finding.stacks for frame in stack)


def test_zombie_sul_takes_the_assert_and_the_abort_stack() -> None:
    finding = only(findings.parse(lines("asan-zombie-sul.stderr")))
    assert finding.kind == "Zombie Sul"
    assert "Zombie Sul (on list 0) __lws_reset_wsi" in finding.summary
    assert finding.functions[0][:3] == ("lws_sul_debug_zombies", "__lws_reset_wsi", "__lws_free_wsi")


def test_zombie_sul_without_abort_stack_is_still_one_finding_and_explains_the_abort() -> None:
    found = findings.parse(lines("asan-zombie-sul-no-handle-abort.stderr"))
    assert only(found).kind == "Zombie Sul" and only(found).frames == ()
    assert findings.from_exit(found, -6, watchdog=None, summary=None) == found


def test_lws_assert() -> None:
    finding = only(findings.parse(lines("asan-pollfd-assert-no-handle-abort.stderr")))
    assert (finding.kind, finding.tool) == ("lws assert", "assert")
    assert finding.summary.startswith("__remove_wsi_socket_from_fds: Assertion `m == LWS_NO_FDS_POS")
    assert finding.summary.endswith("(libwebsockets-4.3.5/lib/core-net/pollfd.c:395)")


def test_ubsan_trap_with_asan_stack() -> None:
    finding = only(findings.parse(lines("asan-ubsan-trap-sigill.stderr")))
    assert (finding.kind, finding.tool) == ("UBSan trap (SIGILL)", "UBSan")
    assert finding.functions[0][:2] == ("lws_dll2_remove", "__lws_same_vh_protocol_remove")


def test_silent_sigill_is_a_ubsan_trap() -> None:
    # what the same trap looks like without handle_sigill: exit by SIGILL, nothing on stderr
    finding = only(findings.from_exit(findings.parse([]), -4, watchdog=None, summary=None))
    assert (finding.kind, finding.tool) == ("UBSan trap (SIGILL)", "signal")


@pytest.mark.parametrize("name, kind, tool", [
    ("release-glibc-double-free.stderr", "double free or corruption", "glibc"),
    ("release-pthread-assert.stderr", "assertion", "assert"),
])
def test_release_build_aborts(name: str, kind: str, tool: str) -> None:
    found = findings.parse(lines(name))
    assert (only(found).kind, only(found).tool) == (kind, tool)
    assert findings.from_exit(found, -6, watchdog=None, summary=None) == found  # the abort is explained


def test_watchdog_stall_is_dated_when_progress_stopped() -> None:
    events = [json.loads(line) for line in lines("watchdog-stall.stdout")]
    watchdog = events[-1]
    assert watchdog["type"] == "watchdog"
    finding = only(findings.from_exit(findings.parse(lines("watchdog-stall.stderr")), 3,
                                      watchdog=watchdog, summary=None))
    assert finding.kind == "watchdog stall"
    assert finding.t == pytest.approx(watchdog["t"] - watchdog["stalled_s"], abs=0.01)
    assert "tsi 2 in lws_client_connect_via_info" in finding.summary


def test_ubsan_message_and_leak_reports() -> None:
    ubsan, leak = findings.parse(lines("ubsan-runtime-error-and-leak.stderr"))
    assert ubsan.kind == "runtime error" and "signed integer overflow" in ubsan.summary
    assert ubsan.frames[0].startswith("add ") and ubsan.frames[1].startswith("main ")
    assert leak.kind == "memory leak" and leak.summary == "24 byte(s) leaked in 1 allocation(s)."
    assert leak.frames[0].startswith("main ")


def test_tsan_reports_are_all_counted_and_merged_by_signature() -> None:
    text = lines("tsan-unfixed.stderr.gz")
    found = findings.parse(text)
    warnings = sum(line.startswith("WARNING: ThreadSanitizer:") for line in text)
    assert sum(f.count for f in found if f.tool == "ThreadSanitizer") == warnings
    assert len({f.signature for f in found}) == len(found)
    kinds = {f.kind for f in found}
    assert {"data race", "lock-order-inversion", "heap-use-after-free", "lws assert"} <= kinds
    inversion = next(f for f in found if f.kind == "lock-order-inversion")
    assert len(inversion.stacks) == 4  # second_deadlock_stack=1: both edges, both acquisitions


def test_repeated_report_counts_twice_with_the_first_time() -> None:
    text = lines("asan-heap-use-after-free.stderr")
    finding = only(findings.parse(text + text, times=[float(i) for i in range(2 * len(text))]))
    assert (finding.count, finding.t) == (2, 1.0)  # line 0 is ASan's ===== banner


@pytest.mark.parametrize("returncode, summary, kind", [
    (-11, None, "SEGV"),
    (1, None, "abnormal exit"),
    (0, None, "no summary"),
    (0, {"outcomes": {"echo": {"echoed": 9, "mismatch": 1}}}, "echo mismatch"),
])
def test_the_end_of_the_process_speaks_when_the_reports_do_not(returncode: int, summary: Json | None, kind: str) -> None:
    assert only(findings.from_exit([], returncode, watchdog=None, summary=summary)).kind == kind


def test_clean_end_has_no_findings() -> None:
    assert findings.from_exit([], 0, watchdog=None, summary={"outcomes": {"echo": {"echoed": 9}}}) == []


# --- the known-upstream-report policy ----------------------------------------------------------

def test_before_0020_the_accept_modulation_reports_and_the_log_tag_race_fail() -> None:
    judged = known_races.classify(findings.parse(lines("tsan-all-0001-0008.stderr.gz")))
    failing = known_races.failing(judged)
    log_tag = [f for f in failing if known_races.never_known(f)]
    assert [f.functions[1][0] for f in log_tag] == ["__lws_lc_tag"]  # the stored run's one log-tag race
    others = [f for f in failing if f not in log_tag]
    # 0020's defects: another pt's listener changed from this pt (a race and a lock-order inversion)
    assert others and all(any("lws_accept_modulation" in stack for stack in f.functions) for f in others)
    assert {f.kind for f in others} == {"data race", "lock-order-inversion"}
    assert known_races.verdict(judged) == "defect"


def test_with_0020_the_all_series_leaves_only_known_reports() -> None:
    judged = known_races.classify(findings.parse(lines("tsan-all-0001-0008-0020.stderr.gz")))
    assert judged and not known_races.failing(judged)
    assert known_races.verdict(judged) == "clean"


def test_every_known_entry_is_measured_in_the_all_series_run() -> None:
    judged = known_races.classify(findings.parse(lines("tsan-all-0001-0008.stderr.gz")))
    assert {f.known for f in judged if f.known} == {race.id for race in known_races.load()
                                                    if not race.rare and race.covers("4.3.5")}


@pytest.mark.parametrize("sample, version, failing", [
    # 4.1.6: the line's own start-up, counter and start-up lock-order reports, each listed with its reason
    ("tsan-4.1.6-all.stderr.gz", "4.1.6", 0),
    # 4.2.2 with 0022: only reports 4.3 has too (before 0022: "destroy of a locked mutex" at context destroy)
    ("tsan-4.2.2-all.stderr.gz", "4.2.2", 0),
])
def test_the_distro_lines_all_series_leaves_only_known_reports(sample: str, version: str, failing: int) -> None:
    judged = known_races.classify(findings.parse(lines(sample)))
    assert judged and len(known_races.failing(judged)) == failing
    own = {race.id for race in known_races.load() if race.versions and race.covers(version) and not race.rare}
    assert own <= {f.known for f in judged if f.known}  # every entry of the line's own is measured there


def test_sul_list_races_of_the_unfixed_build_are_defects() -> None:
    judged = known_races.classify(findings.parse(lines("tsan-unfixed.stderr.gz")))
    sul = [f for f in judged if any("lws_sul_cancel" in stack[:3] for stack in f.functions)]
    assert sul and not any(f.known for f in sul)


def test_log_tag_code_can_never_be_listed() -> None:
    entry = {"id": "x", "kind": "data race", "at": ["lws_dll2_remove"], "via": ["__lws_lc_untag"], "reason": "r"}
    with pytest.raises(KnownRacesError, match="__lws_lc_untag"):
        known_races._entry(entry)
    with pytest.raises(KnownRacesError, match="every data race"):
        known_races._entry({**entry, "at": [], "via": []})
    race = known_races._entry({**entry, "via": []})
    log_tag = Finding("data race", "ThreadSanitizer", "s", (("lws_dll2_remove", "__lws_lc_untag"), ("__lws_lc_tag",)),
                      accessed_in=("lws_dll2_remove", "__lws_lc_tag"))
    assert race.matches(log_tag)  # the entry alone would match it…
    assert not known_races.classify([log_tag], (race,))[0].known  # …the policy still fails it


def test_a_race_inside_free_is_not_the_allocator_statistics_counter() -> None:
    counter = next(race for race in known_races.load() if race.id == "alloc-stats-counter")
    stacks = (("_realloc libwebsockets-4.3.5/lib/core/alloc.c:136", "lws_zalloc x.c:1"), ("lws_dll2_remove x.c:2",))
    assert counter.matches(Finding("data race", "ThreadSanitizer", "s", stacks, accessed_in=("_realloc", "lws_dll2_remove")))
    # same stacks once the noise is gone, but the access was free()'s: a real race on freed memory
    assert not counter.matches(Finding("data race", "ThreadSanitizer", "s", stacks, accessed_in=("free", "lws_dll2_remove")))


def test_the_5_0_h2_server_cycles_and_route_race_are_listed_only_by_their_own_stacks() -> None:
    # the shapes measured on 5.0.0's server-smp run under TSan (2026-12-06, verified.toml)
    create = ("lws_mutex_refcount_lock libwebsockets.c:1547", "__lws_wsi_create_with_role wsi.c:317",
              "lws_create_new_server_wsi adopt.c:64", "__lws_wsi_server_new http2.c:263")
    close = ("lws_mutex_refcount_lock libwebsockets.c:1547", "__lws_reset_wsi close.c:89",
             "__lws_free_wsi close.c:269")
    cycle = Finding("lock-order-inversion", "ThreadSanitizer", "s", (create, close),
                    accessed_in=("lws_mutex_refcount_lock", "lws_mutex_refcount_lock"))
    assert known_races.classify([cycle])[0].known == "h2-stream-create-lock-order-50"
    # a cycle through stream creation alone is not this one
    assert not known_races.classify([replace(cycle, stacks=(create, create))])[0].known
    route = Finding("data race", "ThreadSanitizer", "s",
                    (("lws_sort_dns sort-dns.c:672", "lws_client_connect_3_connect connect3.c:394"),
                     ("lws_dll2_add_tail lws_dll2.c:198", "rops_handle_POLLIN_netlink ops-netlink.c:444")),
                    accessed_in=("lws_sort_dns", "lws_dll2_add_tail"))
    assert known_races.classify([route])[0].known == "route-table-pt-locks-50"
    listed = {race.id: race for race in known_races.load()}
    assert not listed["route-table-pt-locks-50"].covers("4.3.5") and listed["route-table-pt-locks-50"].covers("5.0.0")


def test_the_mutex_owner_read_reached_from_the_log_tag_code_is_the_mutex_s_not_the_list_s() -> None:
    # CI 2026-12-06 (tsi0-timeouts, tsan): mutex-refcount-owner with one stack through __lws_lc_untag,
    # which takes the context lock since 0004: the racing accesses are both in the mutex's own code
    owner = Finding("data race", "ThreadSanitizer", "s",
                    (("lws_mutex_refcount_lock libwebsockets.c:1306", "__lws_lc_untag logs.c:170"),
                     ("lws_mutex_refcount_lock libwebsockets.c:1310", "lws_service_fd_tsi service.c:600")),
                    accessed_in=("lws_mutex_refcount_lock", "lws_mutex_refcount_lock"))
    assert known_races.never_known(owner) == ""
    assert known_races.classify([owner])[0].known == "mutex-refcount-owner"
    # an access the log-tag code makes itself still can never be listed
    listed = replace(owner, accessed_in=("lws_dll2_remove", "lws_mutex_refcount_lock"))
    assert "__lws_lc_untag" in known_races.never_known(listed)
