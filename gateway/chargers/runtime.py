"""One charger at run time: its adapter, its tasks, its latest sample, status and limit.

`ChargerRuntime.run()` runs two tasks for the charger:
- the poll loop reads a sample every `poll_interval`, each read bounded by the
  adapter's overall deadline (every request also has its own timeout); after a
  failure it retries with capped exponential backoff;
- the keepalive loop serves the charger's watchdog on the watchdog's own schedule
  (setpoint rewrite, heartbeat register), whatever the poll loop does: a long poll
  interval or a backoff never lets the watchdog lapse.
`write_limit()` writes a limit and records what was actually written (the adapter
rounds down to the charger's step), or the failure, which makes the charger
`uncertain` for a while (see `gateway.core.status`).

Quiet by design: a charger that goes down is logged once, then once every
`summary_interval` while it stays down, and once when it comes back. Writes to a
charger known to be unreachable are not attempted (they could only time out).
Every time comes from the injected `Clock`, so tests move time by hand.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from gateway.adapters.base import (
    Charger,
    ChargerError,
    ChargerUnreachable,
    KeepsAlive,
    ReportsError,
)
from gateway.chargers.capabilities import Capabilities
from gateway.clock import Clock
from gateway.config import ChargerConfig
from gateway.core.formulas import is_fresh
from gateway.core.model import ChargerSample
from gateway.core.status import ChargerStatus, StatusTracker
from gateway.tasks import honour_cancellation

log = logging.getLogger(__name__)

SUMMARY_INTERVAL = 300.0
"""Seconds between two 'still down' lines for a charger that stays down."""

KEEPALIVE_RETRY = 1.0
"""Seconds before a failed keepalive write is tried again."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What one limit write did: `amps` is the value written, or the one requested."""

    ok: bool
    amps: float
    error: str | None


