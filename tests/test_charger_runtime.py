"""The charger runtime on a fake clock against real Modbus TCP simulators.

Watchdog keepalives run on their own schedule whatever the poll does, a dead charger
is logged quietly, writes go to what the charger accepts, and freshness is decided on
monotonic time, whatever the wall clock does.
"""

from __future__ import annotations

import gc
import itertools
import logging
import re

import pytest

from gateway.clock import FakeClock
from gateway.core.status import ChargerStatus
from gateway.simulator.modbus_server import SimulatedCharger
from tests.conftest import Mosquitto, free_port
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.runtime_helpers import idle, run_for, running_runtime, runtime_config
from tests.test_e2e_control import wait_until

SLEEPERS = 2  # a running runtime sleeps on the clock in its poll and keepalive tasks


def modbus(sim: SimulatedCharger, **extra: object) -> dict[str, object]:
    return {
        "id": "bay-1",
        "adapter": "modbus",
        "profile": sim.profile_name,
        "host": "127.0.0.1",
        "port": sim.port,
        "timeout": 0.5,
        **extra,
    }


def write_times(sim: SimulatedCharger, clock: FakeClock, seen: list[float]) -> None:
    """Record the fake time of each new setpoint write the simulator received."""
    while len(seen) < len(sim.writes):
        seen.append(clock.now())


async def test_alfen_setpoint_rewritten_every_25_s_with_a_120_s_poll_interval() -> None:
    clock = FakeClock()
    async with simulators(1, "alfen-eve", plugged=True) as (sim,):
        config = runtime_config(modbus(sim, poll_interval=120.0))
        async with running_runtime(config, clock) as runtime:
            await idle(clock, SLEEPERS - 1)  # first poll done; keepalive waits for a limit
            assert runtime.latest is not None and runtime.polls == 1
            outcome = await runtime.write_limit(10.0)
            assert outcome.ok and outcome.amps == 10.0
            writes: list[float] = [clock.now()]
            await run_for(clock, 120.0, SLEEPERS, each=lambda: write_times(sim, clock, writes))
            assert runtime.polls == 2  # one more poll in 120 s
            gaps = [b - a for a, b in itertools.pairwise(writes)]
            assert len(writes) >= 5 and max(gaps) <= 25.0
            assert all(amps == 10.0 for _, amps in sim.writes)


async def test_watchdog_kept_alive_while_the_poll_backs_off() -> None:
    clock = FakeClock()
    async with simulators(1, "vestel-evc04", plugged=True) as (sim,):
        config = runtime_config(modbus(sim, poll_interval=1.0))
        async with running_runtime(config, clock) as runtime:
            await idle(clock, SLEEPERS - 1)
            assert (await runtime.write_limit(8.0)).ok
            await idle(clock, SLEEPERS)
            sim.garbage = True  # reads fail (nonsense state code), writes still work
            beats: list[float] = []

            def count_beats() -> None:
                new = [r for r in sim.recent_requests if r.address == 6000][len(beats) :]
                beats.extend(clock.now() for _ in new)

            await run_for(clock, 60.0, SLEEPERS, step=0.5, each=count_beats)
            assert runtime.failures >= 5 and runtime.backoff() == 10.0  # backing off
            assert runtime.status(clock.now()) is ChargerStatus.NOT_WORKING
            gaps = [b - a for a, b in itertools.pairwise(beats)]
            assert len(beats) >= 11 and max(gaps) <= 5.0  # the alive register, every 5 s


async def test_an_unreachable_charger_logs_at_most_three_lines_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    config = runtime_config(
        {"id": "gone", "adapter": "modbus", "profile": "alfen-eve", "host": "127.0.0.1",
         "port": free_port(), "timeout": 0.2}
    )  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="gateway")
    async with running_runtime(config, clock) as runtime:
        await idle(clock, 1)
        await run_for(clock, 60.0, 1, step=0.5)
        assert runtime.failures >= 8 and not runtime.reachable
        outcome = await runtime.write_limit(6.0)  # not attempted: known unreachable
        assert not outcome.ok and "unreachable" in (outcome.error or "")
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]
    assert "gone is down" in lines[0].getMessage()


