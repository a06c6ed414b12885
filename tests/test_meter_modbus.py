"""Modbus meters end to end: each meter profile read against its simulator twin over
real Modbus TCP (values, signs, rotation, requests), and the failures a real meter
shows: garbage values, exception codes, a wrong function code, too many registers at
once, a meter that goes silent, one that is gone."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes

from gateway.clock import FakeClock
from gateway.core.headroom import GridLimits, grid_headroom
from gateway.core.model import Phases
from gateway.meters.modbus import ModbusTcpMeter, signed_currents
from gateway.meters.model import Meter, MeterProtocolError, MeterUnreachable
from gateway.meters.payloads import meter_state
from gateway.meters.profile import MeterProfile, load_meter_profile
from gateway.simulator.meter_server import SimulatedMeter, serve_meter

VOLTS = (229.0, 231.0, 233.0)
LOAD = (20.5, -3.0, 7.25)  # L2 exports (PV)
WALL = 1_764_363_600.0


@dataclass(frozen=True)
class Expect:
    requests: int  # Modbus requests per read
    function_code: int
    max_read: int  # registers the meter answers at once
    power_step: float  # W resolution of the power registers
    missing: int  # an address the meter answers exception 2 for


EXPECT = {
    "eastron-sdm630": Expect(1, 4, 80, 0.01, 0x200),
    "carlo-gavazzi-em24": Expect(3, 4, 11, 0.1, 0x300),
    "abb-b23": Expect(1, 3, 125, 0.01, 0x6000),
}
PROFILES = tuple(EXPECT)


@contextlib.asynccontextmanager
async def running(profile: str, **kwargs: object) -> AsyncIterator[SimulatedMeter]:
    sim = SimulatedMeter(profile, voltages=VOLTS, **kwargs)  # type: ignore[arg-type]
    async with sim:
        yield sim


def adapter(
    sim: SimulatedMeter,
    profile: MeterProfile | None = None,
    *,
    phases: tuple[int, ...] = (1, 2, 3),
    timeout: float = 1.0,
    clock: FakeClock | None = None,
) -> ModbusTcpMeter:
    return ModbusTcpMeter(
        "grid",
        sim.host,
        sim.port,
        None,
        profile or load_meter_profile(sim.profile_name),
        phases,
        timeout=timeout,
        clock=clock or FakeClock(400.0, wall_offset=WALL - 400.0),
    )


def test_signed_currents_follow_the_power() -> None:
    assert signed_currents(Phases(5, 5, 5), Phases(1000, -1000, 0)) == Phases(5, -5, 5)
    assert signed_currents(Phases(-5, 5, 0), Phases(1000, 1000, -10)) == Phases(-5, 5, 0)
    assert signed_currents(Phases(5, 5, 5), None) == Phases(5, 5, 5)


@pytest.mark.parametrize("profile", PROFILES)
async def test_meter_reads_its_simulator_twin(profile: str) -> None:
    expect = EXPECT[profile]
    clock = FakeClock(400.0, wall_offset=WALL - 400.0)
    async with running(profile, load=LOAD) as sim:
        meter = adapter(sim, clock=clock)
        assert isinstance(meter, Meter)
        before = sim.request_count
        sample = await meter.read()
        requests = list(sim.recent_requests)[before - sim.request_count :]
        assert len(requests) == expect.requests
        assert {r.function_code for r in requests} == {expect.function_code}
        assert max(r.count for r in requests) <= expect.max_read
        assert sample.current.as_tuple() == pytest.approx(LOAD, abs=1e-6)
        assert sample.voltage == Phases(*VOLTS)
        assert sample.power is not None
        powers = tuple(v * a for v, a in zip(VOLTS, LOAD, strict=True))
        assert sample.power.as_tuple() == pytest.approx(powers, abs=expect.power_step)
        assert (sample.monotonic, sample.timestamp) == (400.0, WALL)
        # a house load step on L1 shows on the next read
        sim.set_load(40.5, -3.0, 7.25)
        assert (await meter.read()).current.p1 == pytest.approx(40.5)
        await meter.close()
        await meter.close()  # twice is fine


@pytest.mark.parametrize("profile", PROFILES)
async def test_rotation_maps_meter_phases_to_grid_phases(profile: str) -> None:
    async with running(profile, load=(10.0, 20.0, 30.0)) as sim:
        meter = adapter(sim, phases=(2, 3, 1))  # meter L1 on grid L2 ...
        sample = await meter.read()
        assert sample.current.as_tuple() == pytest.approx((30.0, 10.0, 20.0))
        assert sample.voltage == Phases(233.0, 229.0, 231.0)
        await meter.close()


@pytest.mark.parametrize("profile", PROFILES)
async def test_garbage_is_a_protocol_error_and_the_meter_recovers(profile: str) -> None:
    async with running(profile, load=LOAD) as sim:
        meter = adapter(sim)
        sim.garbage = True
        with pytest.raises(
            MeterProtocolError,
            match=r"meter grid \(127.0.0.1:\d+ unit 1\): .*"
            r"register \d+ \(current_l1, .*(NaN|outside the plausible range)",
        ):
            await meter.read()
        sim.garbage = False
        assert (await meter.read()).current.p1 == pytest.approx(20.5)
        await meter.close()


@pytest.mark.parametrize("profile", PROFILES)
async def test_exception_codes_name_the_registers(profile: str) -> None:
    expect = EXPECT[profile]
    async with running(profile, load=LOAD) as sim:
        meter = adapter(sim)
        sim.fail_with = ExcCodes.DEVICE_FAILURE
        with pytest.raises(MeterProtocolError, match=r"exception code 4 \(server device failure\)"):
            await meter.read()
        sim.fail_with = None
        base = load_meter_profile(profile)
        moved = dataclasses.replace(base.registers["current_l1"], address=expect.missing)
        broken = dataclasses.replace(base, registers={**base.registers, "current_l1": moved})
        wrong = adapter(sim, broken)
        with pytest.raises(MeterProtocolError) as caught:
            await wrong.read()
        assert f"registers {expect.missing}-{expect.missing + 1} (current_l1)" in str(caught.value)
        assert "exception code 2 (illegal data address)" in str(caught.value)
        await wrong.close()
        assert (await meter.read()).current.p3 == pytest.approx(7.25)
        await meter.close()


@pytest.mark.parametrize("profile", ["eastron-sdm630", "abb-b23"])
async def test_the_wrong_function_code_is_refused(profile: str) -> None:
    base = load_meter_profile(profile)
    other = 3 if EXPECT[profile].function_code == 4 else 4
    registers = {n: dataclasses.replace(s, function_code=other) for n, s in base.registers.items()}
    async with running(profile, load=LOAD) as sim:
        meter = adapter(sim, dataclasses.replace(base, registers=registers))
        with pytest.raises(MeterProtocolError, match=r"exception code 1 \(illegal function\)"):
            await meter.read()
        await meter.close()


async def test_em24_refuses_more_than_11_registers_and_reads_both_function_codes() -> None:
    base = load_meter_profile("carlo-gavazzi-em24")
    async with running("carlo-gavazzi-em24", load=LOAD) as sim:
        greedy = adapter(sim, dataclasses.replace(base, read_max_count=125))
        with pytest.raises(MeterProtocolError, match=r"exception code 3 \(illegal data value\)"):
            await greedy.read()
        await greedy.close()
        holding = {n: dataclasses.replace(s, function_code=3) for n, s in base.registers.items()}
        fc3 = adapter(sim, dataclasses.replace(base, registers=holding))
        assert (await fc3.read()).current.as_tuple() == pytest.approx(LOAD)
        await fc3.close()


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_silent_meter_times_out_and_answers_again(profile: str) -> None:
    async with running(profile, load=LOAD) as sim:
        meter = adapter(sim, timeout=0.5)
        await meter.read()
        sim.silence()
        with pytest.raises(MeterUnreachable, match=r"meter grid .*no answer within 0.5 s"):
            await meter.read()
        sim.resume()
        assert (await meter.read()).current.p1 == pytest.approx(20.5)
        await meter.close()


async def test_a_meter_that_is_gone_is_unreachable() -> None:
    async with running("eastron-sdm630") as sim:
        meter = adapter(sim)
        await meter.read()
    with pytest.raises(MeterUnreachable, match=r"meter grid \(127.0.0.1:\d+ unit 1\)"):
        await meter.read()
    await meter.close()


async def test_simulators_serve_the_documented_encodings() -> None:
    """Raw registers with a bare client: each document's types, scales and word order."""
    async with running("eastron-sdm630", load=(12.5, 0, 0)) as sdm, client(sdm) as bare:
        raw = (await bare.read_input_registers(0x06, count=2, device_id=1)).registers
        assert struct.unpack(">f", struct.pack(">2H", *raw))[0] == 12.5
    async with running("carlo-gavazzi-em24", load=(12.5, 0, 0)) as em24, client(em24) as bare:
        raw = (await bare.read_input_registers(0x0C, count=2, device_id=1)).registers
        assert raw == [12_500, 0]  # mA, least significant word first
        volts = (await bare.read_holding_registers(0x00, count=2, device_id=1)).registers
        assert volts == [2290, 0]  # 0.1 V
    async with running("abb-b23", load=(12.5, -1.0, 0)) as abb, client(abb) as bare:
        raw = (await bare.read_holding_registers(0x5B0C, count=4, device_id=1)).registers
        assert raw == [0, 1250, 0, 100]  # 0.01 A, magnitudes, high word first
        power = (await bare.read_holding_registers(0x5B18, count=2, device_id=1)).registers
        assert struct.unpack(">i", struct.pack(">2H", *power))[0] == -23_100  # 0.01 W


