"""Unit tests of the EV power distributor, one behaviour each (gateway.distribution)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import pytest

from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases
from gateway.distribution import (
    Allocation,
    ChargerState,
    DecisionCode,
    DistributionConfig,
    Distributor,
)
from gateway.distribution.admission import Candidate, Priority, admit
from gateway.distribution.waterfill import Flow, ceil_to_step, fill, fill_in_steps, floor_to_step

FAST = DistributionConfig(ramp_up_rate=100.0, initial_current=32.0)
"""No ramp in the way: for tests of the sharing itself."""


def sample(
    currents: Sequence[float] = (0.0, 0.0, 0.0),
    *,
    plugged: bool = True,
    state: ComponentState = ComponentState.CHARGING,
    limit: float | None = None,
    at: float = 0.0,
) -> ChargerSample:
    """A charger reading: currents per charger terminal, 230 V."""
    values = [*currents, 0.0, 0.0, 0.0][:3]
    return ChargerSample(
        at,
        sum(values) * 230.0,
        Phases(*values),
        Phases(230.0, 230.0, 230.0),
        None,
        CableState.EV_LOCKED if plugged else CableState.UNPLUGGED,
        state,
        limit,
        Bounds(0.0, 22080.0),
    )


def charger(
    cid: str,
    phases: tuple[int, ...] = (1, 2, 3),
    max_current: float = 32.0,
    currents: Sequence[float] = (0.0, 0.0, 0.0),
    **kwargs: object,
) -> ChargerState:
    """A working charger with an EV drawing `currents` (per terminal)."""
    plugged = bool(kwargs.pop("plugged", True))
    return ChargerState(
        cid,
        phases,
        max_current,
        sample=sample(currents, plugged=plugged),
        **kwargs,  # type: ignore[arg-type]
    )


def per_phase(allocation: Allocation) -> tuple[float, float, float]:
    return allocation.phase_currents.as_tuple()


# --- phases and rotation ------------------------------------------------------------
def test_one_phase_ev_on_rotated_charger_loads_grid_l2() -> None:
    """A [2,3,1] charger's L1 is grid L2: a 1-phase EV there loads grid L2 only."""
    distributor = Distributor(FAST)
    bay = charger("bay", (2, 3, 1), currents=(8.0, 0.0, 0.0))
    allocation = distributor.distribute(1e9, [bay], 20.0, 0.0)
    decision = allocation.decisions["bay"]
    assert decision.grid_phases == (2,)
    assert decision.ev_phases == 1
    assert allocation["bay"] == 20.0
    assert per_phase(allocation) == (0.0, 20.0, 0.0)
    assert decision.power == pytest.approx(20.0 * 230.0)


def test_ev_not_drawing_yet_counts_on_every_wired_phase() -> None:
    allocation = Distributor(FAST).distribute(1e9, [charger("bay", (3, 1, 2))], 20.0, 0.0)
    assert allocation.decisions["bay"].grid_phases == (1, 2, 3)
    assert per_phase(allocation) == (20.0, 20.0, 20.0)


def test_single_phase_charger_counts_on_its_grid_phase() -> None:
    allocation = Distributor(FAST).distribute(1e9, [charger("bay", (3,))], 20.0, 0.0)
    assert per_phase(allocation) == (0.0, 0.0, 20.0)


def test_configured_ev_phases_use_the_first_terminals() -> None:
    bay = charger("bay", (2, 3, 1), ev_phases=1)
    allocation = Distributor(FAST).distribute(1e9, [bay], 20.0, 0.0)
    assert allocation.decisions["bay"].grid_phases == (2,)


def test_detected_phases_only_widen_within_a_session() -> None:
    distributor = Distributor(FAST)
    distributor.distribute(1e9, [charger("bay", currents=(8.0, 0.0, 0.0))], 20.0, 0.0)
    widened = distributor.distribute(1e9, [charger("bay", currents=(8.0, 8.0, 8.0))], 20.0, 5.0)
    assert widened.decisions["bay"].grid_phases == (1, 2, 3)
    for tick, currents in ((10.0, (8.0, 0.0, 0.0)), (15.0, (0.0, 0.0, 0.0))):
        later = distributor.distribute(1e9, [charger("bay", currents=currents)], 20.0, tick)
        assert later.decisions["bay"].grid_phases == (1, 2, 3)


