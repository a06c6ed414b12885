"""Opening the adapter a charger's config asks for, and the runtime that owns it.

`open_runtime` yields a `ChargerRuntime` (gateway/chargers): the adapter with the
capabilities taken from its profile (or OCPP) and config. `open_charger` is the
adapter alone, an async context manager: it yields a `Charger` and closes it (and
whatever it started, such as the in-process simulator behind `adapter = "simulated"`)
on exit. A Modbus charger with `serial` set is on an RTU bus, shared by every charger
with the same serial port (opened with the first, closed with the last). OCPP chargers
come from the gateway's OCPP central system, which the daemon starts before the
chargers are opened and stops after they are closed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.adapters.base import Charger
from gateway.adapters.goe import CURRENT_STEP as GOE_STEP
from gateway.adapters.goe import MIN_CURRENT as GOE_MIN_CURRENT
from gateway.adapters.goe import GoeCharger
from gateway.adapters.modbus.charger import ModbusCharger
from gateway.adapters.modbus.profile import load_profile
from gateway.adapters.modbus.rtu import ModbusRtuCharger, SerialSettings
from gateway.adapters.modbus.tcp import ModbusTcpCharger
from gateway.adapters.ocpp import OcppCentralSystem
from gateway.chargers import Capabilities, ChargerRuntime
from gateway.chargers.capabilities import timeouts
from gateway.clock import Clock
from gateway.config import ChargerConfig, GatewayConfig

SIMULATED_PROFILE = "generic"
OCPP_STEP = 0.1
"""A: the resolution the OCPP adapter writes limits in."""


@contextlib.asynccontextmanager
async def open_runtime(
    config: ChargerConfig,
    gateway: GatewayConfig,
    clock: Clock,
    central: OcppCentralSystem | None = None,
) -> AsyncIterator[ChargerRuntime]:
    """The runtime of one charger, its adapter opened and closed with it."""
    async with open_charger(config, gateway, central, clock.now) as adapter:
        yield ChargerRuntime(
            config,
            adapter,
            capabilities(config, gateway, adapter),
            clock,
            gateway.power.max_data_age,
        )


def capabilities(config: ChargerConfig, gateway: GatewayConfig, adapter: Charger) -> Capabilities:
    """A charger's capabilities: its profile's where it has one, else OCPP's."""
    read_timeout, write_timeout = timeouts(adapter, config.timeout)
    minimum = gateway.distribution.min_current
    if isinstance(adapter, ModbusCharger):
        profile = adapter.profile
        return Capabilities(
            min_current=max(minimum, profile.min_current),
            max_current=config.max_current,
            step=profile.current_step,
            phases=tuple(config.phases),
            ev_phases=config.ev_phases,
            keepalive=adapter.keepalive_interval,
            phase_switching=profile.phase_switch is not None,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
        )
    if isinstance(adapter, GoeCharger):
        return Capabilities(
            min_current=max(minimum, GOE_MIN_CURRENT),
            max_current=config.max_current,
            step=GOE_STEP,
            phases=tuple(config.phases),
            ev_phases=config.ev_phases,
            keepalive=None,  # the box has no watchdog
            phase_switching=False,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
        )
    # OCPP: a write is a CALL answered within the central system's own timeout; the
    # first on a connection may take two (the fail-safe profile, then the limit).
    return Capabilities(
        min_current=minimum,
        max_current=config.max_current,
        step=OCPP_STEP,
        phases=tuple(config.phases),
        ev_phases=config.ev_phases,
        keepalive=None,
        phase_switching=False,
        read_timeout=read_timeout,
        write_timeout=2 * gateway.ocpp.response_timeout + 1.0,
    )


@contextlib.asynccontextmanager
async def open_charger(
    config: ChargerConfig,
    gateway: GatewayConfig,
    central: OcppCentralSystem | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Charger]:
    """The adapter for one charger, closed on exit; OCPP ones come from `central`.

    `clock` (monotonic seconds) stamps its samples and schedules its keepalive.
    """
    async with contextlib.AsyncExitStack() as stack:
        if config.adapter == "simulated":
            charger: Charger = await stack.enter_async_context(_simulated(config, gateway, clock))
        elif config.adapter == "modbus" and config.serial is not None:
            charger = _modbus_rtu(config, gateway, clock)
            stack.push_async_callback(charger.close)
        elif config.adapter == "modbus":
            host = config.host or "127.0.0.1"
            charger = _modbus_tcp(config, gateway, clock, host, config.port)
            stack.push_async_callback(charger.close)
        elif config.adapter == "go-e":
            charger = _goe(config, gateway, clock)
            stack.push_async_callback(charger.close)
        elif central is not None:
            charger = central.charger(config.id)  # closed by the central system's stop()
        else:
            raise ValueError(f"charger {config.id}: adapter ocpp needs the OCPP central system")
        yield charger


def _register_map(
    config: ChargerConfig,
    gateway: GatewayConfig,
    clock: Callable[[], float],
    profile: str | None = None,
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
        "clock": clock,
    }


def _modbus_tcp(
    config: ChargerConfig,
    gateway: GatewayConfig,
    clock: Callable[[], float],
    host: str,
    port: int,
    profile: str | None = None,
) -> ModbusTcpCharger:
    registers = _register_map(config, gateway, clock, profile)
    return ModbusTcpCharger(host=host, port=port, **registers)


def _goe(config: ChargerConfig, gateway: GatewayConfig, clock: Callable[[], float]) -> GoeCharger:
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
        clock=clock,
    )


def _modbus_rtu(
    config: ChargerConfig, gateway: GatewayConfig, clock: Callable[[], float]
) -> ModbusRtuCharger:
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
    return ModbusRtuCharger(serial=settings, **_register_map(config, gateway, clock))


@contextlib.asynccontextmanager
async def _simulated(
    config: ChargerConfig, gateway: GatewayConfig, clock: Callable[[], float]
) -> AsyncIterator[Charger]:
    """A simulated charger: a real Modbus TCP server in-process, polled like any other."""
    from gateway.simulator.modbus_server import SimulatedCharger

    sim = SimulatedCharger(profile=SIMULATED_PROFILE)
    await sim.start()
    ev = config.simulated_ev
    if ev.plugged:
        sim.plug(phases=ev.phases, ev_max_current=ev.max_current)
    else:
        sim.unplug()
    charger = _modbus_tcp(config, gateway, clock, "127.0.0.1", sim.port, SIMULATED_PROFILE)
    try:
        yield charger
    finally:
        await charger.close()
        await sim.stop()
