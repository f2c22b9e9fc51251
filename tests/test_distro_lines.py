"""The release lines distributions still ship, proven on every CI run (issue 21).

Every pinned release a Debian suite serves besides the default (today Debian 12's 4.1.6, the one
release of the 4.1 line a test can fetch) is fetched from Debian, patched in every mode, built,
smoke-tested, and proven: its unfixed asan build shows a defect under the stress harness, the
build with every fix but the seed's shows the seed's heap-use-after-free, and its fixed asan build
runs clean. The default release (4.3.5) is proven by test_smoke.py and
test_stress.py. lwsbuild/series/verified.py marks exactly these releases "proven in CI".
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from conftest import Cli
from lwsbuild.series import verified

LINES = verified.ci_proven_lines()


def test_debian_12s_release_is_among_the_lines_ci_proves() -> None:
    assert "4.1.6" in LINES


@pytest.mark.network
@pytest.mark.parametrize("version", LINES)
def test_every_tag_mode_classifies_without_conflict(cli: Cli, version: str) -> None:
    for mode, absent in (([], "applied"), (["--series", "seed"], "applied"), (["--unfixed"], "absent")):
        result = cli("patch", "--lws-version", version, "--json", *mode)
        assert result.returncode == 0, result.stderr
        statuses = collections.Counter(p["status"] for p in result.json["patches"])
        assert set(statuses) <= {absent, "not-needed", "upstream", "reverted"} and statuses[absent] > 0, statuses


@pytest.mark.build
@pytest.mark.network
@pytest.mark.parametrize("version", LINES)
def test_the_line_is_built_smoked_and_proven(cli: Cli, version: str, tmp_path: Path) -> None:
    release = cli("build", "--lws-version", version, "--json")
    assert release.returncode == 0, release.stderr[-3000:]
    smoke = cli("smoke", "--prefix", release.json["prefix"], "--json")
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr
    assert smoke.json["ok"] and smoke.json["lws_version"].startswith(version.rsplit(".", 1)[0])

    # Unfixed, the defect shows within a second (on 4.1.6 lws's own lock assert in the connect
    # failure path, or an ASan report): a defect, never a clean run or a tool error.
    unfixed = cli("stress", "--lws-version", version, "--variant", "asan", "--unfixed", "--duration", "20",
                  "--watchdog", "15", "--json", timeout=900)
    assert unfixed.returncode == 8, unfixed.stderr[-3000:]
    assert unfixed.json["verdict"] == "defect"

    # The seed's own defect: with every fix but the seed's four, the connect timeout scheduled on
    # thread 0 fires on a freed connection (4.1.6: 3 of 3 runs, within a second). Up to three bounded
    # runs, each a defect, at least one an ASan heap-use-after-free.
    seen = []
    for _ in range(3):
        without_seed = cli("stress", "--lws-version", version, "--variant", "asan", "--series", "all-seed",
                           "--duration", "20", "--watchdog", "15", "--json", timeout=900)
        assert without_seed.returncode == 8, without_seed.stderr[-3000:]
        kinds = [r["kind"] for r in without_seed.json["sanitizer_reports"]]
        if "heap-use-after-free" in kinds:
            break
        seen.append(kinds)
    else:
        pytest.fail(f"three runs without the seed fixes, none an ASan heap-use-after-free: {seen}")

    fixed = cli("stress", "--lws-version", version, "--variant", "asan", "--duration", "10", "--watchdog", "15",
                "--json", "--report", str(tmp_path / "fixed"), timeout=900)
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    data = fixed.json
    assert data["verdict"] == "clean" and data["sanitizer_reports"] == [] and data["connections"] > 1000
    assert data["outcomes"]["echo"]["echoed"] > 0


@pytest.mark.network
def test_debian_12s_own_patches_are_classified(cli: Cli) -> None:
    """Debian 12 ships 4.1.6-3 with no security upload: the package's own patches are read (none)."""
    result = cli("debian-patches", "--lws-version", "4.1.6", "--json")
    assert result.returncode == 0, result.stderr
    data = result.json
    assert data["suite"] == "bookworm" and data["version"].startswith("4.1.6-") and data["patches"] == []


def test_a_library_that_misreports_its_release_is_accepted_only_as_upstream_left_it() -> None:
    """Upstream left CMakeLists.txt at 4.1.0 for 4.1.1-4.1.3 and at 4.2.1 for 4.2.2 (releases.toml)."""
    from lwsbuild.native import library
    from lwsbuild.source import releases

    assert [r.version for r in releases.all_releases() if r.reports_version] == ["4.1.1", "4.1.2", "4.1.3", "4.2.2"]
    assert library._reported_version("4.2.2") == "4.2.1"
    assert library._reported_version("4.2.1") is None and library._reported_version("9.9.9") is None
