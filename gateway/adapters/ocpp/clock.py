"""The clock the OCPP adapter decides with: the gateway's own (gateway/clock.py).

Every decision (liveness probes, retry backoff, limit refreshes, rate limits, the
grace before a limit is checked) uses `Clock.now()`, which never steps when NTP
corrects the wall clock. The wall clock appears only in OCPP payloads (`startSchedule`,
`validTo`, `currentTime`), which the charge point reads by its own clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.clock import Clock, SystemClock

SYSTEM_CLOCK: Clock = SystemClock()


def wall_datetime(clock: Clock) -> datetime:
    """The clock's wall time as an aware UTC datetime, for OCPP payloads."""
    return datetime.fromtimestamp(clock.wall(), UTC)


__all__ = ["SYSTEM_CLOCK", "Clock", "wall_datetime"]
