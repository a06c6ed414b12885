"""The distribution benchmark's scenarios, run in full: our distributor's guarantees hold.

For every scenario (with sleepy EVs and EVs whose minimum is 8 A): no step with a
grid phase over the fuse, no step over the target, a fair session (Jain >= 0.90), at
most 4 pauses and resumes per EV and day, no EV left asleep while offered power, at
least 95 % of the energy the previous distributor (15-minute rotation) delivered on
the same scenarios without sleepy EVs, and more energy than the SDK-like baseline.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from benchmarks import distribution as bench

ENERGY_BEFORE_KWH = {"evening_peak": 580.0, "mixed_phases": 191.1, "step_down": 116.9,
                     "above_fuse": 303.5}  # fmt: skip
"""Goal floor: what the 15-minute rotation delivered (README, "before")."""


@pytest.mark.parametrize("make", bench.SCENARIOS, ids=lambda make: make.__name__)
def test_scenario(make: Callable[[], bench.Scenario]) -> None:
    scenario = make()
    assert any(ev.sleepy for ev in scenario.evs)
    ours = bench.run(scenario, bench.ours())
    baseline = bench.run(scenario, bench.baseline())
    assert ours.violations == 0 and ours.worst_over == 0.0
    assert ours.overshoots == 0
    assert ours.follow == 0.0
    assert ours.jain >= 0.90
    assert ours.pauses_per_ev_day <= 4.0
    assert ours.stalled_evs == 0
    assert ours.energy_kwh >= 0.95 * ENERGY_BEFORE_KWH[make.__name__]
    assert ours.energy_kwh > baseline.energy_kwh
    assert ours.jain > baseline.jain
    assert "| ours |" in bench.report(scenario, ours, baseline)


def test_baseline_overloads_the_fuse_when_the_target_exceeds_it() -> None:
    scenario = bench.above_fuse()
    assert bench.run(scenario, bench.baseline()).violations > 0


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--json", "--only", "3"])
    data = json.loads(capsys.readouterr().out)
    (row,) = data["scenarios"]
    assert row["name"].startswith("3.")
    keys = {"energy_kwh", "fuse_violations", "jain", "pauses_per_ev_day", "stalled_evs",
            "energy_lost_kwh"}  # fmt: skip
    assert keys <= row["ours"].keys() and keys <= row["baseline"].keys()
    assert row["ours"]["energy_kwh"] > row["baseline"]["energy_kwh"] > 0
