"""`[mqtt] state_heartbeat`: charger states on change plus a heartbeat, or every tick."""

from __future__ import annotations

import asyncio

from gateway.clock import FakeClock
from gateway.core.model import (
    Bounds,
    CableState,
    ChargerSample,
    ComponentState,
    Phases,
)
from gateway.core.status import ChargerStatus
from gateway.telemetry import StateSchedule, state_key
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.runtime_helpers import run_for
from tests.test_e2e_control import wait_until

STATE = "ev-gateway/chargers/bay-1/state"
POWER = "ev-gateway/pools/default/power"


def _sample(
    at: float, power: float = 4140.0, limit: float = 6.0, amps: float = 6.0
) -> ChargerSample:
    return ChargerSample(
        timestamp=at,
        active_power=power,
        current=Phases(amps, amps, amps),
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


def test_small_moves_wait_for_the_heartbeat_changes_go_at_once() -> None:
    schedule = StateSchedule(10.0)
    working = ChargerStatus.WORKING
    published = [
        t for t in range(31) if schedule.due("a", state_key(working, _sample(t), None), t, 1.0)
    ]
    # energy moves 1 Wh a second, within its 100 Wh band: only the heartbeat publishes it
    assert published == [0, 10, 20, 30]
    assert schedule.due("a", state_key(working, _sample(31, limit=8.0), None), 31, 0.0)
    assert schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(32), None), 32, 0.0)
    assert schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(33), "timeout"), 33, 0.0)
    assert not schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(34), "timeout"), 34, 0)
    # changes do not move the heartbeat: due again at 40
    assert not schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(39), "timeout"), 39, 0)
    assert schedule.due("a", state_key(ChargerStatus.UNCERTAIN, _sample(40), "timeout"), 40, 0)


def test_a_measured_value_goes_out_once_it_moved_past_its_deadband() -> None:
    """Bands count from the value last published, so a slow drift goes out too."""
    schedule = StateSchedule(60.0)
    working = ChargerStatus.WORKING

    def due(at: float, **values: float) -> bool:
        return schedule.due("a", state_key(working, _sample(0.0, **values), None), at, 1.0)

    assert due(0.0)
    assert not due(1.0, power=4170.0)  # 30 W
    assert due(2.0, power=4200.0)  # 60 W from the 4140 W published
    assert not due(3.0, power=4230.0)  # 30 W from the 4200 W published
    assert due(4.0, power=4230.0, amps=6.3)  # 0.3 A
    assert not due(5.0, power=4230.0, amps=6.4)
    nan = float("nan")
    assert due(6.0, power=nan, amps=6.4)  # a value became unknown
    assert not due(7.0, power=nan, amps=6.4)  # unknown both times


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


async def test_daemon_publishes_changes_at_once_and_measurements_at_the_heartbeat(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    clock = FakeClock()
    async with simulators(1, plugged=True) as sims:
        config = site_config(
            mosquitto,
            [modbus_charger("bay-1", sims[0], poll_interval=1.0)],
            power={"resampling_period": 1.0, "max_data_age": 5.0},
            mqtt={"state_heartbeat": 5.0},
        )
        async with running_gateway(config, clock) as gateway:
            await asyncio.wait_for(gateway.bridge.connected.wait(), 10)
            await run_for(clock, 2.0, 2, step=0.5)  # first tick: every state once
            await probe.wait_for(STATE, lambda m: m.json()["status"] == "working")
            start, powers = gateway.ticks, len(probe.on(POWER))
            states_before = len(probe.on(STATE))
            await run_for(clock, 10.0, 2, step=0.5)
            ticks = gateway.ticks - start
            # every tick's pool power has arrived, so every state published with it too
            await wait_until(lambda: len(probe.on(POWER)) >= powers + ticks, what="the ticks")
            published = len(probe.on(STATE)) - states_before
            assert ticks >= 10 and 2 <= published <= 3  # heartbeats only, not every tick
            sims[0].unplug()
            mark = len(probe.messages)
            await run_for(clock, 2.0, 2, step=0.5)  # a poll sees it, the next tick sends it
            state = await probe.wait_for(STATE, after=mark, timeout=10)
            assert state.json()["cable_state"] == "unplugged"
