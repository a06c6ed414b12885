"""Helpers for the Modbus adapter, profile and simulator tests (real sockets, no mocks)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from gateway.adapters.modbus.profile import Profile, load_profile
from gateway.adapters.modbus.tcp import ModbusTcpCharger
from gateway.simulator.modbus_server import SimulatedCharger

PROFILES = ("generic", "alfen-eve")
VOLTAGES = (229.0, 231.5, 233.0)
"""Distinct per phase, so a swapped register shows up."""


class ManualClock:
    """A monotonic clock the test moves by hand (for the simulator's EV model)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.asynccontextmanager
async def running_sim(profile: str = "generic", **kwargs: Any) -> AsyncIterator[SimulatedCharger]:
    """A started simulator on a free port, stopped afterwards."""
    kwargs.setdefault("voltages", VOLTAGES)
    sim = SimulatedCharger(profile, **kwargs)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def adapter_for(
    sim: SimulatedCharger,
    profile: Profile | None = None,
    *,
    max_current: float = 16.0,
    wired_phases: int = 3,
    timeout: float = 0.5,
    unit_id: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ModbusTcpCharger:
    """An adapter pointed at `sim`, with the simulator's profile unless one is given."""
    return ModbusTcpCharger(
        "bay-7",
        sim.host,
        sim.port,
        unit_id,
        profile or load_profile(sim.profile_name),
        max_current,
        wired_phases,
        timeout=timeout,
        clock=clock,
    )


@contextlib.asynccontextmanager
async def bare_client(
    sim: SimulatedCharger, timeout: float = 0.5
) -> AsyncIterator[AsyncModbusTcpClient]:
    """A plain pymodbus client connected to `sim`: checks the simulator without our decoding."""
    client = AsyncModbusTcpClient(
        sim.host, port=sim.port, timeout=timeout, retries=0, reconnect_delay=0
    )
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()
