"""The gateway's sense of time: a monotonic clock for decisions, the wall clock for labels.

Every decision (data freshness, proposal expiry, uncertain windows, backoff, rotation,
keepalive schedules) is taken on `Clock.now()`, a monotonic clock that never steps, so
an edge box whose wall clock is corrected by NTP (or has no RTC at all) neither keeps
a dead charger's old sample fresh nor lets a proposal outlive its age. The wall clock
only labels payloads: `Clock.wall_at(t)` turns a monotonic time into a Unix time.

`SystemClock` is the real one. `FakeClock` lets tests and simulations move time by
hand: its `sleep()` returns when `advance()` has moved the clock past the deadline,
so nothing waits on real time for the gateway's own timing.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """What the daemon asks of time."""

    def now(self) -> float:
        """Monotonic seconds: the time every decision is taken on."""
        ...

    def wall(self) -> float:
        """Unix time, for timestamps in payloads only."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` on this clock."""
        ...


def wall_at(clock: Clock, monotonic: float) -> float:
    """The Unix time of a moment given on the clock's monotonic scale."""
    return clock.wall() - (clock.now() - monotonic)


class SystemClock:
    """`time.monotonic` for decisions, `time.time` for labels, `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock moved by hand; `sleep()` waits for `advance()` instead of real time.

    The wall clock is the monotonic one plus an offset that a test may change, as NTP
    would (`step_wall(-3600)`), without moving monotonic time.
    """

    def __init__(self, start: float = 1000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self._now = start
        self.wall_offset = wall_offset
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self.wall_offset

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock (as NTP does); monotonic time is unaffected."""
        self.wall_offset += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes, if any."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float, step: float | None = None) -> None:
        """Move time forward, waking sleepers in deadline order as it passes them.

        With `step`, time moves in steps of at most that size, letting the event loop
        run between them (so the tasks woken can do their I/O before time moves on).
        """
        end = self._now + seconds
        while True:
            deadline = self.next_deadline()
            target = end if deadline is None or deadline > end else deadline
            if step is not None:
                target = min(target, self._now + step)
            self._now = max(self._now, target)
            self._wake_due()
            await _settle()
            if self._now >= end:
                upcoming = self.next_deadline()
                if upcoming is None or upcoming > end:
                    return

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


async def _settle(rounds: int = 5) -> None:
    """Let woken tasks run a few steps of the event loop."""
    for _ in range(rounds):
        await asyncio.sleep(0)
