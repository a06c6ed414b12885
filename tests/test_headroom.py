"""Dynamic headroom from a grid meter (pure): per-phase arithmetic, clamping, the stale
fallback, the grid payload, and properties that must hold for any input."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.core.headroom import GridHeadroom, GridLimits, grid_headroom, phase_headroom
from gateway.core.model import Phases
from gateway.meters.model import MeterSample
from gateway.meters.payloads import grid_state
from gateway.mqtt.payloads import dumps

NOW = 500.0
WALL = 1_764_363_600.25


def sample(p1: float, p2: float, p3: float, *, at: float = NOW) -> MeterSample:
    return MeterSample(monotonic=at, timestamp=WALL, current=Phases(p1, p2, p3))


LIMITS = GridLimits(fuse=35.0, margin=1.0, max_age=5.0)


# -- plain cases ---------------------------------------------------------------------


def test_headroom_is_fuse_minus_margin_minus_the_other_loads() -> None:
    # house 10/4/0 A, EVs 16/16/16 A: the meter shows 26/20/16
    result = grid_headroom(LIMITS, sample(26.0, 20.0, 16.0), Phases(16.0, 16.0, 16.0), NOW)
    assert result.headroom == Phases(24.0, 30.0, 34.0)
    assert result.meter == Phases(26.0, 20.0, 16.0)
    assert not result.stale and result.meter_age == 0.0 and result.fuse == 35.0


def test_a_house_load_step_cuts_the_headroom_by_the_step() -> None:
    before = grid_headroom(LIMITS, sample(26.0, 20.0, 16.0), Phases(16.0, 16.0, 16.0), NOW)
    after = grid_headroom(LIMITS, sample(46.0, 20.0, 16.0), Phases(16.0, 16.0, 16.0), NOW + 1)
    assert before.headroom.p1 - after.headroom.p1 == 20.0
    assert after.headroom == Phases(4.0, 30.0, 34.0)


def test_headroom_never_negative_when_the_house_alone_exceeds_the_fuse() -> None:
    result = grid_headroom(LIMITS, sample(40.0, 34.0, 35.0), Phases(0.0, 0.0, 0.0), NOW)
    assert result.headroom == Phases(0.0, 0.0, 0.0)


def test_export_is_not_room_above_the_fuse() -> None:
    # PV exports 20 A on L1: still at most fuse - margin for the EVs
    result = grid_headroom(LIMITS, sample(-20.0, 0.0, 0.0), Phases(0.0, 0.0, 0.0), NOW)
    assert result.headroom == Phases(34.0, 34.0, 34.0)


def test_phase_limit_caps_the_headroom() -> None:
    limits = GridLimits(fuse=35.0, margin=1.0, phase_limit=20.0)
    result = grid_headroom(limits, sample(16.0, 30.0, 0.0), Phases(16.0, 0.0, 0.0), NOW)
    assert result.headroom == Phases(20.0, 4.0, 20.0)


def test_bad_ev_currents_count_as_zero_and_a_bad_meter_phase_as_no_room() -> None:
    assert phase_headroom(LIMITS, 20.0, math.nan) == 14.0
    assert phase_headroom(LIMITS, 20.0, -3.0) == 14.0
    assert phase_headroom(LIMITS, 20.0, math.inf) == 14.0
    assert phase_headroom(LIMITS, math.nan, 10.0) == 0.0
    assert phase_headroom(LIMITS, math.inf, 10.0) == 0.0


def test_stale_meter_falls_back_to_one_ev_at_its_minimum() -> None:
    old = sample(10.0, 10.0, 10.0, at=NOW - 5.01)
    result = grid_headroom(LIMITS, old, Phases(16.0, 16.0, 16.0), NOW)
    assert result.stale and result.meter is None
    assert result.headroom == Phases(6.0, 6.0, 6.0)
    assert result.meter_age == pytest.approx(5.01)
    exactly = grid_headroom(LIMITS, sample(10.0, 10.0, 10.0, at=NOW - 5.0), Phases(), NOW)
    assert not exactly.stale  # max_age itself is still fresh


def test_no_reading_at_all_is_stale() -> None:
    result = grid_headroom(LIMITS, None, Phases(), NOW)
    assert result.stale and result.meter_age is None and result.headroom == Phases(6, 6, 6)


def test_a_non_finite_meter_current_makes_the_reading_stale() -> None:
    result = grid_headroom(LIMITS, sample(10.0, math.nan, 10.0), Phases(), NOW)
    assert result.stale and result.headroom == Phases(6.0, 6.0, 6.0)


@pytest.mark.parametrize(
    ("fuse", "margin", "configured", "phase_limit", "expected"),
    [
        (35.0, 1.0, None, None, 6.0),  # one EV at 6 A fits
        (7.0, 1.0, None, None, 6.0),  # exactly fits
        (6.5, 1.0, None, None, 0.0),  # 5.5 A: not even one EV
        (35.0, 1.0, 16.0, None, 16.0),  # configured
        (35.0, 1.0, 0.0, None, 0.0),  # configured: stop while blind
        (35.0, 1.0, None, 4.0, 4.0),  # never above phase_limit
        (10.0, 2.0, 20.0, None, 8.0),  # never above fuse - margin
    ],
)
def test_fallback_current(
    fuse: float, margin: float, configured: float | None, phase_limit: float | None, expected: float
) -> None:
    limits = GridLimits(fuse, margin, fallback_current=configured, phase_limit=phase_limit)
    assert limits.fallback == expected
    assert grid_headroom(limits, None, Phases(), NOW).headroom == Phases(*[expected] * 3)


def test_fallback_uses_the_configured_minimum_current() -> None:
    assert GridLimits(35.0, 1.0, min_current=8.0).fallback == 8.0
    assert GridLimits(8.5, 1.0, min_current=8.0).fallback == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fuse": 1.0, "margin": 1.0},
        {"fuse": 1.0, "margin": 2.0},
        {"fuse": 35.0, "margin": -1.0},
        {"fuse": math.nan},
        {"fuse": 35.0, "phase_limit": -1.0},
        {"fuse": 35.0, "fallback_current": math.inf},
    ],
)
def test_invalid_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GridLimits(**kwargs)


# -- payload -------------------------------------------------------------------------


def test_grid_payload() -> None:
    result = grid_headroom(LIMITS, sample(26.0, 20.0, 16.0), Phases(16.0, 16.0, 16.0), NOW)
    payload = grid_state(result, WALL)
    assert payload == {
        "timestamp": "2025-11-28T21:00:00.250Z",
        "fuse": 35.0,
        "meter_p1": 26.0,
        "meter_p2": 20.0,
        "meter_p3": 16.0,
        "headroom_p1": 24.0,
        "headroom_p2": 30.0,
        "headroom_p3": 34.0,
        "stale": False,
    }
    stale = grid_state(grid_headroom(LIMITS, None, Phases(), NOW), WALL)
    assert (stale["meter_p1"], stale["meter_p2"], stale["meter_p3"]) == (None, None, None)
    assert (stale["headroom_p1"], stale["stale"]) == (6.0, True)
    odd = GridHeadroom(35.0, Phases(math.nan, 1.0, 2.0), Phases(1.0, 2.0, 3.0), False, 0.0)
    assert json.loads(dumps(grid_state(odd, WALL)))["meter_p1"] is None


# -- properties ----------------------------------------------------------------------

amps = st.floats(min_value=-200.0, max_value=200.0, allow_nan=False)
ev_amps = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
limits_strategy = st.builds(
    GridLimits,
    fuse=st.floats(min_value=6.0, max_value=400.0),
    margin=st.floats(min_value=0.0, max_value=5.0),
    max_age=st.just(5.0),
    phase_limit=st.none() | st.floats(min_value=0.0, max_value=400.0),
    fallback_current=st.none() | st.floats(min_value=0.0, max_value=400.0),
)


@given(limits_strategy, amps, ev_amps, st.floats(min_value=0.0, max_value=1.0))
@example(GridLimits(fuse=80.0, margin=0.0), 80.0, 48.577927330027606, 0.0)  # rounds to 1e-14 A
def test_cutting_evs_to_the_headroom_keeps_the_meter_under_the_fuse(
    limits: GridLimits, other: float, ev: float, share: float
) -> None:
    """Any EV current up to the headroom keeps the meter at fuse - margin or below, unless
    the other loads alone are above it (then the EVs get nothing)."""
    meter = other + ev
    room = phase_headroom(limits, meter, ev)
    assert 0.0 <= room <= limits.ceiling
    new_ev = room * share
    new_meter = other + new_ev
    assert new_meter <= max(limits.usable, other) + 1e-9
    if other >= limits.usable:
        assert room <= 1e-9  # nothing (a float rounding of 1e-14 A is nothing too)


@given(limits_strategy, amps, amps, amps, ev_amps, ev_amps, ev_amps, st.floats(0.0, 20.0))
def test_headroom_is_bounded_and_stale_means_fallback(
    limits: GridLimits,
    m1: float,
    m2: float,
    m3: float,
    e1: float,
    e2: float,
    e3: float,
    age: float,
) -> None:
    result = grid_headroom(limits, sample(m1, m2, m3, at=NOW - age), Phases(e1, e2, e3), NOW)
    assert result.stale == (age > limits.max_age)
    for room in result.headroom:
        assert 0.0 <= room <= limits.ceiling <= limits.usable
    if result.stale:
        assert result.headroom == Phases(*[limits.fallback] * 3)
        assert result.meter is None
    else:
        assert result.meter == Phases(m1, m2, m3)


@given(limits_strategy, amps, ev_amps, st.floats(0.0, 50.0))
def test_more_other_load_never_gives_more_room(
    limits: GridLimits, other: float, ev: float, extra: float
) -> None:
    assert phase_headroom(limits, other + extra + ev, ev) <= phase_headroom(limits, other + ev, ev)


def test_own_current_counts_a_charger_at_most_at_its_commanded_limit() -> None:
    """A meter reading that already shows a cut, beside charger readings from before it,
    must not make room: each charger's draw is added back only up to its new limit."""
    from gateway.core.formulas import PoolMember
    from gateway.core.headroom import own_current
    from tests.factories import sample

    members = [PoolMember("a", (1, 2, 3)), PoolMember("b", (2, 3, 1)), PoolMember("c", (1,))]
    latest = {
        "a": sample(current=(16.0, 16.0, 16.0)),  # measured before its cut to 6 A
        "b": sample(current=(10.0, 10.0, 10.0)),  # never commanded: counted as measured
        "c": sample(current=(8.0, 0.0, 0.0), timestamp=0.0),  # stale: counts 0
    }
    commanded: dict[str, float | None] = {"a": 6.0, "b": None, "c": 16.0}
    own = own_current(members, latest, commanded, now=1000.5, max_data_age=3.0)
    assert own == Phases(16.0, 16.0, 16.0)
    # 25 A of house on L1 and a meter that shows the cut: the room is what the fuse
    # leaves, not 10 A more for a's stale 16 A
    limits = GridLimits(fuse=35.0, margin=1.0)
    meter = MeterSample(1000.5, 0.0, Phases(25.0 + 6.0 + 10.0, 16.0, 16.0))
    room = grid_headroom(limits, meter, own, 1000.5)
    assert room.headroom.p1 == pytest.approx(34.0 - 25.0)
