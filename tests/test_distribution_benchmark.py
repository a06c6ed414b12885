"""The distribution benchmark's scenarios, run in full: our distributor's guarantees hold.

For every scenario: no step with a grid phase over the fuse, no step over the target,
a fair share (Jain >= 0.95), and more energy than the SDK-like baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks import distribution as bench


@pytest.mark.parametrize("make", bench.SCENARIOS, ids=lambda make: make.__name__)
def test_scenario(make: Callable[[], bench.Scenario]) -> None:
    scenario = make()
    ours = bench.run(scenario, bench.ours())
    baseline = bench.run(scenario, bench.baseline())
    assert ours.violations == 0 and ours.worst_over == 0.0
    assert ours.overshoots == 0
    assert ours.follow == 0.0
    assert ours.jain >= 0.95
    assert ours.energy_kwh > baseline.energy_kwh
    assert ours.jain > baseline.jain
    assert "| ours |" in bench.report(scenario, ours, baseline)


def test_baseline_overloads_the_fuse_when_the_target_exceeds_it() -> None:
    scenario = bench.above_fuse()
    assert bench.run(scenario, bench.baseline()).violations > 0
