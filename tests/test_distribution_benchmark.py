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
from benchmarks import distribution_grid as grid

ENERGY_BEFORE_KWH = {"evening_peak": 580.0, "mixed_phases": 191.1, "step_down": 116.9,
                     "above_fuse": 303.5}  # fmt: skip
"""Goal floor: what the 15-minute rotation delivered (README, "before")."""


@pytest.mark.timeout(600)  # CPU-bound (up to ~30 s CPU): slower on a busy shared machine
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


@pytest.fixture(scope="module")
def grid_runs() -> dict[str, dict[str, grid.GridResult]]:
    return {
        scenario.name[0]: {how.name: result for how, result in runs}
        for scenario, runs in grid.run_all()
    }


@pytest.mark.timeout(600)
def test_grid_the_meter_keeps_the_main_fuse(
    grid_runs: dict[str, dict[str, grid.GridResult]],
) -> None:
    for runs in grid_runs.values():
        for name in ("meter + switching", "meter"):
            assert runs[name].violations == 0 and runs[name].worst_over == 0.0
    house = grid_runs["A"]
    assert house["static 16 A"].violations > 0  # a static limit ignores the cooking peaks
    assert house["SDK-like"].violations > 0
    assert house["meter"].energy_kwh > house["SDK-like"].energy_kwh


@pytest.mark.timeout(600)
def test_grid_phase_switching_charges_more_from_pv(
    grid_runs: dict[str, dict[str, grid.GridResult]],
) -> None:
    pv = grid_runs["B"]
    assert pv["meter + switching"].energy_kwh > 1.1 * pv["meter"].energy_kwh
    assert pv["meter + switching"].energy_kwh > pv["SDK-like"].energy_kwh
    switches = pv["meter + switching"].figures()["phase_switches_per_ev_hour"]
    assert 0 < switches <= 3600.0 / 300.0  # at most one per switch interval
    assert pv["meter"].switches == 0


def test_grid_json_and_tables() -> None:
    scenario = grid.pv_day()
    rows = [(how, grid.run(scenario, how)) for how in grid.RUNS[1:2]]
    assert "| meter |" in grid.report(scenario, rows)
    (row,) = grid.as_json([(scenario, rows)])
    assert set(row["runs"]["meter"]) >= {"fuse_violations", "energy_kwh", "pauses_per_ev_hour",
                                         "phase_switches_per_ev_hour"}  # fmt: skip