class ChargerRuntime:
    """Owns one configured charger while the daemon runs."""

    def __init__(
        self,
        config: ChargerConfig,
        adapter: Charger,
        capabilities: Capabilities,
        clock: Clock,
        max_data_age: float,
        backoff_max: float = 10.0,
        summary_interval: float = SUMMARY_INTERVAL,
    ) -> None:
        self.id = config.id
        self.config = config
        self.adapter = adapter
        self.capabilities = capabilities
        self.clock = clock
        self.max_data_age = max_data_age
        self.backoff_max = max(backoff_max, config.poll_interval)
        self.summary_interval = summary_interval
        self.tracker = StatusTracker(max_data_age)
        self.latest: ChargerSample | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.polls = 0
        self.commanded: float | None = None
        self.ev_resume = "ok"  # the distributor's verdict: ok, waking or stalled
        # the phase setting (1 after a switch to one phase) and whether a switch is under
        # way; both kept by gateway.chargers.phase_switch
        self.phases_in_use = len(capabilities.phases)
        self.switching = False
        self._unreachable = False
        self._down_since: float | None = None
        self._next_summary = 0.0
        self._write_failures = 0
        self._limit_written = asyncio.Event()
        # A protocol isinstance check costs microseconds: once here, not at every poll.
        self._fault_source = adapter if isinstance(adapter, ReportsError) else None

    def __repr__(self) -> str:
        return f"ChargerRuntime({self.id!r}, {self.adapter!r})"

    # ------------------------------------------------------------------ state
    @property
    def phases(self) -> tuple[int, ...]:
        """Grid phase wired to each of the charger's terminals."""
        return self.capabilities.phases

    @property
    def reachable(self) -> bool:
        """False while the last read failed for want of an answer."""
        return not self._unreachable

    def fresh(self, now: float) -> bool:
        """True when the latest sample is at most `max_data_age` old."""
        return is_fresh(self.latest, now, self.max_data_age)

    def status(self, now: float) -> ChargerStatus:
        """working, not_working or uncertain, by the status rules."""
        return self.tracker.status(self.id, self.latest, now)

    # ------------------------------------------------------------------ tasks
    async def run(self) -> None:
        """Poll and keep the watchdog alive until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._poll_loop(), name=f"poll-{self.id}")
            if isinstance(self.adapter, KeepsAlive):
                group.create_task(self._keepalive_loop(self.adapter), name=f"keepalive-{self.id}")

    async def _poll_loop(self) -> None:
        clock = self.clock
        due = clock.now()
        while True:
            await self.poll_once()
            honour_cancellation()
            now = clock.now()
            due = self.next_due(due, now)
            await clock.sleep(max(0.0, due - now))

    def next_due(self, due: float, now: float) -> float:
        """When the next poll starts, the last one having been due at `due`.

        On a fixed grid, one `poll_interval` after the last: a busy event loop's late
        wake-ups do not add up, so a large site keeps its poll rate. More than an
        interval behind, the grid starts again from `now`. After a failure: `now`
        plus the backoff.
        """
        if self.failures:
            return now + self.backoff()
        interval = self.config.poll_interval
        due += interval
        return now if now - due > interval else due

    def backoff(self) -> float:
        """Seconds to wait after the current run of failures: the interval, doubled
        with each further failure, at most `backoff_max`."""
        backoff: float = self.config.poll_interval * 2.0 ** (max(self.failures, 1) - 1)
        return min(backoff, self.backoff_max)

    async def poll_once(self) -> bool:
        """One read within the adapter's deadline; True when it produced a sample."""
        self.polls += 1
        deadline = self.capabilities.read_timeout
        try:
            async with asyncio.timeout(deadline):
                sample = await self.adapter.read()
        except TimeoutError:
            self._read_failed(f"no answer within {deadline:g} s", unreachable=True)
            return False
        except ChargerError as exc:
            self._read_failed(str(exc), unreachable=isinstance(exc, ChargerUnreachable))
            return False
        except Exception as exc:  # an adapter bug must not stop the polling
            if not self.failures:
                log.exception("charger %s: unexpected error while reading", self.id)
            self._read_failed(f"internal error: {exc!r}", unreachable=False)
            return False
        if self._down_since is not None:
            log.info(
                "charger %s answers again after %.0f s (%d failed polls)",
                self.id,
                self.clock.now() - self._down_since,
                self.failures,
            )
        self._down_since = None
        self._unreachable = False
        self.failures = 0
        self.last_error = self._fault_source.error if self._fault_source else None
        self.latest = sample
        return True

    def _read_failed(self, reason: str, unreachable: bool) -> None:
        now = self.clock.now()
        self.failures += 1
        self.last_error = reason
        self._unreachable = unreachable
        if self._down_since is None:
            self._down_since = now
            self._next_summary = now + self.summary_interval
            log.warning(
                "charger %s is down: %s (retrying; a summary every %.0f s while down)",
                self.id,
                reason,
                self.summary_interval,
            )
        elif now >= self._next_summary:
            self._next_summary = now + self.summary_interval
            log.warning(
                "charger %s still down after %.0f s, %d failed polls; last error: %s",
                self.id,
                now - self._down_since,
                self.failures,
                reason,
            )

    async def _keepalive_loop(self, adapter: KeepsAlive) -> None:
        clock = self.clock
        while True:
            due = adapter.next_keepalive_due()
            if due is None:
                self._limit_written.clear()
                await self._limit_written.wait()
                continue
            wait = due - clock.now()
            if wait > 0:
                await clock.sleep(wait)
                continue
            try:
                async with asyncio.timeout(self.capabilities.write_timeout):
                    await adapter.keep_alive()
            except (TimeoutError, ChargerError) as exc:
                # The poll loop reports the charger's state; retry soon, quietly.
                log.debug("charger %s: keepalive failed: %s", self.id, exc)
                await clock.sleep(KEEPALIVE_RETRY)
            except Exception:
                log.exception("charger %s: unexpected error in keepalive", self.id)
                await clock.sleep(KEEPALIVE_RETRY)
            honour_cancellation()

    # ------------------------------------------------------------------ writes
    async def write_limit(self, amps: float) -> WriteOutcome:
        """Write a per-phase limit; the outcome carries the value actually written."""
        if self._unreachable:
            self.commanded = None  # unknown: write again once it answers
            return WriteOutcome(False, amps, f"not written, charger unreachable: {self.last_error}")
        deadline = self.capabilities.write_timeout
        try:
            async with asyncio.timeout(deadline):
                written = await self.adapter.set_current_limit(amps)
        except TimeoutError:
            return self._write_failed(amps, f"no answer within {deadline:g} s")
        except ChargerError as exc:
            return self._write_failed(amps, str(exc))
        except Exception as exc:  # adapter bug: report it like a failed write
            log.exception("charger %s: unexpected error while writing", self.id)
            return self._write_failed(amps, f"internal error: {exc!r}")
        if self._write_failures:
            log.info("charger %s accepts limits again", self.id)
        self._write_failures = 0
        self.commanded = written
        self.tracker.write_succeeded(self.id)
        self._limit_written.set()
        return WriteOutcome(True, written, None)

    def _write_failed(self, amps: float, error: str) -> WriteOutcome:
        now = self.clock.now()
        self.commanded = None  # unknown state: write again next time
        until = self.tracker.write_failed(self.id, now)
        self._write_failures += 1
        if self._write_failures == 1:
            log.warning(
                "charger %s refused %.1f A (%s); uncertain for %.0f s",
                self.id,
                amps,
                error,
                until - now,
            )
        return WriteOutcome(False, amps, error)

    async def close(self) -> None:
        """Release the adapter's connection."""
        await self.adapter.close()

