"""Polling a Modbus meter on its own task, keeping its latest reading and last error.

The control loop and the meter state payload read `latest` and `error`. `on_sample` is
called with every new reading, so a pool can recompute its headroom as soon as a house
load step shows instead of at its next tick; `on_error` with every failure's reason.
Every request is bounded by the meter's own timeout (the adapter's), so the loop needs
none of its own. A failure is logged when it first happens or its reason changes, and
once when the meter answers again; the poll interval stays the same (a grid meter is
one device, and the pool falls back while it is silent, so retrying at once matters
more than sparing it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.clock import Clock, SystemClock
from gateway.meters.model import Meter, MeterError, MeterSample

log = logging.getLogger(__name__)


class MeterPoller:
    """Reads one meter every `interval` seconds until cancelled."""

    def __init__(
        self,
        meter: Meter,
        interval: float,
        *,
        on_sample: Callable[[MeterSample], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"meter {meter.meter_id}: need interval > 0 (got {interval})")
        self.meter = meter
        self.interval = interval
        self.on_sample = on_sample
        self.on_error = on_error
        self.latest: MeterSample | None = None
        self.error: str | None = None
        self.failures = 0
        self.polls = 0
        self._clock = clock or SystemClock()

    async def poll_once(self) -> bool:
        """One read; True when it gave a reading. Never raises a `MeterError`."""
        self.polls += 1
        try:
            sample = await self.meter.read()
        except MeterError as exc:
            reason = str(exc)
            if reason != self.error:
                log.warning("%s (will retry every %g s)", reason, self.interval)
            self.error = reason
            self.failures += 1
            if self.on_error is not None:
                self.on_error(reason)
            return False
        if self.failures:
            log.info("meter %s answers again after %d failures", self.meter.meter_id, self.failures)
        self.failures = 0
        self.error = None
        self.latest = sample
        if self.on_sample is not None:
            self.on_sample(sample)
        return True

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            started = self._clock.now()
            await self.poll_once()
            await self._clock.sleep(self.interval - (self._clock.now() - started))
