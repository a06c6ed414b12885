"""The Mennekes AMTRON Compact 2.0s / Kostal ENECTOR on a real serial line (a pty pair),
opened by the daemon's factory from a config as a user writes it: 57600 baud 8N2,
unit 50, heartbeat token and charging release as the vendor facts say."""

from __future__ import annotations

import contextlib
import tomllib

from gateway.adapters.factory import open_charger
from gateway.adapters.modbus.rtu import ModbusRtuCharger
from gateway.config import config_from_dict
from gateway.core.model import CableState, ComponentState, Phases
from gateway.simulator.modbus_server import SimulatedCharger
from gateway.simulator.rtu_server import SimulatedRtuBus
from tests.test_modbus_rtu import BusEnds, bus_ends

__all__ = ["bus_ends"]  # the serial-line fixture, shared with the Heidelberg bus tests

PROFILE = "mennekes-amtron-compact"
VOLTS = (229.0, 231.0, 233.0)


async def test_amtron_compact_on_an_8n2_bus_through_the_factory(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    config = config_from_dict(
        tomllib.loads(
            f"""
            [[chargers]]
            id = "carport"
            adapter = "modbus"
            profile = "{PROFILE}"
            serial = {{ port = "{near}", baudrate = 57600, parity = "N", stopbits = 2 }}
            """
        )
    )
    box = SimulatedCharger(PROFILE, voltages=VOLTS, validity_time=10.0, safe_current=0.0)
    box.plug(phases=3, ev_max_current=16.0)
    bus = SimulatedRtuBus(far, [box], baudrate=57600, parity="N", stopbits=2)
    async with bus, contextlib.AsyncExitStack() as stack:
        charger = await stack.enter_async_context(open_charger(config.chargers[0], config))
        assert isinstance(charger, ModbusRtuCharger) and charger.unit_id == 50
        assert await charger.set_current_limit(10.55) == 10.5
        sample = await charger.read()
        assert sample.current == Phases(10.5, 10.5, 10.5) and sample.voltage == Phases(*VOLTS)
        assert (sample.cable_state, sample.component_state) == (
            CableState.EV_PLUGGED,
            ComponentState.CHARGING,
        )
        assert getattr(box.layout, "release", None) == 1  # charging release, once connected
        await charger.keep_alive()  # due at once: the first heartbeat after the limit
        heartbeat = [r for r in box.recent_requests if (r.function_code, r.address) == (6, 0x0D00)]
        assert len(heartbeat) == 1