async def test_a_dead_charger_goes_not_working_on_time_after_the_wall_clock_steps_back() -> None:
    clock = FakeClock()
    async with simulators(1, "generic", plugged=True) as (sim,):
        config = runtime_config(modbus(sim, poll_interval=1.0), power={"max_data_age": 10.0})
        async with running_runtime(config, clock) as runtime:
            await idle(clock, SLEEPERS - 1)
            assert runtime.status(clock.now()) is ChargerStatus.WORKING
            await sim.stop()  # the charger dies
            died = clock.now()
            clock.step_wall(-3600.0)  # NTP corrects the box's clock by an hour
            await run_for(clock, 9.0, SLEEPERS - 1)
            assert runtime.status(clock.now()) is ChargerStatus.WORKING  # within max age
            await run_for(clock, 1.5, SLEEPERS - 1, step=0.5)
            assert clock.now() - died <= 10.5
            assert runtime.status(clock.now()) is ChargerStatus.NOT_WORKING
            assert not runtime.fresh(clock.now())


async def test_writes_record_the_limit_as_the_charger_took_it() -> None:
    clock = FakeClock()
    async with simulators(1, "vestel-evc04", plugged=True) as (sim,):  # 1 A setpoint steps
        config = runtime_config(modbus(sim))
        async with running_runtime(config, clock) as runtime:
            await idle(clock, SLEEPERS - 1)
            assert runtime.capabilities.step == 1.0
            outcome = await runtime.write_limit(9.7)
            assert outcome.ok and outcome.amps == 9.0 and runtime.commanded == 9.0
            assert sim.applied_current_limit == 9.0
            sim.refuse_writes = True
            failed = await runtime.write_limit(7.0)
            assert not failed.ok and runtime.commanded is None
            assert runtime.status(clock.now()) is ChargerStatus.UNCERTAIN


async def test_shutdown_with_chargers_gone_is_quiet_and_writes_nothing(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with simulators(12, plugged=True) as sims:
        chargers = [modbus_charger(f"bay-{i}", sim) for i, sim in enumerate(sims)]
        config = site_config(
            mosquitto, chargers, pools=[{"name": "site", "chargers": [c["id"] for c in chargers],
                                         "default_power": 40000.0}],
        )  # fmt: skip
        async with running_gateway(config) as gateway:
            await wait_until(lambda: all(s.writes for s in sims), what="first limits")
            for sim in sims:
                await sim.stop()  # every charger vanishes
            await wait_until(
                lambda: all(not c.reachable for c in gateway.chargers.values()),
                what="every charger marked unreachable",
            )
            # a write may have been tried between a charger vanishing and its next read
            # failing; from here on, none may be
            known = len(caplog.records)
            writes = sum(len(s.writes) for s in sims)
        gc.collect()  # "never retrieved" is reported when a failed task is collected
        assert sum(len(s.writes) for s in sims) == writes
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "never retrieved" in m or "Traceback" in m]
    assert not [r for r in caplog.records if r.exc_info]
    later = messages[known:]
    assert not [m for m in later if re.search(r"refused [\d.]+ A", m)]  # no write tried
    assert len([m for m in messages if "is down" in m]) == len(sims)  # one line each


async def test_late_wake_ups_do_not_lower_the_poll_rate() -> None:
    """A busy loop wakes the poller late; the polls stay on the interval's grid.

    The clock moves in 0.6 s steps, so every wake-up of a 1 s poll is up to 0.2 s late.
    Counting each poll's interval from its late start would give one poll per 1.2 s.
    """
    clock = FakeClock()
    async with simulators(1, plugged=True) as (sim,):
        config = runtime_config(modbus(sim, poll_interval=1.0))
        async with running_runtime(config, clock) as runtime:
            await idle(clock, SLEEPERS - 1)
            assert runtime.polls == 1
            await run_for(clock, 12.0, SLEEPERS - 1, step=0.6)
            assert runtime.polls == 1 + 12  # one per second, not 1 + 10
