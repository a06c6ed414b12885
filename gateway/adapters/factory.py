"""Opening the adapter a charger's config asks for.

`open_charger` is an async context manager: it yields a `Charger` and closes it (and
whatever it started, such as the in-process simulator behind `adapter = "simulated"`)
on exit. A Modbus charger with `serial` set is on an RTU bus, shared by every charger
with the same serial port (opened with the first, closed with the last). OCPP chargers
come from the gateway's OCPP central system, which the daemon starts before the
chargers are opened and stops after they are closed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gateway.adapters.base import Charger
from gateway.adapters.goe import GoeCharger
from gateway.adapters.modbus.profile import load_profile
from gateway.adapters.modbus.rtu import ModbusRtuCharger, SerialSettings
from gateway.adapters.modbus.tcp import ModbusTcpCharger
from gateway.adapters.ocpp import OcppCentralSystem
from gateway.config import ChargerConfig, GatewayConfig

SIMULATED_PROFILE = "generic"


@contextlib.asynccontextmanager
async def open_charger(
    config: ChargerConfig, gateway: GatewayConfig, central: OcppCentralSystem | None = None
) -> AsyncIterator[Charger]:
    """The adapter for one charger, closed on exit; OCPP ones come from `central`."""
    async with contextlib.AsyncExitStack() as stack:
        if config.adapter == "simulated":
            charger: Charger = await stack.enter_async_context(_simulated(config, gateway))
        elif config.adapter == "modbus" and config.serial is not None:
            charger = _modbus_rtu(config, gateway)
            stack.push_async_callback(charger.close)
        elif config.adapter == "modbus":
            charger = _modbus_tcp(config, gateway, config.host or "127.0.0.1", config.port)
            stack.push_async_callback(charger.close)
        elif config.adapter == "go-e":
            charger = _goe(config, gateway)
            stack.push_async_callback(charger.close)
        elif central is not None:
            charger = central.charger(config.id)  # closed by the central system's stop()
        else:
            raise ValueError(f"charger {config.id}: adapter ocpp needs the OCPP central system")
        yield charger


def _register_map(
    config: ChargerConfig, gateway: GatewayConfig, profile: str | None = None
) -> dict[str, Any]:
    """What every Modbus adapter takes besides its transport: id, unit, map, limits."""
    loaded = load_profile(profile or config.profile or SIMULATED_PROFILE)
    return {
        "charger_id": config.id,
        "unit_id": config.unit_id if config.unit_id is not None else loaded.unit_id,
        "profile": loaded,
        "max_current": config.max_current,
        "wired_phases": len(config.phases),
        "nominal_voltage": gateway.distribution.nominal_voltage,
        "timeout": config.timeout,
        "safe_current": config.safe_current,
    }


def _modbus_tcp(
    config: ChargerConfig, gateway: GatewayConfig, host: str, port: int, profile: str | None = None
) -> ModbusTcpCharger:
    return ModbusTcpCharger(host=host, port=port, **_register_map(config, gateway, profile))


def _goe(config: ChargerConfig, gateway: GatewayConfig) -> GoeCharger:
    """A go-e Charger over its local HTTP API v2 (the config's port defaults to 80)."""
    assert config.host is not None
    return GoeCharger(
        config.id,
        config.host,
        config.port,
        max_current=config.max_current,
        wired_phases=len(config.phases),
        nominal_voltage=gateway.distribution.nominal_voltage,
        timeout=config.timeout,
    )


def _modbus_rtu(config: ChargerConfig, gateway: GatewayConfig) -> ModbusRtuCharger:
    """A charger on an RS-485 bus; chargers with the same `serial.port` share it."""
    serial = config.serial
    assert serial is not None
    settings = SerialSettings(
        port=serial.port,
        baudrate=serial.baudrate,
        parity=serial.parity,
        stopbits=serial.stopbits,
        bytesize=serial.bytesize,
        delay=serial.delay,
    )
    return ModbusRtuCharger(serial=settings, **_register_map(config, gateway))


@contextlib.asynccontextmanager
async def _simulated(config: ChargerConfig, gateway: GatewayConfig) -> AsyncIterator[Charger]:
    """A simulated charger: a real Modbus TCP server in-process, polled like any other."""
    from gateway.simulator.modbus_server import SimulatedCharger

    sim = SimulatedCharger(profile=SIMULATED_PROFILE)
    await sim.start()
    ev = config.simulated_ev
    if ev.plugged:
        sim.plug(phases=ev.phases, ev_max_current=ev.max_current)
    else:
        sim.unplug()
    charger = _modbus_tcp(config, gateway, "127.0.0.1", sim.port, SIMULATED_PROFILE)
    try:
        yield charger
    finally:
        await charger.close()
        await sim.stop()