def test_unplugging_forgets_the_detected_phases() -> None:
    distributor = Distributor(FAST)
    distributor.distribute(1e9, [charger("bay", currents=(8.0, 0.0, 0.0))], 20.0, 0.0)
    distributor.distribute(1e9, [charger("bay", plugged=False)], 20.0, 5.0)
    again = distributor.distribute(1e9, [charger("bay")], 20.0, 10.0)
    assert again.decisions["bay"].grid_phases == (1, 2, 3)


# --- hard limits ----------------------------------------------------------------------
def test_phase_limit_respected_and_max_min_fair_with_mixed_evs() -> None:
    """a: 1p on L1; b: 3p; c, d: 1p on L2. L2 carries three EVs, L1 two."""
    chargers = [
        charger("a", (1, 2, 3), currents=(7.0, 0.0, 0.0)),
        charger("b", (1, 2, 3), currents=(7.0, 7.0, 7.0)),
        charger("c", (2, 3, 1), currents=(7.0, 0.0, 0.0)),
        charger("d", (2,), currents=(7.0,)),
    ]
    allocation = Distributor(FAST).distribute(1e9, chargers, 20.0, 0.0)
    l1, l2, l3 = per_phase(allocation)
    assert l1 <= 20.0 + 1e-9 and l2 <= 20.0 + 1e-9 and l3 <= 20.0 + 1e-9
    # b, c, d share L2 equally (20/3 on a 0.1 A grid); a takes what L1 has left.
    assert sorted([allocation["b"], allocation["c"], allocation["d"]]) == [6.6, 6.7, 6.7]
    assert allocation["a"] == pytest.approx(20.0 - allocation["b"])


def test_target_power_is_never_exceeded_and_counts_ev_phases() -> None:
    chargers = [
        charger("one", currents=(8.0, 0.0, 0.0)),
        charger("three", currents=(8.0, 8.0, 8.0)),
    ]
    allocation = Distributor(FAST).distribute(9200.0, chargers, None, 0.0)
    # 230 W/A for the 1-phase EV, 690 W/A for the 3-phase one: 10 A each = 9200 W.
    assert allocation["one"] == allocation["three"] == 10.0
    assert allocation.power == pytest.approx(9200.0)


def test_limits_round_down_to_each_chargers_step() -> None:
    chargers = [
        charger("coarse", currents=(8.0, 8.0, 8.0), step=1.0),
        charger("fine", currents=(8.0, 8.0, 8.0), step=0.1),
        charger("fine2", currents=(8.0, 8.0, 8.0), step=0.1),
    ]
    allocation = Distributor(FAST).distribute(1e9, chargers, 25.0, 0.0)
    assert allocation["coarse"] == 8.0
    # The coarse charger's rounding remainder goes to the others, on their step.
    assert allocation["fine"] + allocation["fine2"] == pytest.approx(17.0)
    assert {allocation["fine"], allocation["fine2"]} == {8.5}


def test_a_limit_is_zero_or_at_least_the_minimum() -> None:
    chargers = [charger("a"), charger("b")]
    allocation = Distributor(FAST).distribute(1e9, chargers, 10.0, 0.0)
    assert sorted(allocation.limits.values()) == [0.0, 10.0]
    waiting = next(d for d in allocation.decisions.values() if d.current == 0.0)
    assert waiting.code == DecisionCode.WAITING
    assert "no room for 6.0 A" in waiting.reason


def test_charger_maximum_below_minimum_gets_zero() -> None:
    allocation = Distributor().distribute(1e9, [charger("tiny", max_current=5.0)], None, 0.0)
    assert allocation["tiny"] == 0.0
    assert allocation.decisions["tiny"].code == DecisionCode.BELOW_MINIMUM


def test_nan_or_negative_target_charges_nothing() -> None:
    for target in (math.nan, -5.0):
        allocation = Distributor().distribute(target, [charger("a")], None, 0.0)
        assert allocation["a"] == 0.0


def test_duplicate_charger_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Distributor().distribute(1e4, [charger("a"), charger("a")], None, 0.0)


# --- admission and rotation -------------------------------------------------------------
def test_longest_waiting_admitted_first() -> None:
    distributor = Distributor(FAST)
    distributor.distribute(1e9, [charger("first")], 12.0, 0.0)
    both = distributor.distribute(1e9, [charger("first"), charger("second")], 12.0, 5.0)
    assert both["first"] == 6.0 and both["second"] == 6.0
    three = [charger("first"), charger("second"), charger("third")]
    full = distributor.distribute(1e9, three, 12.0, 10.0)
    assert full["third"] == 0.0
    assert full.decisions["third"].code == DecisionCode.WAITING


