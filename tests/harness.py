"""Running the real daemon in-process against real brokers and simulated chargers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gateway.clock import Clock
from gateway.config import config_from_dict
from gateway.daemon import Gateway
from gateway.simulator.modbus_server import SimulatedCharger
from tests.conftest import Mosquitto


def site_config(
    broker: Mosquitto,
    chargers: list[dict[str, Any]],
    pools: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A config dict for the daemon: fast ticks, the test broker, the given chargers."""
    config: dict[str, Any] = {
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
        "power": {"resampling_period": 0.2, "max_data_age": 1.0, "max_proposal_age": 60.0},
        "homeassistant": {"enabled": False},
        "chargers": chargers,
    }
    if pools is not None:
        config["pools"] = pools
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


def modbus_charger(
    charger_id: str, sim: SimulatedCharger, phases: list[int] | None = None, **extra: Any
) -> dict[str, Any]:
    """A charger entry polling a simulator with the generic profile."""
    return {
        "id": charger_id,
        "adapter": "modbus",
        "profile": sim.profile_name,
        "host": "127.0.0.1",
        "port": sim.port,
        "poll_interval": 0.2,
        "timeout": 0.3,
        "max_current": 16.0,
        "phases": phases or [1, 2, 3],
        **extra,
    }


@contextlib.asynccontextmanager
async def running_gateway(
    config: dict[str, Any], clock: Clock | None = None
) -> AsyncIterator[Gateway]:
    """The daemon's own `Gateway.run()` on a task; stopped cleanly afterwards.

    With a `FakeClock`, the daemon's timing (ticks, polls, keepalives, expiry) moves
    only when the test advances the clock.
    """
    gateway = Gateway(config_from_dict(config, "<test>"), clock)
    task = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(gateway.ready.wait(), 10)
        yield gateway
    finally:
        gateway.stop()
        try:
            await asyncio.wait_for(task, 10)
        finally:
            if not task.done():
                task.cancel()


@contextlib.asynccontextmanager
async def simulators(
    count: int, profile: str = "generic", *, plugged: bool = False
) -> AsyncIterator[list[SimulatedCharger]]:
    """`count` simulated chargers of a profile, each a Modbus TCP server on a free port.

    With `plugged`, each has a 3-phase EV that takes up to 16 A.
    """
    sims = [SimulatedCharger(profile=profile) for _ in range(count)]
    for sim in sims:
        await sim.start()
        if plugged:
            sim.plug(phases=3, ev_max_current=16.0)
    try:
        yield sims
    finally:
        for sim in sims:
            sim.silent = False  # a silent server holds its connections open
            await asyncio.wait_for(sim.stop(), 10)
