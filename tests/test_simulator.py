"""The simulator: the pure EV model, and the registers it serves checked with a bare
pymodbus client (not the adapter), against the vendor facts."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Sequence

import pytest
from pymodbus.exceptions import ModbusIOException

from gateway.errors import PortUnavailable
from gateway.simulator.ev_model import EvModel
from gateway.simulator.modbus_server import SimulatedCharger
from gateway.simulator.serve import serve_simulators, start_simulators, stop_simulators
from tests.modbus_helpers import VOLTAGES, ManualClock, bare_client, running_sim

V230 = (230.0, 230.0, 230.0)


def f32(registers: Sequence[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">2H", *registers))[0])


def f32_registers(value: float) -> list[int]:
    return list(struct.unpack(">2H", struct.pack(">f", value)))


# -- EV model (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plugged", "phases", "ev_max", "limit", "charger_phases", "expected"),
    [
        (False, 3, 16.0, 16.0, 3, (0.0, 0.0, 0.0)),  # nobody there
        (True, 3, 16.0, 5.9, 3, (0.0, 0.0, 0.0)),  # below 6 A: paused
        (True, 3, 16.0, 6.0, 3, (6.0, 6.0, 6.0)),
        (True, 3, 16.0, 32.0, 3, (16.0, 16.0, 16.0)),  # the EV's own maximum
        (True, 3, 10.0, 8.5, 3, (8.5, 8.5, 8.5)),
        (True, 1, 32.0, 20.0, 3, (20.0, 0.0, 0.0)),  # 1-phase EV on the charger's L1
        (True, 3, 16.0, 16.0, 1, (16.0, 0.0, 0.0)),  # charger switched to 1 phase
        (True, 3, 0.0, 16.0, 3, (0.0, 0.0, 0.0)),  # full battery
    ],
)
def test_ev_draw(
    plugged: bool,
    phases: int,
    ev_max: float,
    limit: float,
    charger_phases: int,
    expected: tuple[float, float, float],
) -> None:
    ev = EvModel(plugged, phases, ev_max)
    assert ev.currents(limit, charger_phases) == expected
    draw = ev.update(0.0, limit, (229.0, 230.0, 231.0), charger_phases)
    assert draw.power == pytest.approx(
        sum(i * v for i, v in zip(expected, (229, 230, 231), strict=True))
    )
    assert draw.charging is (draw.power > 0)


def test_ev_energy_integrates_the_power_held_over_passed_time() -> None:
    ev = EvModel(energy=100.0)
    ev.plug(3, 16.0)
    assert ev.update(0.0, 16.0, V230).energy == 100.0
    # one hour at 3 x 16 A x 230 V = 11040 Wh
    assert ev.update(3600.0, 6.0, V230).energy == pytest.approx(100.0 + 11040.0)
    # the new 6 A limit applies from 3600 s on, not retroactively
    assert ev.update(5400.0, 0.0, V230).energy == pytest.approx(100.0 + 11040.0 + 2070.0)
    assert ev.update(9000.0, 0.0, V230).energy == pytest.approx(13210.0)  # paused
    assert ev.update(8000.0, 16.0, V230).energy == pytest.approx(13210.0)  # time never goes back


def test_two_phase_ev_draws_on_the_first_two_phases() -> None:
    ev = EvModel()
    ev.plug(2, 10.0)
    assert ev.currents(16.0) == (10.0, 10.0, 0.0)
    assert ev.currents(16.0, charger_phases=1) == (10.0, 0.0, 0.0)


def test_ev_plug_validates() -> None:
    with pytest.raises(ValueError, match="1, 2 or 3 phases"):
        EvModel().plug(4, 16.0)
    with pytest.raises(ValueError, match="max_current"):
        EvModel().plug(3, -1.0)


# -- served registers ---------------------------------------------------------------


async def test_generic_registers_as_documented() -> None:
    clock = ManualClock()
    async with running_sim("generic", clock=clock, energy=1234.5) as sim:
        sim.plug(phases=3, ev_max_current=16.0)
        async with bare_client(sim) as client:
            regs = (await client.read_holding_registers(0, count=22, device_id=1)).registers
            assert regs[0:2] == f32_registers(VOLTAGES[0])
            assert [f32(regs[i : i + 2]) for i in (0, 2, 4)] == list(VOLTAGES)
            # no setpoint written yet: the safe current (6 A) applies
            assert [f32(regs[i : i + 2]) for i in (6, 8, 10)] == [6.0, 6.0, 6.0]
            assert f32(regs[12:14]) == pytest.approx(6.0 * sum(VOLTAGES))
            assert struct.unpack(">d", struct.pack(">4H", *regs[14:18]))[0] == 1234.5
            assert f32(regs[18:20]) == 6.0
            assert regs[20] == 3  # C: charging
            assert regs[21] == 0  # no setpoint, nothing to expire
            safe = (await client.read_holding_registers(102, count=3, device_id=1)).registers
            assert f32(safe[0:2]) == 6.0 and safe[2] == 60
            sim.unplug()
            regs = (await client.read_holding_registers(0, count=22, device_id=1)).registers
            assert regs[20] == 1 and f32(regs[12:14]) == 0.0  # A: no vehicle


async def test_alfen_registers_as_the_vendor_document_says() -> None:
    async with running_sim("alfen-eve") as sim:
        sim.plug(phases=1, ev_max_current=32.0)
        async with bare_client(sim) as client:
            block = (await client.read_holding_registers(300, count=125, device_id=1)).registers
            at = {a: block[a - 300 : a - 300 + 2] for a in range(300, 424)}
            assert [f32(at[a]) for a in (306, 308, 310)] == list(VOLTAGES)
            assert [f32(at[a]) for a in (320, 322, 324)] == [6.0, 0.0, 0.0]
            assert f32(at[344]) == pytest.approx(6.0 * VOLTAGES[0])
            assert f32(at[336]) == 50.0
            assert at[362] == [0xFFFF, 0xFFFF]  # unmodelled registers read NaN (section 1.2)
            status = (await client.read_holding_registers(1200, count=16, device_id=1)).registers
            assert status[0] == 1  # operative
            assert status[1:6] == [0x4332, 0, 0, 0, 0]  # "C2", NUL-terminated
            assert f32(status[6:8]) == 6.0  # applied max current = safe current
            assert f32(status[12:14]) == 6.0  # safe current
            assert status[14] == 0 and status[15] == 3  # setpoint not in use; 3 phases


async def test_setpoint_write_lands_and_expires_to_the_safe_current() -> None:
    clock = ManualClock()
    async with running_sim("alfen-eve", clock=clock, validity_time=60.0) as sim:
        sim.plug(phases=3, ev_max_current=32.0)
        async with bare_client(sim) as client:
            reply = await client.write_registers(1210, f32_registers(12.5), device_id=1)
            assert not reply.isError()
            assert sim.current_limit == 12.5
            assert [amps for _, amps in sim.writes] == [12.5]
            status = (await client.read_holding_registers(1206, count=10, device_id=1)).registers
            assert f32(status[0:2]) == 12.5  # applied
            assert status[2:4] == [0, 60]  # validity left, uint32
            assert status[8] == 1  # setpoint accounted for
            clock.advance(59.5)
            status = (await client.read_holding_registers(1206, count=4, device_id=1)).registers
            assert f32(status[0:2]) == 12.5 and status[2:4] == [0, 1]
            clock.advance(1.0)  # expired: back to the safe current
            status = (await client.read_holding_registers(1206, count=4, device_id=1)).registers
            assert f32(status[0:2]) == 6.0 and status[2:4] == [0, 0]
            assert sim.applied_current_limit == 6.0
            assert sim.current_limit == 12.5  # still what was last written


async def test_generic_heartbeat_refreshes_the_validity() -> None:
    clock = ManualClock()
    async with (
        running_sim("generic", clock=clock, validity_time=10.0) as sim,
        bare_client(sim) as client,
    ):
        await client.write_registers(100, f32_registers(16.0), device_id=1)
        clock.advance(8.0)
        assert not (await client.write_register(105, 1, device_id=1)).isError()
        clock.advance(8.0)  # 16 s after the write, 8 s after the heartbeat
        assert sim.applied_current_limit == 16.0
        assert not (await client.write_registers(104, [5, 1], device_id=1)).isError()
        assert sim.validity_time == 5.0  # and that write was a heartbeat too
        clock.advance(4.0)
        assert sim.applied_current_limit == 16.0
        clock.advance(1.5)
        assert sim.applied_current_limit == 6.0  # expired: the safe current


async def test_writes_the_charger_refuses() -> None:
    async with running_sim("alfen-eve") as sim, bare_client(sim) as client:
        half = await client.write_register(1210, 0x4140, device_id=1)
        assert half.isError() and half.exception_code == 3  # section 1.3: whole values
        absurd = await client.write_registers(1210, f32_registers(math.nan), device_id=1)
        assert absurd.isError() and absurd.exception_code == 3
        read_only = await client.write_registers(306, [0, 0], device_id=1)
        assert read_only.isError() and read_only.exception_code == 2
        two_phases = await client.write_register(1215, 2, device_id=1)
        assert two_phases.isError() and two_phases.exception_code == 3
        assert not (await client.write_register(1215, 1, device_id=1)).isError()
        assert sim.charger_phases == 1
        missing = await client.read_holding_registers(500, count=2, device_id=1)
        assert missing.isError() and missing.exception_code == 2
        sim.refuse_writes = True
        refused = await client.write_registers(1210, f32_registers(10.0), device_id=1)
        assert refused.isError() and refused.exception_code == sim.refuse_code
        assert sim.writes == [] and sim.current_limit is None


async def test_garbage_mode_serves_nonsense() -> None:
    async with running_sim("generic") as sim:
        sim.garbage = True
        async with bare_client(sim) as client:
            regs = (await client.read_holding_registers(0, count=22, device_id=1)).registers
            assert math.isnan(f32(regs[0:2])) and f32(regs[2:4]) == 1e9
            assert math.isnan(f32(regs[12:14])) and regs[20] == 999


async def test_silent_charger_times_out_then_resumes() -> None:
    async with running_sim("generic") as sim:
        async with bare_client(sim, timeout=0.3) as client:
            sim.silent = True
            with pytest.raises(ModbusIOException):
                await client.read_holding_registers(0, count=2, device_id=1)
            # writes while silent do not land either
            with pytest.raises(ModbusIOException):
                await client.write_registers(100, f32_registers(10.0), device_id=1)
            assert sim.current_limit is None
            sim.resume()
        async with bare_client(sim) as client:
            assert not (await client.read_holding_registers(0, count=2, device_id=1)).isError()
        assert sim.request_count >= 3


async def test_restart_keeps_the_port_and_unknown_profiles_are_refused() -> None:
    sim = SimulatedCharger("generic")
    await sim.start()
    port = sim.port
    assert port > 0 and sim.running
    await sim.stop()
    await sim.stop()  # twice is fine
    assert not sim.running
    await sim.start()
    try:
        assert sim.port == port
        async with bare_client(sim) as client:
            assert not (await client.read_holding_registers(0, count=2, device_id=1)).isError()
    finally:
        await sim.stop()
    with pytest.raises(ValueError, match="no simulator layout for profile 'nope'"):
        SimulatedCharger("nope")


async def test_many_simulators_on_free_and_consecutive_ports() -> None:
    sims = await start_simulators(3, "alfen-eve")
    try:
        assert len({s.port for s in sims}) == 3
        assert all(s.ev.plugged for s in sims)
        base = sims[-1].port + 100
    finally:
        await stop_simulators(sims)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[int] = []

    def ready(started: list[SimulatedCharger]) -> None:
        seen.extend(s.port for s in started)
        done.set_result(None)

    try:
        await asyncio.wait_for(
            serve_simulators("generic", "127.0.0.1", base, 2, ready=ready, until=done), 5
        )
    except PortUnavailable:
        pytest.skip(f"ports {base}, {base + 1} are taken on this machine")
    assert seen == [base, base + 1]


async def test_safe_current_write_lands_where_writable_and_is_refused_where_read_only() -> None:
    async with running_sim("vestel-evc04", safe_current=6.0) as sim, bare_client(sim) as client:
        assert not (await client.write_register(2000, 10, device_id=255)).isError()
        assert (sim.safe_current, sim.safe_current_writes) == (10.0, 1)
        assert (await client.write_register(2000, 500, device_id=255)).isError()  # > 80 A
        assert sim.safe_current == 10.0
    async with running_sim("alfen-eve", safe_current=6.0) as sim, bare_client(sim) as client:
        reply = await client.write_registers(1212, f32_registers(10.0), device_id=1)
        assert reply.isError()  # read-only on the station
        assert (sim.safe_current, sim.safe_current_writes) == (6.0, 0)
