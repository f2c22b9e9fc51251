"""The record of hand checks (lwsbuild/resources/verified.toml) is consistent with the pins and the series."""

from __future__ import annotations

from lwsbuild.series import fixes as series
from lwsbuild.series import verified
from lwsbuild.source import releases


def test_every_check_names_a_pinned_release_or_range_a_step_a_command_a_date_and_a_verdict() -> None:
    pinned = {r.version for r in releases.all_releases()}
    for check in verified.checks():
        first = check.version.split(" ", 1)[0]
        assert first in pinned, check
        assert check.step and check.command and check.result, check
        assert check.date.startswith("20") and check.verdict in ("pass", "fail", "defect-reproduced"), check


def test_every_release_the_series_covers_was_classified_through_the_series_in_every_mode() -> None:
    for release in releases.all_releases():
        if not series.supported(release):
            continue
        modes = {c.series for c in verified.for_version(release.version) if c.step.startswith("patch") and c.good}
        assert {"all", "unfixed", "seed"} <= modes, release.version


def test_series_checks_of_pinned_trees_ran_on_the_pin() -> None:
    for check in verified.checks():
        release = releases.get(check.version) if check.version in {r.version for r in releases.all_releases()} else None
        if release and check.with_series and check.tree_id and len(check.tree_id) == 40 and check.step.startswith("patch"):
            assert check.tree_id == release.tree_id, check


def test_versions_shows_the_record() -> None:
    summary = verified.summary("4.3.3")
    assert {"patch", "build", "stress"} <= set(summary["steps"])
