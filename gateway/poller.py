"""Polling one charger on its own task, so a dead or slow one never delays the others.

Each poll has its own timeout. After a failure the next attempt waits with capped
exponential backoff (poll interval x 2^failures, at most `backoff_max`), and the
charger's last error is kept for its state report. The loop never ends by itself:
whatever a charger answers, the poller logs it, marks the charger and tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from gateway.adapters.base import Charger, ChargerError
from gateway.core.model import ChargerSample

log = logging.getLogger(__name__)

SampleCallback = Callable[[str, ChargerSample], None]


class ChargerPoller:
    """Reads one charger at its poll interval and keeps its latest sample."""

    def __init__(
        self,
        charger: Charger,
        interval: float,
        timeout: float,
        backoff_max: float = 10.0,
        on_sample: SampleCallback | None = None,
    ) -> None:
        self.charger = charger
        self.interval = interval
        self.timeout = timeout
        self.backoff_max = max(backoff_max, interval)
        self.on_sample = on_sample
        self.latest: ChargerSample | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.polls = 0

    @property
    def charger_id(self) -> str:
        return self.charger.charger_id

    async def poll_once(self) -> bool:
        """One read with the timeout; returns True when it produced a sample."""
        self.polls += 1
        try:
            sample = await asyncio.wait_for(self.charger.read(), self.timeout)
        except TimeoutError:
            self._failed(f"no answer within {self.timeout:g} s")
            return False
        except ChargerError as exc:
            self._failed(str(exc))
            return False
        except Exception as exc:  # an adapter bug must not stop the polling
            log.exception("charger %s: unexpected error while reading", self.charger_id)
            self._failed(f"internal error: {exc!r}")
            return False
        if self.failures:
            log.info("charger %s answers again after %d failures", self.charger_id, self.failures)
        self.failures = 0
        self.last_error = None
        self.latest = sample
        if self.on_sample is not None:
            self.on_sample(self.charger_id, sample)
        return True

    def _failed(self, reason: str) -> None:
        self.failures += 1
        if self.failures == 1 or reason != self.last_error:
            log.warning("charger %s: %s (will retry)", self.charger_id, reason)
        self.last_error = reason

    def next_delay(self, elapsed: float) -> float:
        """Seconds to wait before the next poll."""
        if self.failures:
            backoff: float = self.interval * 2.0 ** (self.failures - 1)
            return min(backoff, self.backoff_max)
        return max(0.0, self.interval - elapsed)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            started = time.monotonic()
            await self.poll_once()
            await asyncio.sleep(self.next_delay(time.monotonic() - started))
