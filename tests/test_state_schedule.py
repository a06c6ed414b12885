"""`[mqtt] state_heartbeat`: charger states on change plus a heartbeat, or every tick."""

from __future__ import annotations

from gateway.core.model import (
    Bounds,
    CableState,
    ChargerSample,
    ComponentState,
    Phases,
)
from gateway.core.status import ChargerStatus
from gateway.telemetry import StateSchedule, state_key


def _sample(at: float, power: float = 4140.0, limit: float = 6.0) -> ChargerSample:
    return ChargerSample(
        timestamp=at,
        active_power=power,
        current=Phases(6.0, 6.0, 6.0),
        voltage=Phases(230.0, 230.0, 230.0),
        energy=1000.0 + at,
        cable_state=CableState.EV_LOCKED,
        component_state=ComponentState.CHARGING,
        current_limit=limit,
        inclusion_bounds=Bounds(6.0, 16.0),
    )


def test_every_tick_without_a_heartbeat() -> None:
    schedule = StateSchedule(0.0)
    key = state_key(ChargerStatus.WORKING, _sample(0.0), None)
    assert all(schedule.due("a", key, float(t), 0.0) for t in range(10))


def test_measurements_wait_for_the_heartbeat_changes_go_at_once() -> None:
    schedule = StateSchedule(10.0)
    working = ChargerStatus.WORKING
    published = [
        t for t in range(31) if schedule.due("a", state_key(working, _sample(t), None), t, 1.0)
    ]
    # power and energy change every second: only the heartbeat publishes them
    assert published == [0, 10, 20, 30]
    assert schedule.due("a", state_key(working, _sample(31, limit=8.0), None), 31, 0.0)
    assert schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(32), None), 32, 0.0)
    assert schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(33), "timeout"), 33, 0.0)
    assert not schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(34), "timeout"), 34, 0)
    # changes do not move the heartbeat: due again at 40
    assert not schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(39), "timeout"), 39, 0)
    assert schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(40), "timeout"), 40, 0)


def test_first_heartbeats_are_spread_over_one_interval() -> None:
    schedule = StateSchedule(10.0)
    key = state_key(ChargerStatus.NOT_WORKING, None, None)
    ids = [f"c{i}" for i in range(10)]
    assert all(schedule.due(cid, key, 0.0, (i + 1) / 10) for i, cid in enumerate(ids))
    per_second = [
        sum(schedule.due(cid, key, float(t), (i + 1) / 10) for i, cid in enumerate(ids))
        for t in range(1, 21)
    ]
    assert per_second == [1] * 20  # one charger a second, none twice in an interval
