"""Charger status: the SDK's timeline (docs/design.md, "Charger status") with our reset."""

from __future__ import annotations

from gateway.core.model import CableState, ComponentState
from gateway.core.status import ChargerStatus, StatusTracker
from tests.factories import sample

W, N, U = ChargerStatus.WORKING, ChargerStatus.NOT_WORKING, ChargerStatus.UNCERTAIN


def test_sdk_status_timeline() -> None:
    tracker = StatusTracker(max_data_age=0.2, max_blocking=1.0)
    cid = "c"
    assert tracker.status(cid, None, 0.0) == N
    assert tracker.status(cid, sample(timestamp=0.0), 0.05) == W
    locked = sample(timestamp=0.1, cable=CableState.EV_LOCKED)
    assert tracker.status(cid, locked, 0.1) == W
    assert tracker.status(cid, sample(timestamp=0.2, cable=CableState.UNPLUGGED), 0.2) == N
    assert tracker.status(cid, sample(timestamp=0.3, cable=CableState.EV_LOCKED), 0.3) == W
    # no data: the sample from 0.3 goes stale after 0.2 s
    assert tracker.status(cid, sample(timestamp=0.3), 0.45) == W
    assert tracker.status(cid, sample(timestamp=0.3), 0.51) == N
    assert tracker.status(cid, sample(timestamp=0.6), 0.6) == W
    tracker.write_failed(cid, 0.6)
    assert tracker.status(cid, sample(timestamp=0.7), 0.7) == U
    assert tracker.status(cid, sample(timestamp=1.55), 1.55) == U
    assert tracker.status(cid, sample(timestamp=1.61), 1.61) == W


def test_not_working_wins_over_uncertain() -> None:
    tracker = StatusTracker(max_data_age=10)
    tracker.write_failed("c", 0.0)
    assert tracker.status("c", sample(timestamp=0.0, state=ComponentState.ERROR), 0.1) == N
    assert tracker.status("c", None, 0.1) == N


def test_states_that_are_not_working() -> None:
    tracker = StatusTracker(max_data_age=10)
    for cable, state in [
        (CableState.EV_PLUGGED, ComponentState.NOT_READY),
        (CableState.EV_PLUGGED, ComponentState.ERROR),
        (CableState.CHARGING_STATION_PLUGGED, ComponentState.READY),
        (CableState.UNSPECIFIED, ComponentState.CHARGING),
    ]:
        assert tracker.status("c", sample(cable=cable, state=state), 1000.0) == N
    assert tracker.status("c", sample(state=ComponentState.CHARGING), 1000.0) == W


def test_blocking_doubles_up_to_the_cap_and_resets_after_success() -> None:
    tracker = StatusTracker(max_data_age=1000, max_blocking=30)
    now = 0.0
    durations = []
    for _ in range(7):
        until = tracker.write_failed("c", now)
        durations.append(round(until - now, 6))
        assert tracker.write_failed("c", now + 0.1) == until  # no extension while blocked
        now = until + 0.01
    assert durations == [1, 2, 4, 8, 16, 30, 30]
    tracker.write_succeeded("c")
    assert tracker.status("c", sample(timestamp=now), now) == W
    assert round(tracker.write_failed("c", now) - now, 6) == 1
