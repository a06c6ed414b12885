"""The switch sequence of gateway.chargers.phase_switch against a real Alfen simulator,
on a fake clock: 0 A, a pause, no load confirmed, register 1215, settle; and the cases
where it must not switch (still drawing, no fresh sample, a refused register write)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gateway.chargers import ChargerRuntime
from gateway.chargers.phase_switch import PhaseSwitcher, SwitchTiming
from gateway.clock import FakeClock
from gateway.simulator.modbus_server import SimulatedCharger
from tests.runtime_helpers import run_for, running_runtime, runtime_config

SLEEPERS = 2  # the runtime's poll and keepalive tasks
TIMING = SwitchTiming(pause=5.0, confirm_timeout=12.0, settle=5.0)


@contextlib.asynccontextmanager
async def alfen(clock: FakeClock) -> AsyncIterator[tuple[SimulatedCharger, ChargerRuntime]]:
    sim = SimulatedCharger("alfen-eve", clock=clock.now)
    await sim.start()
    sim.plug(phases=3, ev_max_current=16.0)
    charger = {
        "id": "bay", "adapter": "modbus", "profile": "alfen-eve", "host": "127.0.0.1",
        "port": sim.port, "timeout": 0.5, "poll_interval": 1.0, "phase_switching": True,
    }  # fmt: skip
    try:
        async with running_runtime(runtime_config(charger), clock) as runtime:
            await run_for(clock, 1.0, SLEEPERS - 1)  # keepalive waits for a limit
            assert (await runtime.write_limit(10.0)).ok
            await run_for(clock, 2.0, SLEEPERS)
            assert sim.view().currents == (10.0, 10.0, 10.0)
            yield sim, runtime
    finally:
        await asyncio.wait_for(sim.stop(), 10)


async def switch(clock: FakeClock, switcher: PhaseSwitcher, phases: int, seconds: float) -> bool:
    """Pause at 0 A and run the sequence while the clock moves `seconds`."""
    runtime = switcher.runtime
    assert (await runtime.write_limit(0.0)).ok
    switcher.paused()
    task = asyncio.ensure_future(switcher.complete(phases))
    await run_for(clock, seconds, SLEEPERS, step=0.5)
    return await asyncio.wait_for(task, 10)


async def test_the_sequence_pauses_confirms_no_load_writes_1215_and_settles() -> None:
    clock = FakeClock()
    async with alfen(clock) as (sim, runtime):
        done: list[bool] = []
        switcher = PhaseSwitcher(runtime, TIMING, on_done=lambda: done.append(True))
        assert await switch(clock, switcher, 1, 15.0)
        assert runtime.phases_in_use == 1 and not runtime.switching and done == [True]
        (zero,) = [t for t, what, v in sim.write_log if what == "setpoint" and v == 0.0]
        (written,) = [t for t, what, _ in sim.write_log if what == "phases"]
        assert written - zero >= TIMING.pause and sim.charger_phases == 1
        assert sim.switches_under_load == 0
        assert (await runtime.write_limit(12.0)).ok
        await run_for(clock, 2.0, SLEEPERS)
        assert sim.view().currents == (12.0, 0.0, 0.0)  # the EV follows the setting


async def test_no_switch_while_the_ev_still_draws() -> None:
    clock = FakeClock()
    async with alfen(clock) as (sim, runtime):
        sim.safe_current = 10.0
        sim.validity_time = 1.0  # the 0 A setpoint lapses: the station applies 10 A again
        switcher = PhaseSwitcher(runtime, TIMING)
        assert not await switch(clock, switcher, 1, 15.0)
        assert sim.charger_phases == 3 and runtime.phases_in_use == 3
        assert not [entry for entry in sim.write_log if entry[1] == "phases"]
        assert not runtime.switching and switcher.failures == 1


async def test_no_switch_without_a_fresh_sample() -> None:
    clock = FakeClock()
    async with alfen(clock) as (sim, runtime):
        switcher = PhaseSwitcher(runtime, TIMING)
        assert (await runtime.write_limit(0.0)).ok
        sim.silent = True  # blind: no sample after the pause can show it draws nothing
        switcher.paused()
        task = asyncio.ensure_future(switcher.complete(1))
        await run_for(clock, 15.0, SLEEPERS, step=0.5)
        assert not await asyncio.wait_for(task, 10)
        sim.silent = False
        assert sim.charger_phases == 3 and runtime.phases_in_use == 3


async def test_a_refused_switch_register_keeps_the_old_setting() -> None:
    clock = FakeClock()
    async with alfen(clock) as (sim, runtime):
        switcher = PhaseSwitcher(runtime, TIMING)
        assert (await runtime.write_limit(0.0)).ok
        sim.refuse_writes = True
        switcher.paused()
        task = asyncio.ensure_future(switcher.complete(1))
        await run_for(clock, 15.0, SLEEPERS, step=0.5)
        assert not await asyncio.wait_for(task, 10)
        assert sim.charger_phases == 3 and runtime.phases_in_use == 3 and not runtime.switching
