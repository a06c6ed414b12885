"""The clock the OCPP adapter decides with, injectable so tests need no real sleeps.

Every decision (liveness probes, retry backoff, limit refreshes, rate limits, the
grace before a limit is checked) uses `monotonic()`, which never steps when NTP
corrects the wall clock. `wall()` appears only in OCPP payloads (`startSchedule`,
`validTo`, `currentTime`), which the charge point reads by its own clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for decisions, wall time for payloads, and a sleep on the former."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def wall(self) -> datetime:
        """The current UTC time, for OCPP payloads only."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of monotonic time."""
        ...


class SystemClock:
    """The real clocks: `time.monotonic`, `datetime.now(UTC)` and `asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


SYSTEM_CLOCK = SystemClock()
