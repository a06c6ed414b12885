"""Property tests of the EV distributor: random sites and states over consecutive calls.

Whatever the wiring, EVs, staleness, targets and fuses (one limit for every grid phase
or one per phase), after every call:
- no grid phase's summed limits (plus reserves of uncontrolled chargers) exceed the
  phase limit, and the estimated power never exceeds the target - unless the
  reserves alone already do, and then every controlled EV on that link gets 0;
- every limit is 0 or within [minimum, maximum] and a multiple of the charger's step;
- a charger is counted on every grid phase its EV draws on;
- a stale charger is never raised and is reserved at least at its last limit.
The sums are recomputed here from the decisions, not taken from the allocation.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases
from gateway.distribution import Allocation, ChargerState, DistributionConfig, Distributor
from gateway.distribution.waterfill import ceil_to_step, floor_to_step

VOLTS = 230.0
TOL = 1e-6


@st.composite
def wiring(draw: st.DrawFn, index: int) -> dict[str, object]:
    """A charger's fixed configuration."""
    wired = draw(st.integers(1, 3))
    phases = tuple(draw(st.permutations([1, 2, 3]))[:wired])
    return {
        "charger_id": f"c{index}",
        "phases": phases,
        "max_current": draw(st.sampled_from([5.0, 6.0, 10.0, 16.0, 20.5, 32.0])),
        "step": draw(st.sampled_from([0.1, 0.5, 1.0])),
        "ev_phases": draw(st.none() | st.integers(1, wired)),
        "min_current": draw(st.none() | st.sampled_from([6.0, 6.5, 8.0])),
    }


@st.composite
def reading(draw: st.DrawFn, fixed: dict[str, object], now: float) -> ChargerState:
    """The charger's state at one call: plug, component state, currents, freshness."""
    wired = len(fixed["phases"])  # type: ignore[arg-type]
    currents = [draw(st.sampled_from([0.0, 0.3, 0.6, 6.0, 13.7, 40.0])) for _ in range(wired)]
    currents += [0.0] * (3 - wired)
    has_sample = draw(st.integers(0, 9)) > 0
    sample = None
    if has_sample:
        sample = ChargerSample(
            now,
            sum(currents) * VOLTS,
            Phases(*currents),
            Phases(VOLTS, VOLTS, VOLTS),
            None,
            draw(
                st.sampled_from([CableState.EV_LOCKED, CableState.EV_LOCKED, CableState.UNPLUGGED])
            ),
            draw(
                st.sampled_from(
                    [ComponentState.CHARGING, ComponentState.READY, ComponentState.ERROR]
                )
            ),
            draw(st.none() | st.sampled_from([0.0, 10.0, 32.0])),
            Bounds(0.0, 1e5),
        )
    return ChargerState(
        **fixed,  # type: ignore[arg-type]
        sample=sample,
        fresh=has_sample and draw(st.integers(0, 5)) > 0,
        status=draw(st.sampled_from(["working", "working", "working", "not_working", "uncertain"])),
    )


def _check(
    chargers: list[ChargerState],
    limits_before: dict[str, float],
    allocation: Allocation,
    target: float,
    phase_limit: float | tuple[float, float, float] | None,
) -> None:
    controlled_on = [0.0, 0.0, 0.0]
    reserved_on = [0.0, 0.0, 0.0]
    controlled_power = 0.0
    reserved_power = 0.0
    for state in chargers:
        decision = allocation.decisions[state.charger_id]
        current = decision.current
        minimum = ceil_to_step(state.min_current or 6.0, state.step)
        top = floor_to_step(state.max_current, state.step)
        assert current == 0.0 or minimum - TOL <= current <= top + TOL, decision
        assert abs(current / state.step - round(current / state.step)) < TOL, decision
        if decision.controlled:
            if state.sample is not None:
                drawing = {
                    state.phases[t]
                    for t, amps in enumerate(state.sample.current.as_tuple()[: len(state.phases)])
                    if amps > 0.5
                }
                assert drawing <= set(decision.grid_phases), decision
            for phase in decision.grid_phases:
                controlled_on[phase - 1] += current
            controlled_power += current * VOLTS * len(decision.grid_phases)
        else:
            reserve = max(decision.reserved.as_tuple())
            for phase in state.phases:
                assert decision.reserved.as_tuple()[phase - 1] == reserve
                reserved_on[phase - 1] += reserve
            reserved_power += reserve * VOLTS * len(state.phases)
            before = limits_before.get(state.charger_id)
            if before is not None and not state.fresh:
                assert current <= before + TOL, "a stale charger was raised"
                assert reserve >= min(before, state.max_current) - TOL
    if phase_limit is not None:
        fuses = phase_limit if isinstance(phase_limit, tuple) else (phase_limit,) * 3
        for phase in range(3):
            if reserved_on[phase] <= fuses[phase]:
                assert controlled_on[phase] + reserved_on[phase] <= fuses[phase] + TOL
            else:
                assert controlled_on[phase] == 0.0
    if reserved_power <= target:
        assert controlled_power + reserved_power <= target * (1 + 1e-9) + TOL
    else:
        assert controlled_power == 0.0
    assert math.isclose(allocation.power, controlled_power + reserved_power, abs_tol=1e-3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_limits_stay_within_fuse_target_and_charger_bounds(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 7), label="chargers")
    fixed = [data.draw(wiring(i), label=f"wiring {i}") for i in range(count)]
    config = data.draw(
        st.builds(
            DistributionConfig,
            ramp_up_rate=st.sampled_from([0.5, 2.0, 50.0]),
            min_on_time=st.sampled_from([0.0, 60.0]),
            min_off_time=st.sampled_from([0.0, 30.0]),
            rotation_period=st.sampled_from([30.0, 900.0]),
            reclaim_delay=st.sampled_from([0.0, 60.0]),
            idle_timeout=st.sampled_from([0.0, 300.0]),
            resume_timeout=st.sampled_from([5.0, 60.0]),
            wake_pause=st.sampled_from([0.0, 10.0]),
        ),
        label="config",
    )
    distributor = Distributor(config)
    now = data.draw(st.floats(0, 1e6), label="start")
    limits: dict[str, float] = {}
    for _ in range(data.draw(st.integers(1, 8), label="calls")):
        now += data.draw(st.sampled_from([0.0, 1.0, 5.0, 31.0, 200.0, 1000.0]), label="dt")
        chargers = [data.draw(reading(f, now)) for f in fixed]
        target = data.draw(
            st.sampled_from([0.0, 1000.0, 4140.0, 11000.0, 22080.0, math.inf])
            | st.floats(0, 60000),
            label="target",
        )
        one = st.sampled_from([0.0, 6.0, 16.0, 32.0, 63.0]) | st.floats(0, 100)
        phase_limit = data.draw(st.none() | one | st.tuples(one, one, one), label="phase_limit")
        allocation = distributor.distribute(target, chargers, phase_limit, now)
        _check(chargers, limits, allocation, target, phase_limit)
        limits = allocation.limits
