"""`lwsbuild patch`: the fix series classified per tree, applied to a copy, or undone (`--unfixed`).

The patched trees are read back and checked at the very lines the fixes are about.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, CliResult, Json, run_cli
from helpers import cachestate
from helpers.archives import copy_tree, edited
from helpers.checks import error_line
from helpers.loopback import LoopbackServer
from lwsbuild.series import fixes as series
from lwsbuild.source import releases

PIN_435 = "572da87937f5e9d6aac00631d7588025117bfb9e"
CONNECT3 = "lib/core-net/client/connect3.c"
CONNECT4 = "lib/core-net/client/connect4.c"
LOGS = "lib/core/logs.c"
SCHEDULE_ON_TSI0 = "lws_sul_schedule(wsi->a.context, 0, &wsi->sul_connect_timeout"
SCHEDULE_ON_WSI_TSI = "lws_sul_schedule(wsi->a.context, wsi->tsi, &wsi->sul_connect_timeout"
CANCEL = "lws_sul_cancel(&wsi->sul_connect_timeout);"


def declared_ids() -> list[str]:
    data = tomllib.loads((REPO / "patches" / "series.toml").read_text())
    return [entry["id"] for entry in data["fix"]]


def failed1_region(connect3: str) -> str:
    """From the failed1: label to the function's `return NULL;`."""
    found = re.search(r"\nfailed1:\n(.*?)return NULL;", connect3, re.DOTALL)
    assert found, "no failed1: label"
    return found.group(1)


def function_body(source: str, name: str) -> str:
    """The body of a top-level C function `name` (lws style: name at line start, closing brace alone)."""
    found = re.search(rf"\n{re.escape(name)}\(.*?\n}}\n", source, re.DOTALL)
    assert found, f"no function {name}"
    return found.group(0)


def statuses(data: Json) -> dict[str, str]:
    return {p["id"]: p["status"] for p in data["patches"]}


@pytest.fixture(scope="module")
def fixed(debian_cache: Path, lws_tree: Path) -> tuple[CliResult, CliResult]:
    """(`patch --json`, `patch`) on the session's 4.3.5; the pristine tree must not change."""
    before = cachestate.snapshot(lws_tree)
    runs = run_cli("patch", "--json", cache=debian_cache), run_cli("patch", cache=debian_cache)
    assert cachestate.snapshot(lws_tree) == before
    return runs


@pytest.fixture(scope="module")
def unfixed(debian_cache: Path, lws_tree: Path) -> tuple[CliResult, CliResult]:
    before = cachestate.snapshot(lws_tree)
    runs = run_cli("patch", "--unfixed", "--json", cache=debian_cache), run_cli("patch", "--unfixed", cache=debian_cache)
    assert cachestate.snapshot(lws_tree) == before
    return runs


@pytest.mark.network
def test_patch_on_4_3_5_reports_upstream_fixes_and_applies_the_rest(fixed: tuple[CliResult, CliResult]) -> None:
    result, human = fixed
    assert result.returncode == 0, result.stderr
    data = result.json
    assert (data["version"], data["tree_id"], data["series"]) == ("4.3.5", PIN_435, "all")
    assert (data["unfixed"], data["unpinned"], data["marks"]) == (False, False, [])
    found = statuses(data)
    assert list(found) == declared_ids()
    assert {pid: found[pid] for pid in ("0001", "0002", "0003", "0004")} == {
        "0001": "upstream", "0002": "upstream", "0003": "upstream", "0004": "applied"}
    # Every fix as its line on 4.3.5 says (ours: applied, upstream, not-needed).
    lines = series.forms(releases.get("4.3.5"))
    assert found == {pid: series.expected_status(line) for pid, line in lines.items()}
    for entry in data["patches"]:
        line = lines[entry["id"]]
        assert line is not None
        assert (entry["versions"], entry["patch"], entry["upstream"], entry["sha256"]) == (
            line.versions, line.patch or None, line.upstream or None, line.sha256 or None)
    tree = Path(data["path"])  # the patched tree; the pristine one is source_path
    assert data["prepared_tree_id"] != PIN_435 and tree != Path(data["source_path"])
    assert Path(data["source_path"]).name == PIN_435
    connect3 = (tree / CONNECT3).read_text()
    assert connect3.count(SCHEDULE_ON_WSI_TSI) == 2 and SCHEDULE_ON_TSI0 not in connect3
    assert CANCEL in failed1_region(connect3)
    logs = (tree / LOGS).read_text()
    assert "lws_context_lock(" in function_body(logs, "__lws_lc_tag")
    assert "lws_context_lock(" in function_body(logs, "__lws_lc_untag")
    assert human.returncode == 0, human.stderr
    assert re.search(r"^  0004 applied +logs: ", human.stdout, re.MULTILINE)
    assert re.search(r"^  0001 upstream +client: ", human.stdout, re.MULTILINE)
    assert "UNFIXED" not in human.stdout and "UNPINNED" not in human.stdout


