"""End to end: an Alfen charger switched 3 -> 1 phase at a low target and back at a
high one, by the daemon on a fake clock, with the vendor sequence in the simulator's
write log (0 A, a pause, register 1215 written, resume) and the fuse held throughout.

Two real Alfen simulators (Modbus TCP) on the same fake clock as the daemon; proposals
arrive over a real mosquitto. `bay-0` may switch; `bay-1` may not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.chargers.phase_switch import SwitchTiming
from gateway.clock import FakeClock
from gateway.config import ConfigError, config_from_dict
from gateway.simulator.modbus_server import SimulatedCharger
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, site_config
from tests.runtime_helpers import run_for
from tests.test_e2e_control import propose, wait_until
from tests.test_e2e_grid import ev_draw

BASE = "ev-gateway"
FUSE = 16.0
IDLE = 3  # the tick loop and the two pollers sleep on the clock at least


@contextlib.asynccontextmanager
async def alfens(clock: FakeClock) -> AsyncIterator[list[SimulatedCharger]]:
    sims = [SimulatedCharger("alfen-eve", clock=clock.now) for _ in range(2)]
    for sim in sims:
        await sim.start()
        sim.plug(phases=3, ev_max_current=16.0)
    try:
        yield sims
    finally:
        for sim in sims:
            await asyncio.wait_for(sim.stop(), 10)


def switch_config(mosquitto: Mosquitto, sims: list[SimulatedCharger]) -> dict[str, Any]:
    chargers = [
        modbus_charger("bay-0", sims[0], poll_interval=0.5, phase_switching=True),
        modbus_charger("bay-1", sims[1], poll_interval=0.5),
    ]
    return site_config(
        mosquitto,
        chargers,
        pools=[{"name": "default", "chargers": ["bay-0", "bay-1"], "phase_limit": FUSE}],
        power={"resampling_period": 1.0, "max_data_age": 3.0, "max_proposal_age": 600.0},
        distribution={
            "ramp_up_rate": 80.0,
            "min_on_time": 0.0,
            "min_off_time": 0.0,
            "phase_switch_interval": 60.0,
        },
    )


def switch_sequence(sim: SimulatedCharger, phases: int) -> tuple[float, float, float]:
    """(time of the 0 A write, of the phase write, of the first resume) for the switch."""
    log = sim.write_log
    at = max(i for i, (_, what, value) in enumerate(log) if what == "phases" and value == phases)
    pause = max(i for i in range(at) if log[i][1] == "setpoint" and log[i][2] == 0.0)
    assert all(log[i][2] == 0.0 for i in range(pause, at) if log[i][1] == "setpoint")
    resume = next(i for i in range(at, len(log)) if log[i][1] == "setpoint" and log[i][2] > 0)
    return log[pause][0], log[at][0], log[resume][0]


async def test_an_alfen_switches_to_one_phase_at_a_low_target_and_back_at_a_high_one(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    clock = FakeClock()
    worst = [0.0]

    def fuse_check() -> None:
        worst[0] = max(worst[0], *ev_draw(sims))

    async with alfens(clock) as sims, running_gateway(switch_config(mosquitto, sims), clock):
        sims[0].charger_phases = 1  # left on one phase by a previous run
        await run_for(clock, 15.0, IDLE, step=0.5)
        # idle at start: its setting is unknown, so it is written once (at 0 A)
        assert sims[0].charger_phases == 3 and sims[1].write_log[-1][1] == "setpoint"
        assert [e for e in sims[1].write_log if e[1] == "phases"] == []
        await propose(probe, {"source": "pv", "priority": 1, "power": 3000.0})
        await run_for(clock, 20.0, IDLE, step=0.5, each=fuse_check)
        await wait_until(lambda: sims[0].charger_phases == 1, what="switch to 1 phase")
        await run_for(clock, 3.0, IDLE, step=0.5, each=fuse_check)
        currents = sims[0].view().currents
        assert currents[0] >= 6.0 and currents[1:] == (0.0, 0.0)  # on L1 only
        assert sims[0].view().power <= 3000.0 + 1e-6
        assert sims[1].view().currents == (0.0, 0.0, 0.0)  # cannot switch: waits
        paused, switched, resumed = switch_sequence(sims[0], 1)
        assert switched - paused >= SwitchTiming().pause
        assert resumed - switched >= SwitchTiming().settle
        state = await probe.wait_for(
            f"{BASE}/chargers/bay-0/state", lambda m: m.json().get("phases_in_use") == 1
        )
        assert state.json()["phases_in_use"] == 1

        await propose(probe, {"source": "pv", "priority": 1, "power": 11000.0})
        await run_for(clock, 90.0, IDLE, step=0.5, each=fuse_check)
        await wait_until(lambda: sims[0].charger_phases == 3, what="switch back to 3 phases")
        await run_for(clock, 10.0, IDLE, step=0.5, each=fuse_check)
        paused, switched, resumed = switch_sequence(sims[0], 3)
        assert switched - paused >= SwitchTiming().pause
        assert min(sims[0].view().currents) >= 6.0  # charging on three phases again
        assert sims[1].view().currents[0] >= 6.0
        assert sims[0].switches_under_load == 0
        assert worst[0] <= FUSE + 1e-6  # the fuse held during and after both switches


def test_phase_switching_is_refused_where_the_profile_cannot_switch() -> None:
    base: dict[str, Any] = {"id": "bay", "adapter": "modbus", "host": "127.0.0.1"}
    with pytest.raises(ConfigError, match="no phase switch register"):
        config_from_dict({"chargers": [{**base, "profile": "generic", "phase_switching": True}]})
    with pytest.raises(ConfigError, match="three phases"):
        charger = {**base, "profile": "alfen-eve", "phase_switching": True, "phases": [1]}
        config_from_dict({"chargers": [charger]})
    ok = config_from_dict({"chargers": [{**base, "profile": "alfen-eve", "phase_switching": True}]})
    assert ok.chargers[0].phase_switching
