"""Property-based fuzzing of every outside input (issue 20): a fixed, derandomized budget per target.

The targets and their one property live in helpers/fuzz_targets.py; bench/fuzz.py runs the same
targets as a long campaign. LWSBUILD_FUZZ_EXAMPLES raises the budget here (default 60 per target).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.fuzz_targets import Target, targets

EXAMPLES = int(os.environ.get("LWSBUILD_FUZZ_EXAMPLES", "60"))
TARGETS = targets()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_outside_input_fails_as_one_line_or_not_at_all(target: Target) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=timedelta(seconds=10),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(st.data())
    def check(data: st.DataObject) -> None:
        target.run(data.draw(target.strategy))

    check()