def test_rotation_lets_every_ev_charge_over_time() -> None:
    """Four 3-phase EVs, room for two: over two hours each gets about half the time."""
    config = DistributionConfig(rotation_period=600.0)
    distributor = Distributor(config)
    names = ["a", "b", "c", "d"]
    limits = dict.fromkeys(names, 0.0)
    charged = dict.fromkeys(names, 0.0)
    for tick in range(0, 7200, 5):
        evs = [charger(n, currents=(limits[n],) * 3) for n in names]
        allocation = distributor.distribute(1e9, evs, 13.0, float(tick))
        limits = allocation.limits
        for n in names:
            charged[n] += 5.0 if limits[n] > 0 else 0.0
        assert sum(1 for v in limits.values() if v > 0) <= 2
    assert min(charged.values()) >= 0.4 * 7200
    reasons = {d.code for d in allocation.decisions.values()}
    assert reasons <= {DecisionCode.CHARGING, DecisionCode.WAITING, DecisionCode.PAUSED_MIN_OFF}


def test_rotation_waits_for_min_on_time() -> None:
    config = DistributionConfig(rotation_period=10.0, min_on_time=60.0, ramp_up_rate=100.0)
    distributor = Distributor(config)
    distributor.distribute(1e9, [charger("a")], 8.0, 0.0)
    drawing = charger("a", currents=(6.0,) * 3)
    during = distributor.distribute(1e9, [drawing, charger("b")], 8.0, 30.0)
    assert during["a"] > 0 and during["b"] == 0.0
    after = distributor.distribute(1e9, [drawing, charger("b")], 8.0, 61.0)
    assert after["a"] == 0.0 and after["b"] > 0
    assert after.decisions["a"].code == DecisionCode.PAUSED_ROTATION


def test_admission_skips_a_misfit_but_reserves_for_a_starving_waiter() -> None:
    usage_3p: dict[Hashable, float] = {1: 1.0, 2: 1.0, 3: 1.0}
    capacity: dict[Hashable, float] = {1: 10.0, 2: 20.0, 3: 20.0}
    l1: dict[Hashable, float] = {1: 1.0}
    l2: dict[Hashable, float] = {2: 1.0}
    on = Candidate("on", Priority.CHARGING, 0.0, 6.0, l1)
    big = Candidate("big", Priority.WAITING, 1.0, 6.0, usage_3p)
    small = Candidate("small", Priority.WAITING, 2.0, 6.0, l2)
    assert admit([on, big, small], capacity) == (["on", "small"], ["big"])
    starving = Candidate("big", Priority.WAITING, 1.0, 6.0, usage_3p, starving=True)
    assert admit([on, starving, small], capacity) == (["on"], ["big", "small"])


# --- reclaim --------------------------------------------------------------------------------
def test_reclaim_caps_an_ev_drawing_below_its_limit_and_probes_back_up() -> None:
    config = DistributionConfig(ramp_up_rate=100.0, initial_current=32.0, reclaim_delay=30.0)
    distributor = Distributor(config)
    start = distributor.distribute(1e9, [charger("a"), charger("b")], 32.0, 0.0)
    assert start["a"] == start["b"] == 16.0
    limits = start.limits
    for tick in (10.0, 20.0, 30.0, 40.0):  # a's car takes 8 A only
        evs = [charger("a", currents=(8.0,) * 3), charger("b", currents=(limits["b"],) * 3)]
        allocation = distributor.distribute(1e9, evs, 32.0, tick)
        limits = allocation.limits
    assert limits["a"] == 9.0
    assert limits["b"] == 23.0
    assert allocation.decisions["a"].code == DecisionCode.RECLAIMED
    assert allocation.reason("a") == "reclaimed: draws 8.0 A, capped at 9.0 A"
    # The car takes all it is given again: the cap is lifted and a gets its share back.
    evs = [charger("a", currents=(9.0,) * 3), charger("b", currents=(23.0,) * 3)]
    probed = distributor.distribute(1e9, evs, 32.0, 50.0)
    assert probed["a"] == 16.0 and probed["b"] == 16.0


