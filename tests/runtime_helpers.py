"""Driving charger runtimes and the daemon on a `FakeClock` against real simulators.

Time moves only when a test says so; the helpers then wait (in real time, for the
network round trips the woken tasks make) until every task sleeps on the clock again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.adapters.factory import open_runtime
from gateway.chargers import ChargerRuntime
from gateway.clock import FakeClock
from gateway.config import GatewayConfig, config_from_dict


async def idle(clock: FakeClock, sleepers: int, timeout: float = 10.0) -> None:
    """Wait until at least `sleepers` tasks sleep on the clock (their I/O is done)."""
    async with asyncio.timeout(timeout):
        while clock.sleepers < sleepers:  # noqa: ASYNC110 -- tasks finish their I/O
            await asyncio.sleep(0.002)


async def run_for(
    clock: FakeClock,
    seconds: float,
    sleepers: int,
    step: float = 1.0,
    each: Callable[[], None] | None = None,
) -> None:
    """Move the clock `seconds` ahead in `step`s, letting the tasks finish each step."""
    moved = 0.0
    while moved < seconds - 1e-9:
        delta = min(step, seconds - moved)
        await clock.advance(delta)
        moved += delta
        await idle(clock, sleepers)
        if each is not None:
            each()


def runtime_config(charger: dict[str, Any], **sections: Any) -> GatewayConfig:
    """A gateway config with one charger (MQTT is not used by a bare runtime)."""
    data: dict[str, Any] = {"chargers": [charger], "homeassistant": {"enabled": False}}
    data.update(sections)
    return config_from_dict(data, "<test>")


@contextlib.asynccontextmanager
async def running_runtime(config: GatewayConfig, clock: FakeClock) -> AsyncIterator[ChargerRuntime]:
    """The factory's runtime for the config's first charger, its tasks running."""
    async with open_runtime(config.chargers[0], config, clock) as runtime:
        task = asyncio.create_task(runtime.run())
        try:
            yield runtime
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
