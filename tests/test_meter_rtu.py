"""A Modbus RTU meter on the RS-485 bus of Heidelberg chargers: one serial line (a
socat pseudo-terminal pair), one shared connection, requests serialised, and a silent
meter that does not take the chargers down with it."""

from __future__ import annotations

import asyncio

import pytest

from gateway.adapters.modbus.rtu import ModbusRtuCharger, SerialSettings
from gateway.config import MeterConfig
from gateway.core.model import Phases
from gateway.meters.factory import build_meter
from gateway.meters.model import MeterUnreachable
from gateway.simulator.meter_server import SimulatedMeter
from gateway.simulator.modbus_server import SimulatedCharger
from gateway.simulator.rtu_server import SimulatedRtuBus
from tests.test_modbus_rtu import (  # noqa: F401  (fixtures)
    PROFILE,
    VOLTAGES,
    BusEnds,
    _pty_accepts_parity,
    bus_ends,
)


async def test_meter_and_chargers_share_one_bus(bus_ends: BusEnds) -> None:  # noqa: F811
    near, far = bus_ends
    box = SimulatedCharger(PROFILE, unit_id=1, voltages=VOLTAGES)
    box.plug(phases=3, ev_max_current=16.0)
    sim = SimulatedMeter("eastron-sdm630", unit_id=7, load=(25.0, -4.0, 9.5))
    config = MeterConfig(
        id="grid",
        adapter="modbus",
        profile="eastron-sdm630",
        unit_id=7,
        timeout=0.5,
        serial={"port": near, "baudrate": 19200, "parity": "E"},  # type: ignore[arg-type]
    )
    async with SimulatedRtuBus(far, [box, sim], baudrate=19200, parity="E"):  # type: ignore[list-item]
        meter = build_meter(config)
        charger = ModbusRtuCharger(
            "box-1", SerialSettings(near, 19200, "E"), 1, PROFILE, 16.0, 3, timeout=0.5
        )
        try:
            assert meter.transport is charger.transport  # type: ignore[union-attr]
            await charger.set_current_limit(10.0)
            reads = [meter.read() for _ in range(8)] + [charger.read() for _ in range(8)]
            results = await asyncio.gather(*reads)
            for sample in results[:8]:
                assert sample.current.as_tuple() == pytest.approx((25.0, -4.0, 9.5))  # type: ignore[union-attr]
            assert all(s.current.p1 == 10.0 for s in results[8:])  # type: ignore[union-attr]
            assert {(r.function_code, r.address) for r in sim.recent_requests} == {(4, 0)}
            sim.silent = True
            with pytest.raises(MeterUnreachable, match=r"meter grid \(.* unit 7\): .*no answer"):
                await meter.read()
            assert (await charger.read()).current == Phases(10.0, 10.0, 10.0)
            sim.silent = False
            assert (await meter.read()).current.p1 == pytest.approx(25.0)
        finally:
            await meter.close()
            await charger.close()
