"""The Modbus TCP adapter against simulated chargers over real sockets (no mocks)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from gateway.adapters.base import Charger, ChargerProtocolError, ChargerUnreachable
from gateway.adapters.modbus.decoding import DataType, WordOrder
from gateway.adapters.modbus.profile import (
    HeartbeatSpec,
    Profile,
    RegisterSpec,
    WatchdogSpec,
    load_profile,
    parse_profile,
)
from gateway.adapters.modbus.tcp import ModbusTcpCharger
from gateway.adapters.setpoint import quantize_current
from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases
from gateway.simulator.modbus_server import SimulatedCharger
from tests.modbus_helpers import (
    PROFILES,
    VOLTAGES,
    ManualClock,
    adapter_for,
    bare_client,
    running_sim,
)

# -- quantize_current (pure) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("amps", "max_current", "step", "expected"),
    [
        (0.0, 16.0, 0.1, 0.0),
        (5.99, 16.0, 0.1, 0.0),  # below 6 A: pause, never 1-5 A
        (6.0, 16.0, 0.1, 6.0),
        (15.94, 16.0, 0.1, 15.9),  # rounded down, never up
        (15.9, 16.0, 0.1, 15.9),  # 15.9 / 0.1 is 158.99999... in binary
        (9.99, 16.0, 1.0, 9.0),
        (40.0, 16.0, 0.1, 16.0),  # clamped to the hardware limit
        (16.05, 16.04, 0.1, 16.0),
        (8.0, 5.0, 1.0, 0.0),  # clamped below the minimum: pause
    ],
)
def test_quantize_current(amps: float, max_current: float, step: float, expected: float) -> None:
    assert quantize_current(amps, max_current, 6.0, step) == expected


@pytest.mark.parametrize("amps", [-1.0, math.nan, math.inf])
def test_quantize_rejects_nonsense(amps: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        quantize_current(amps, 16.0, 6.0, 0.1)


# -- reading -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_sample_matches_what_the_simulator_serves(profile: str) -> None:
    clock = ManualClock()  # frozen: both requests of a read see the same instant
    async with running_sim(profile, clock=clock, energy=52_000.25) as sim:
        sim.plug(phases=3, ev_max_current=10.0)
        charger = adapter_for(sim)
        assert isinstance(charger, Charger)
        await charger.set_current_limit(16.0)
        before = time.monotonic()  # the adapter's default clock stamps samples
        sample = await charger.read()
        served = sim.last_view
        assert served is not None
        assert before <= sample.timestamp <= time.monotonic()
        assert sample.voltage == Phases(*VOLTAGES)
        assert sample.current == Phases(10.0, 10.0, 10.0)
        assert sample.active_power == pytest.approx(served.power, rel=1e-6)
        assert sample.active_power == pytest.approx(10.0 * sum(VOLTAGES), rel=1e-6)
        assert sample.energy == 52_000.25
        assert (sample.cable_state, sample.component_state) == (
            CableState.EV_PLUGGED, ComponentState.CHARGING,
        )  # fmt: skip
        assert sample.usable
        assert sample.current_limit == 16.0
        # 16 A (config max) x mean measured voltage x 3 phases in use
        assert sample.inclusion_bounds == Bounds(0.0, 16.0 * sum(VOLTAGES))
        await charger.close()


@pytest.mark.parametrize("profile", PROFILES)
async def test_single_phase_unplugged_and_paused(profile: str) -> None:
    async with running_sim(profile) as sim:
        charger = adapter_for(sim, max_current=32.0)
        sim.plug(phases=1, ev_max_current=13.0)
        await charger.set_current_limit(20.0)
        sample = await charger.read()
        assert sample.current == Phases(13.0, 0.0, 0.0)
        assert sample.inclusion_bounds == Bounds(0.0, 32.0 * VOLTAGES[0])  # 1 phase in use
        assert await charger.set_current_limit(3.0) == 0.0
        paused = await charger.read()
        assert paused.current == Phases(0.0, 0.0, 0.0) and paused.active_power == 0.0
        # paused by us: still usable, so the distributor can give current again
        assert (paused.cable_state, paused.component_state) == (
            CableState.EV_PLUGGED, ComponentState.READY,
        )  # fmt: skip
        assert paused.usable and paused.current_limit == 0.0
        assert paused.inclusion_bounds == Bounds(0.0, 32.0 * sum(VOLTAGES))  # wiring: 3
        sim.unplug()
        empty = await charger.read()
        assert empty.cable_state is CableState.UNPLUGGED and not empty.ev_connected
        await charger.close()


@pytest.mark.parametrize(("profile", "requests"), [("generic", 1), ("alfen-eve", 2)])
async def test_a_read_is_the_planned_number_of_requests(profile: str, requests: int) -> None:
    async with running_sim(profile) as sim:
        charger = adapter_for(sim)
        await charger.read()  # connects
        before = sim.request_count
        for _ in range(5):
            await charger.read()
        assert sim.request_count - before == 5 * requests
        assert {r.function_code for r in list(sim.recent_requests)[-5 * requests :]} == {3}
        await charger.close()


async def test_safe_current_and_unit_id_from_the_profile() -> None:
    async with running_sim("alfen-eve", safe_current=8.0) as sim:
        charger = adapter_for(sim)
        assert charger.unit_id == load_profile("alfen-eve").unit_id == 1
        assert await charger.read_safe_current() == 8.0
        await charger.close()


# -- writing -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_set_current_limit_lands_in_the_simulator(profile: str) -> None:
    async with running_sim(profile) as sim:
        sim.plug(phases=3, ev_max_current=32.0)
        charger = adapter_for(sim, max_current=16.0)
        assert await charger.set_current_limit(15.94) == 15.9
        assert sim.current_limit == 15.9
        assert (await charger.read()).current_limit == pytest.approx(15.9)
        assert await charger.set_current_limit(40.0) == 16.0
        assert await charger.set_current_limit(5.9) == 0.0
        assert [amps for _, amps in sim.writes] == [15.9, 16.0, 0.0]
        assert charger.last_limit == 0.0
        with pytest.raises(ValueError):
            await charger.set_current_limit(math.nan)
        await charger.close()


async def test_keepalive_rewrites_the_setpoint_when_due() -> None:
    base = load_profile("alfen-eve")
    profile = dataclasses.replace(base, watchdog=WatchdogSpec(keepalive_interval=0.2))
    clock = ManualClock()
    async with running_sim("alfen-eve") as sim:
        charger = adapter_for(sim, profile, clock=clock)
        await charger.read()
        assert charger.next_keepalive_due() is None  # nothing to keep before a limit is set
        await charger.keep_alive()
        assert sim.writes == []
        await charger.set_current_limit(10.0)
        assert charger.next_keepalive_due() == clock.now + 0.2
        await charger.keep_alive()
        assert len(sim.writes) == 1  # not due yet
        clock.advance(0.2)
        await charger.keep_alive()
        assert [amps for _, amps in sim.writes] == [10.0, 10.0]
        assert charger.next_keepalive_due() == clock.now + 0.2
        await charger.close()


async def test_heartbeat_register_is_written_while_controlling() -> None:
    base = load_profile("generic")
    heartbeat = WatchdogSpec(heartbeat=HeartbeatSpec(address=105, value=1, interval=0.1))
    clock = ManualClock()
    async with running_sim("generic", clock=clock, validity_time=10.0) as sim:
        charger = adapter_for(sim, dataclasses.replace(base, watchdog=heartbeat), clock=clock)
        await charger.read()
        await charger.set_current_limit(12.0)
        for _ in range(3):
            clock.advance(8.0)  # the setpoint alone would expire after 10 s
            await charger.keep_alive()
            await charger.read()
        beats = [r for r in sim.recent_requests if r.function_code == 6 and r.address == 105]
        assert len(beats) == 3
        assert sim.applied_current_limit == 12.0 and len(sim.writes) == 1
        await charger.close()


async def test_refused_write_raises_and_stops_the_keepalive() -> None:
    async with running_sim("generic") as sim:
        charger = adapter_for(sim)
        await charger.set_current_limit(10.0)
        sim.refuse_writes = True
        with pytest.raises(ChargerProtocolError) as caught:
            await charger.set_current_limit(8.0)
        message = str(caught.value)
        assert "bay-7" in message and "setpoint register 100 (8 A)" in message
        assert "exception code 1 (illegal function)" in message
        assert charger.last_limit is None  # let the charger fall back to its safe current
        sim.refuse_writes = False
        assert await charger.set_current_limit(8.0) == 8.0
        assert sim.current_limit == 8.0
        await charger.close()


# -- failures ----------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_silent_charger_is_unreachable_within_the_timeout_then_recovers(
    profile: str,
) -> None:
    async with running_sim(profile) as sim:
        charger = adapter_for(sim, timeout=0.3)
        await charger.read()
        sim.silent = True
        started = time.monotonic()
        with pytest.raises(ChargerUnreachable) as caught:
            await charger.read()
        assert time.monotonic() - started < 0.3 + 0.25
        assert "charger bay-7" in str(caught.value) and "no answer within 0.3 s" in str(
            caught.value
        )
        assert "holding registers" in str(caught.value)
        with pytest.raises(ChargerUnreachable):
            await charger.set_current_limit(10.0)
        sim.resume()
        sample = await charger.read()  # reconnects by itself
        assert sample.voltage == Phases(*VOLTAGES)
        assert await charger.set_current_limit(10.0) == 10.0
        await charger.close()


async def test_refused_connection_and_restart() -> None:
    async with running_sim("generic") as sim:
        charger = adapter_for(sim, timeout=0.5)
        await charger.read()
        await sim.stop()
        started = time.monotonic()
        # the open connection is closed under the request: reported at once, no timeout
        with pytest.raises(ChargerUnreachable, match=r"bay-7 .*(connection lost|cannot connect)"):
            await charger.read()
        with pytest.raises(ChargerUnreachable, match=r"bay-7 .*cannot connect: connection refused"):
            await charger.read()
        assert time.monotonic() - started < 0.4
        await sim.start()  # same port
        assert (await charger.read()).voltage == Phases(*VOLTAGES)
        await charger.close()
        await charger.close()  # twice is fine


async def test_cancelled_read_leaves_a_clean_connection() -> None:
    async with running_sim("alfen-eve") as sim:
        charger = adapter_for(sim, timeout=2.0)
        await charger.read()
        sim.silent = True
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(charger.read(), 0.2)  # the poller's own timeout
        sim.resume()
        samples = await asyncio.gather(charger.read(), charger.read())
        assert all(s.voltage == Phases(*VOLTAGES) for s in samples)
        await charger.close()


async def test_a_failed_write_does_not_disturb_a_concurrent_read() -> None:
    async with running_sim("alfen-eve") as sim:
        charger = adapter_for(sim, timeout=2.0)
        await charger.read()
        sim.refuse_writes = True
        started = time.monotonic()
        outcomes = await asyncio.gather(
            charger.read(),
            charger.set_current_limit(10.0),
            charger.read(),  # after the failed write: reconnects
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], ChargerProtocolError)
        for sample in (outcomes[0], outcomes[2]):
            assert isinstance(sample, ChargerSample) and sample.voltage == Phases(*VOLTAGES)
        assert time.monotonic() - started < 1.0
        await charger.close()


async def test_close_during_a_read_fails_it_at_once() -> None:
    async with running_sim("generic") as sim:
        charger = adapter_for(sim, timeout=2.0)
        await charger.read()
        sim.silent = True
        read = asyncio.create_task(charger.read())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await charger.close()
        with pytest.raises(ChargerUnreachable, match=r"connection lost .*closed by the gateway"):
            await read
        assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(("profile", "register"), [("generic", 0), ("alfen-eve", 308)])
async def test_garbage_is_a_protocol_error(profile: str, register: int) -> None:
    async with running_sim(profile) as sim:
        charger = adapter_for(sim)
        sim.garbage = True
        with pytest.raises(ChargerProtocolError, match=rf"bay-7 .*: register {register} \("):
            await charger.read()
        sim.garbage = False
        assert (await charger.read()).voltage == Phases(*VOLTAGES)
        await charger.close()


async def test_unsupported_register_names_the_exception_and_registers() -> None:
    generic = load_profile("generic")
    energy = RegisterSpec("energy", 200, 3, DataType.FLOAT64, WordOrder.BIG, count=4)
    profile = dataclasses.replace(generic, registers={**generic.registers, "energy": energy})
    async with running_sim("generic") as sim:
        charger = adapter_for(sim, profile)
        with pytest.raises(ChargerProtocolError) as caught:
            await charger.read()
        message = str(caught.value)
        assert "holding registers 200-203 (energy)" in message
        assert "exception code 2 (illegal data address)" in message
        await charger.close()


async def test_unknown_state_code_is_a_protocol_error() -> None:
    alfen = load_profile("alfen-eve")
    codes = {k: v for k, v in alfen.state_codes.items() if k != "C2"}
    async with running_sim("alfen-eve") as sim:
        sim.plug(phases=3, ev_max_current=16.0)
        charger = adapter_for(sim, dataclasses.replace(alfen, state_codes=codes))
        with pytest.raises(
            ChargerProtocolError, match=r"register 1201 \(state\): unknown state code 'C2'"
        ):
            await charger.read()
        await charger.close()


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="1-3 wired phases"):
        ModbusTcpCharger("x", "127.0.0.1", 502, None, "generic", 16.0, 4)
    with pytest.raises(ValueError, match="max_current > 0"):
        ModbusTcpCharger("x", "127.0.0.1", 502, None, "generic", 0.0, 3)
    charger = ModbusTcpCharger("x", "127.0.0.1", 502, 7, "alfen-eve", 16.0, 3)
    assert charger.unit_id == 7 and charger.profile.name == "alfen-eve"


# -- fail-safe current written where the charger allows it -----------------------------


def _vestel_with_writable_safe_current() -> Profile:
    """The Vestel map with holding 2000 marked writable (the shipped profile leaves it
    read-only until Vestel's R/W column is confirmed); the simulator accepts the write."""
    path = Path(str(resources.files("gateway") / "profiles" / "vestel-evc04.toml"))
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["safe_current"].update(writable=True, write_function_code=6)
    profile = parse_profile(data, "<vestel, 2000 writable>")
    assert profile.safe_current_write is not None
    return profile


def _adapter(sim: SimulatedCharger, profile: Profile, safe_current: float) -> ModbusTcpCharger:
    return ModbusTcpCharger(
        "bay-7", sim.host, sim.port, None, profile, 16.0, 3, timeout=0.5, safe_current=safe_current
    )


async def test_configured_safe_current_is_written_at_start_and_after_a_failure() -> None:
    async with running_sim("vestel-evc04", safe_current=6.0) as sim:
        charger = _adapter(sim, _vestel_with_writable_safe_current(), 10.0)
        try:
            await charger.read()
            assert (sim.safe_current, sim.safe_current_writes) == (10.0, 1)
            assert await charger.read_safe_current() == 10.0
            await charger.read()
            assert sim.safe_current_writes == 1  # once per connection, not per poll
            sim.safe_current = 6.0  # the charger restarts with its own setting
            sim.silence()
            with pytest.raises(ChargerUnreachable):
                await charger.read()
            sim.resume()
            await charger.read()
            assert (sim.safe_current, sim.safe_current_writes) == (10.0, 2)
        finally:
            await charger.close()


async def test_configured_safe_current_warns_where_the_profile_cannot_write_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_sim("alfen-eve", safe_current=6.0) as sim:
        with caplog.at_level(logging.WARNING, logger="gateway.adapters.modbus.tcp"):
            charger = _adapter(sim, load_profile("alfen-eve"), 10.0)
        try:
            warnings = [r for r in caplog.records if "safe_current" in r.getMessage()]
            assert len(warnings) == 1
            assert "'alfen-eve'" in warnings[0].getMessage()
            await charger.read()
            await charger.read()
            assert sim.safe_current == 6.0
            assert not any(r.function_code in (6, 16) for r in sim.recent_requests)
            assert len([r for r in caplog.records if "safe_current" in r.getMessage()]) == 1
        finally:
            await charger.close()


async def test_the_private_pymodbus_hook_is_where_this_version_keeps_it() -> None:
    """Fails on a pymodbus upgrade that moves `ctx.response_future` (see transport.py)."""
    import pymodbus

    from gateway.adapters.modbus.transport import PRIVATE_API_VERSION, pending_response

    assert pymodbus.__version__.startswith(PRIVATE_API_VERSION)
    async with running_sim("generic") as sim, bare_client(sim, timeout=2.0) as client:
        sim.silent = True
        request = asyncio.create_task(client.read_holding_registers(0, count=1))
        await asyncio.sleep(0.05)
        assert isinstance(pending_response(client), asyncio.Future)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        sim.silent = False