@pytest.mark.network
def test_repeat_patch_reuses_the_prepared_tree(fixed: tuple[CliResult, CliResult], debian_cache: Path) -> None:
    first = fixed[0].json
    inode = Path(first["path"]).stat().st_ino
    again = run_cli("patch", "--json", cache=debian_cache)
    assert again.returncode == 0, again.stderr
    assert (again.json["path"], again.json["prepared_tree_id"]) == (first["path"], first["prepared_tree_id"])
    assert Path(first["path"]).stat().st_ino == inode


@pytest.mark.network
def test_seed_series_is_the_original_four(debian_cache: Path, lws_tree: Path) -> None:
    result = run_cli("patch", "--series", "seed", "--json", cache=debian_cache)
    assert result.returncode == 0, result.stderr
    assert statuses(result.json) == {"0001": "upstream", "0002": "upstream", "0003": "upstream", "0004": "applied"}
    assert result.json["series"] == "seed"


@pytest.mark.network
def test_unfixed_puts_the_bug_back_and_says_so_loudly(unfixed: tuple[CliResult, CliResult]) -> None:
    result, human = unfixed
    assert result.returncode == 0, result.stderr
    data = result.json
    assert data["unfixed"] is True and "UNFIXED" in data["marks"]
    found = statuses(data)
    assert {pid: found[pid] for pid in ("0001", "0002", "0003", "0004")} == {
        "0001": "reverted", "0002": "reverted", "0003": "reverted", "0004": "absent"}
    tree = Path(data["path"])
    connect3 = (tree / CONNECT3).read_text()
    # Both connect-timeout sites schedule on service thread 0, and failed1: frees with it pending.
    assert connect3.count(SCHEDULE_ON_TSI0) == 2 and SCHEDULE_ON_WSI_TSI not in connect3
    assert CANCEL not in failed1_region(connect3)
    connect4 = (tree / CONNECT4).read_text()
    assert connect4.count("lws_service_fd(") == 2 and "lws_service_fd_tsi" not in connect4
    logs = (tree / LOGS).read_text()
    assert "lws_context_lock" not in function_body(logs, "__lws_lc_tag")
    assert "lws_context_lock" not in function_body(logs, "__lws_lc_untag")
    assert human.returncode == 0, human.stderr
    first, *rest = human.stdout.splitlines()
    assert "[UNFIXED]" in first
    assert any(line.strip().startswith("UNFIXED: ") for line in rest)


@pytest.mark.network
def test_fixed_and_unfixed_trees_are_different_entries(fixed: tuple[CliResult, CliResult],
                                                       unfixed: tuple[CliResult, CliResult]) -> None:
    assert fixed[0].json["path"] != unfixed[0].json["path"]
    assert fixed[0].json["prepared_tree_id"] != unfixed[0].json["prepared_tree_id"]


def test_a_release_outside_the_series_fails_in_one_line_before_any_download(tmp_path: Path) -> None:
    with LoopbackServer({}) as server:
        for sources in ([], ["--source", "debian"], ["--source", f"archive:{server.url('v4.0.0.tar.gz')}"]):
            result = run_cli("patch", "--lws-version", "4.0.0", "--allow-unpinned", *sources, "--json", cache=tmp_path)
            assert result.returncode == 2
            line = error_line(result)  # one line: not even the default mirror list was tried
            assert "4.0.0 is outside the fix series 'all': fixes 0001, 0002" in line
            assert "(pinned releases it covers: 4.1." in line  # the range grows as lines are added
            assert result.stdout == ""
        assert server.requests == []
    assert cachestate.entries(tmp_path) == set()