@contextlib.asynccontextmanager
async def client(sim: SimulatedMeter) -> AsyncIterator[AsyncModbusTcpClient]:
    bare = AsyncModbusTcpClient(sim.host, port=sim.port, timeout=1.0, retries=0, reconnect_delay=0)
    assert await bare.connect()
    try:
        yield bare
    finally:
        bare.close()


async def test_simulator_refuses_writes_and_unknown_profiles() -> None:
    with pytest.raises(ValueError, match="no meter simulator for profile 'alfen-eve'"):
        SimulatedMeter("alfen-eve")
    async with running("abb-b23") as sim, client(sim) as bare:
        answer = await bare.write_register(0x5B00, 1, device_id=1)
        assert answer.isError() and answer.exception_code == 1


async def test_house_load_step_cuts_the_headroom_read_from_the_meter() -> None:
    """Meter -> headroom: +20 A on L1 takes 20 A of the EVs' room on L1; a silent meter
    makes the headroom fall back once its last reading is older than max_age."""
    clock = FakeClock(100.0, wall_offset=WALL - 100.0)
    limits = GridLimits(fuse=35.0, margin=1.0, max_age=5.0)
    evs = Phases(10.0, 10.0, 10.0)
    async with running("carlo-gavazzi-em24", load=(18.0, 12.0, 10.0)) as sim:
        meter = adapter(sim, clock=clock, timeout=0.5)
        before = grid_headroom(limits, await meter.read(), evs, clock.now())
        assert before.headroom.as_tuple() == pytest.approx((26.0, 32.0, 34.0))
        sim.set_load(38.0, 12.0, 10.0)
        await clock.advance(1.0)
        after = grid_headroom(limits, await meter.read(), evs, clock.now())
        assert after.headroom.as_tuple() == pytest.approx((6.0, 32.0, 34.0))
        # cutting the EVs on L1 to the headroom keeps the meter at fuse - margin
        assert 38.0 - evs.p1 + after.headroom.p1 <= limits.usable
        last = await meter.read()
        sim.silence()
        with pytest.raises(MeterUnreachable):
            await meter.read()
        await clock.advance(5.5)
        blind = grid_headroom(limits, last, evs, clock.now())
        assert blind.stale and blind.headroom == Phases(6.0, 6.0, 6.0)
        state = meter_state(
            last, now=clock.now(), wall_now=clock.wall(), max_age=5.0, error="no answer"
        )
        assert state["stale"] is True and state["current_per_phase"]["value_p1"] == 38.0
        await meter.close()


async def test_serve_meter_until_done() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    started: asyncio.Future[SimulatedMeter] = loop.create_future()
    task = asyncio.create_task(
        serve_meter("abb-b23", port=0, load=(3.0, 4.0, 5.0), ready=started.set_result, until=done)
    )
    sim = await asyncio.wait_for(started, 10)
    meter = adapter(sim)
    assert (await meter.read()).current.as_tuple() == pytest.approx((3.0, 4.0, 5.0))
    await meter.close()
    done.set_result(None)
    await asyncio.wait_for(task, 10)
    assert not sim.running