def test_reclaim_never_goes_below_the_minimum() -> None:
    config = DistributionConfig(reclaim_delay=10.0, idle_timeout=1e6)
    distributor = Distributor(config)
    distributor.distribute(1e9, [charger("a")], None, 0.0)
    for tick in range(10, 70, 10):  # each raise restarts the delay: the EV may follow it
        evs = [charger("a", currents=(1.0,) * 3)]
        allocation = distributor.distribute(1e9, evs, None, float(tick))
    assert allocation["a"] == 6.0
    assert allocation.reason("a") == "reclaimed: draws 1.0 A, capped at 6.0 A"


# --- dynamics ---------------------------------------------------------------------------------
def test_cut_at_once_when_the_target_drops() -> None:
    distributor = Distributor(FAST)
    evs = [charger("a", currents=(16.0,) * 3), charger("b", currents=(16.0,) * 3)]
    high = distributor.distribute(22080.0, evs, None, 0.0)
    assert high["a"] == high["b"] == 16.0
    low = distributor.distribute(9660.0, evs, None, 1.0)
    assert low["a"] == low["b"] == 7.0
    assert low.power <= 9660.0


def test_raise_is_gradual() -> None:
    config = DistributionConfig(ramp_up_rate=2.0, initial_current=10.0)
    distributor = Distributor(config)
    first = distributor.distribute(1e9, [charger("a")], None, 0.0)
    assert first["a"] == 10.0
    assert first.decisions["a"].code == DecisionCode.RAMPING
    second = distributor.distribute(1e9, [charger("a", currents=(10.0,) * 3)], None, 3.0)
    assert second["a"] == 16.0
    later = distributor.distribute(1e9, [charger("a", currents=(16.0,) * 3)], None, 1000.0)
    assert later["a"] == 32.0
    assert later.decisions["a"].code == DecisionCode.AT_MAXIMUM


def test_min_off_time_and_safety_cut_overriding_min_on_time() -> None:
    config = DistributionConfig(min_on_time=120.0, min_off_time=30.0, ramp_up_rate=100.0)
    distributor = Distributor(config)
    distributor.distribute(1e9, [charger("a")], None, 0.0)
    cut = distributor.distribute(1000.0, [charger("a", currents=(6.0,) * 3)], None, 10.0)
    assert cut["a"] == 0.0
    assert cut.decisions["a"].code == DecisionCode.PAUSED_LIMIT
    assert "min on time overridden" in cut.reason("a")
    held = distributor.distribute(1e9, [charger("a")], None, 20.0)
    assert held["a"] == 0.0
    assert held.decisions["a"].code == DecisionCode.PAUSED_MIN_OFF
    resumed = distributor.distribute(1e9, [charger("a")], None, 41.0)
    assert resumed["a"] > 0


# --- data quality and plug state -----------------------------------------------------------------
def test_stale_charger_consumes_headroom_at_its_last_limit() -> None:
    distributor = Distributor(FAST)
    distributor.distribute(1e9, [charger("a"), charger("b")], 32.0, 0.0)
    stale_a = ChargerState("a", (1, 2, 3), 32.0, sample=sample((0.0,) * 3), fresh=False)
    allocation = distributor.distribute(1e9, [stale_a, charger("b")], 32.0, 5.0)
    decision = allocation.decisions["a"]
    assert decision.code == DecisionCode.STALE
    assert not decision.controlled
    assert decision.current == 16.0  # held, and reserved on every wired phase
    assert decision.reserved == Phases(16.0, 16.0, 16.0)
    assert allocation["b"] == 16.0
    assert per_phase(allocation) == (32.0, 32.0, 32.0)
    # Plenty of headroom later: a stale charger is never raised.
    later = distributor.distribute(1e9, [stale_a], 32.0, 600.0)
    assert later["a"] == 16.0


def test_stale_charger_never_commanded_reserves_its_maximum() -> None:
    missing = ChargerState("a", (1,), 16.0, sample=None, fresh=False)
    allocation = Distributor(FAST).distribute(1e9, [missing, charger("b")], 20.0, 0.0)
    assert allocation.decisions["a"].reserved == Phases(16.0, 0.0, 0.0)
    assert allocation["b"] == 0.0  # 6 A no longer fits on L1
    assert allocation.decisions["b"].code == DecisionCode.WAITING


def test_reserves_above_the_limit_zero_everyone_on_that_phase() -> None:
    missing = ChargerState("a", (1,), 32.0, sample=None, fresh=False)
    allocation = Distributor(FAST).distribute(1e9, [missing, charger("b", (2,))], 20.0, 0.0)
    assert allocation["a"] == 0.0
    assert allocation["b"] == 20.0  # L2 is unaffected
    assert allocation.notes == ("reserves of uncontrolled chargers alone exceed the L1 limit",)


