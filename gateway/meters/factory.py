"""Opening the meter a config entry asks for, and a pool's grid limits from the config.

`open_meter` is an async context manager yielding a `Meter` and closing it on exit: a
`ModbusTcpMeter`, a `ModbusMeter` on the RS-485 bus of its serial port (shared with any
chargers on that port, which must then use the same line settings), or an `MqttMeter`
that the MQTT bridge feeds with the messages of the meter's topic.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from gateway.adapters.modbus.rtu import SerialSettings, open_bus
from gateway.clock import Clock
from gateway.config import GatewayConfig, MeterConfig, PoolConfig
from gateway.core.headroom import GridLimits
from gateway.meters.modbus import ModbusMeter, ModbusTcpMeter
from gateway.meters.model import Meter
from gateway.meters.mqtt import MqttMeter


@contextlib.asynccontextmanager
async def open_meter(config: MeterConfig, clock: Clock | None = None) -> AsyncIterator[Meter]:
    """The adapter for one meter, closed on exit; `clock` times its samples."""
    meter = build_meter(config, clock)
    try:
        yield meter
    finally:
        await meter.close()


def build_meter(config: MeterConfig, clock: Clock | None = None) -> ModbusMeter | MqttMeter:
    """The adapter for one meter (not connected yet); the caller closes it. `clock`
    (default: the system clock) times its samples."""
    phases = tuple(config.phases)
    if config.adapter == "mqtt":
        assert config.topic is not None  # the config requires it
        return MqttMeter(config.id, config.topic, phases, clock=clock, max_age=config.max_age)
    assert config.profile is not None  # the config requires it
    if config.serial is None:
        return ModbusTcpMeter(
            config.id,
            config.host or "127.0.0.1",
            config.port,
            config.unit_id,
            config.profile,
            phases,
            timeout=config.timeout,
            clock=clock,
        )
    settings = SerialSettings(**config.serial.model_dump())
    holder = object()  # counted on the bus until the meter itself is
    bus = open_bus(settings, config.timeout, holder)
    try:
        meter = ModbusMeter(config.id, bus, config.unit_id, config.profile, phases, clock=clock)
        bus.acquire(meter)
    finally:
        bus.forget(holder)
    return meter


def grid_limits(config: GatewayConfig, pool: PoolConfig) -> GridLimits | None:
    """The pool's grid limits (None when it has no `grid`): fuse, margin, fallback and
    the pool's `phase_limit`, the meter's `max_age`, the distribution's minimum current."""
    if pool.grid is None:
        return None
    return GridLimits(
        fuse=pool.grid.fuse,
        margin=pool.grid.margin,
        max_age=config.meter(pool.grid.meter).max_age,
        phase_limit=pool.phase_limit,
        fallback_current=pool.grid.fallback_current,
        min_current=config.distribution.min_current,
    )