@pytest.mark.parametrize("args", [["--series", "nope"], ["--lws-version", "9.9.9"], ["--lws-version", "four"],
                                  ["--source", "debianish"]])
def test_bad_arguments_fail_in_one_line_with_exit_2(args: list[str], tmp_path: Path) -> None:
    result = run_cli("patch", *args, "--json", cache=tmp_path)
    assert result.returncode == 2
    assert "(fix: " in error_line(result)
    assert result.stdout == ""
    assert cachestate.entries(tmp_path) == set()


@pytest.mark.network
def test_patch_never_modifies_the_users_dir(lws_tree: Path, tmp_path: Path) -> None:
    mine = copy_tree(lws_tree, tmp_path / "my-lws")  # real copies: any write to them would show
    before = cachestate.snapshot(mine)
    result = run_cli("patch", "--source", f"dir:{mine}", "--json", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert (result.json["tree_id"], statuses(result.json)["0004"]) == (PIN_435, "applied")
    assert cachestate.snapshot(mine) == before
    assert "lws_context_lock" not in function_body((mine / LOGS).read_text(), "__lws_lc_tag")
    prepared = Path(result.json["path"])
    assert "lws_context_lock(" in function_body((prepared / LOGS).read_text(), "__lws_lc_tag")


@pytest.mark.network
def test_conflict_is_fatal_names_patch_file_and_hunk_and_publishes_nothing(lws_tree: Path, tmp_path: Path) -> None:
    tree = copy_tree(lws_tree, tmp_path / "edited-lws", link=True)
    # 0002's hunk neither applies (its context moved) nor reverse-applies (the line after it changed).
    edited(tree, CONNECT3, f"failed1:\n\t{CANCEL}\n", f"failed1:\n\t{CANCEL}\n\t/* a local change */\n")
    cache = tmp_path / "cache"
    result = run_cli("patch", "--source", f"dir:{tree}", "--allow-unpinned", "--json", cache=cache)
    assert result.returncode == 4
    errors = [line for line in result.stderr.splitlines() if line.startswith("lwsbuild: error:")]
    assert len(errors) == 1, result.stderr
    assert re.search(rf"fix 0002 .*, line 4\.3\.4 - 4\.3\.10: upstream bd8f69e43's change \(0002-[a-z0-9-]+\.patch\) does not "
                     rf"reverse-apply on libwebsockets 4\.3\.5 UNPINNED \(tree [0-9a-f]{{12}}\) at {CONNECT3} hunk 1 ", errors[0])
    # The other stderr line is the UNPINNED notice of the fetch; nothing else.
    assert [line for line in result.stderr.splitlines() if line not in errors] == [
        line for line in result.stderr.splitlines() if line.startswith("lwsbuild: UNPINNED:")]
    assert result.stdout == ""
    published = cachestate.entries(cache)
    assert not any(name.startswith("prepared/") for name in published), published
    assert cachestate.leftovers(cache) == set()


@pytest.mark.network
def test_unpinned_and_unfixed_are_both_marked(lws_tree: Path, tmp_path: Path) -> None:
    # An unpinned version number inside the lines of the pins: 4.3.5.1 takes 4.3.4 - 4.3.10's forms.
    args = ["patch", "--lws-version", "4.3.5.1", "--allow-unpinned", "--source", f"dir:{lws_tree}", "--unfixed"]
    result = run_cli(*args, "--json", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    data = result.json
    assert (data["version"], data["unpinned"], data["unfixed"]) == ("4.3.5.1", True, True)
    assert data["marks"] == ["UNPINNED", "UNFIXED"]
    human = run_cli(*args, cache=tmp_path)
    assert human.returncode == 0, human.stderr
    assert "4.3.5.1 [UNPINNED] [UNFIXED]" in human.stdout.splitlines()[0]