def test_uncertain_charger_is_held_not_raised() -> None:
    distributor = Distributor(FAST)
    distributor.distribute(1e9, [charger("a"), charger("b")], 32.0, 0.0)
    uncertain = charger("a", currents=(16.0,) * 3, status="uncertain")
    allocation = distributor.distribute(1e9, [uncertain], 32.0, 5.0)
    assert allocation["a"] == 16.0
    assert allocation.decisions["a"].code == DecisionCode.UNCERTAIN


def test_unplugged_charger_gets_nothing_and_reserves_nothing() -> None:
    """The SDK's "unplugged and idle" row gives such a charger 6900 W every 60 s; we do not."""
    distributor = Distributor()
    for tick in (0.0, 61.0, 122.0):
        allocation = distributor.distribute(20000.0, [charger("a", plugged=False)], 32.0, tick)
        assert allocation["a"] == 0.0
        assert allocation.decisions["a"].code == DecisionCode.NO_EV
        assert allocation.power == 0.0


def test_not_working_charger_gets_zero_but_its_draw_is_reserved() -> None:
    broken = ChargerState(
        "a", (1, 2, 3), 32.0, sample=sample((10.0,) * 3, state=ComponentState.ERROR)
    )
    allocation = Distributor(FAST).distribute(1e9, [broken, charger("b")], 32.0, 0.0)
    assert allocation["a"] == 0.0
    assert allocation.decisions["a"].code == DecisionCode.NOT_WORKING
    assert allocation["b"] == 22.0


def test_idle_ev_yields_its_place_to_evs_that_draw() -> None:
    config = DistributionConfig(
        idle_timeout=60.0, reclaim_delay=1e6, ramp_up_rate=100.0, resume_timeout=1e6
    )
    distributor = Distributor(config)
    limits = distributor.distribute(1e9, [charger("full"), charger("hungry")], 24.0, 0.0).limits
    for tick in range(5, 125, 5):
        evs = [charger("full"), charger("hungry", currents=(limits["hungry"],) * 3)]
        allocation = distributor.distribute(1e9, evs, 24.0, float(tick))
        limits = allocation.limits
    assert allocation["full"] == 0.0
    assert allocation.decisions["full"].code == DecisionCode.PAUSED_IDLE
    assert allocation["hungry"] == 24.0


def test_allocation_reports_totals_and_reasons() -> None:
    allocation = Distributor(FAST).distribute(
        1e9, [charger("a", currents=(8.0, 0.0, 0.0)), charger("b", plugged=False)], 20.0, 0.0
    )
    assert allocation.limits == {"a": 20.0, "b": 0.0}
    assert allocation.reason("a").startswith("started after waiting 0 s; charging: fair share")
    assert allocation.reason("b") == "no EV: nothing reserved"
    assert per_phase(allocation) == (20.0, 0.0, 0.0)


# --- building blocks -----------------------------------------------------------------------------
def test_water_filling_is_max_min_fair() -> None:
    flows = [
        Flow("a", 6.0, 32.0, 0.1, {1: 1.0}),
        Flow("b", 6.0, 8.0, 0.1, {1: 1.0}),
        Flow("c", 6.0, 32.0, 0.1, {1: 1.0, 2: 1.0}),
    ]
    exact = fill(flows, {1: 30.0, 2: 10.0})
    assert exact == pytest.approx({"a": 12.0, "b": 8.0, "c": 10.0})
    assert fill_in_steps(flows, {1: 30.0, 2: 10.0}) == {"a": 12.0, "b": 8.0, "c": 10.0}


def test_step_rounding_helpers() -> None:
    assert floor_to_step(8.99, 1.0) == 8.0
    assert floor_to_step(0.3, 0.1) == 0.3
    assert ceil_to_step(6.01, 1.0) == 7.0
    assert ceil_to_step(6.0, 0.1) == 6.0


def test_invalid_inputs_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="phases"):
        ChargerState("a", (1, 1), 16.0)
    with pytest.raises(ValueError, match="ev_phases"):
        ChargerState("a", (1,), 16.0, ev_phases=3)
    with pytest.raises(ValueError, match="status"):
        ChargerState("a", (1,), 16.0, status="broken")
    with pytest.raises(ValueError, match="initial_current"):
        DistributionConfig(initial_current=5.0)
