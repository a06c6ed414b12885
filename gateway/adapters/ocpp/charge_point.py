"""`OcppCharger`: the `Charger` adapter for one charge point, OCPP 1.6J or 2.0.1.

Unlike a Modbus adapter it does not poll: the charge point pushes its status and
meter values, and `read()` assembles the latest of them into a `ChargerSample`. Its
timestamp is the wall-clock time of the last frame received, because OCPP lets a
charge point skip Heartbeats while it sends anything else; a charge point that falls
silent therefore ages out in the daemon by itself. While the connection is up, a
charge point silent for `probe_interval` (monotonic) gets a TriggerMessage(Heartbeat),
whose answer alone proves it alive — many charge points send nothing while idle.

On every (re)connect, boot or not (a reconnecting charge point usually skips
BootNotification), the adapter resynchronises in independent steps, each retried
with backoff (`resync`): the fail-safe profile, the limit (first, as they keep a fuse
safe), the sampling configuration, then triggers for status (and in 2.0.1 the
transaction) and meter values. The limit is refreshed every third of its validity
(`limits`, `profiles`). Where meter values include `Current.Offered`, the limit is
checked against it; a mismatch is logged once and shown by `error`.

Status and measurements survive a reconnect (they are the best knowledge there is);
`read()` still raises `ChargerUnreachable` while no connection is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gateway.adapters.base import ChargerError, ChargerProtocolError, ChargerUnreachable
from gateway.adapters.ocpp.clock import SYSTEM_CLOCK, Clock
from gateway.adapters.ocpp.limits import LimitWriter, offered_mismatch
from gateway.adapters.ocpp.meter_values import MeterReading
from gateway.adapters.ocpp.resync import retry_step
from gateway.adapters.ocpp.session import SessionBase, Trigger
from gateway.adapters.ocpp.state import ReportedState
from gateway.config import ChargerConfig, OcppConfig
from gateway.core.model import ChargerSample

LOG = logging.getLogger(__name__)

MEASURANDS = (
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "Energy.Active.Import.Register",
    "Current.Offered",
)
"""What the gateway asks every charge point to sample."""

REFRESH_FRACTION = 3
"""The limit is rewritten every `limit_validity / REFRESH_FRACTION` seconds."""


class OcppCharger:
    """One configured OCPP charger: the state its charge point reported, and its limit."""

    def __init__(
        self,
        config: ChargerConfig,
        ocpp: OcppConfig,
        nominal_voltage: float = 230.0,
        probe_interval: float | None = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if config.charge_point_id is None:
            raise ValueError(f"charger {config.id}: an OCPP charger needs charge_point_id")
        self._config = config
        self._charge_point_id = config.charge_point_id
        self._ocpp = ocpp
        self._nominal_voltage = nominal_voltage
        self._probe_interval = probe_interval
        self._clock = clock
        self._session: SessionBase | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self._state = ReportedState(config.connector_id, len(config.phases))
        self._last_seen_monotonic = clock.now()
        self._limits = LimitWriter(
            f"charger {config.id}: charge point {config.charge_point_id}",
            config.connector_id,
            self._number_phases(),
            config.max_current,
            config.safe_current or 0.0,
            ocpp.limit_validity,
            clock,
        )
        self._mismatch: str | None = None

    # -- the Charger interface ----------------------------------------------------------

    @property
    def charger_id(self) -> str:
        """The charger's id from the config."""
        return self._config.id

    @property
    def charge_point_id(self) -> str:
        """The OCPP identity the charge point connects with."""
        return self._charge_point_id

    @property
    def connected(self) -> bool:
        """True while the charge point has a websocket connection up."""
        return self._session is not None

    @property
    def ocpp_version(self) -> str | None:
        """The OCPP version spoken ("1.6J" or "2.0.1") while connected, else None."""
        return self._session.version_name if self._session is not None else None

    @property
    def closed(self) -> bool:
        """True once `close()` was called: the charge point is refused from then on."""
        return self._closed

    @property
    def error(self) -> str | None:
        """A standing problem that reads do not show, for the charger state's `error`.

        Today: the charge point offers more current than the limit it accepted.
        """
        return self._mismatch

    async def read(self) -> ChargerSample:
        """The latest state the charge point reported; raises ChargerUnreachable without one."""
        if self._session is None:
            raise ChargerUnreachable(
                f"charger {self.charger_id}: charge point {self._charge_point_id} is not "
                "connected to the OCPP central system"
            )
        if self._state.last_seen is None or not self._state.has_data:
            raise ChargerUnreachable(
                f"charger {self.charger_id}: charge point {self._charge_point_id} is connected "
                "but has sent no status or meter values yet"
            )
        return self._state.sample(
            self._config.max_current, self._nominal_voltage, self._limits.accepted
        )

    async def set_current_limit(self, amps: float) -> float:
        """Write a per-phase limit as charging profiles; return the limit written.

        The limit is clamped to max_current, rounded down to 0.1 A, and below 6 A
        becomes 0. It is remembered even when the write fails, and written again when
        the charge point reconnects. Raises ChargerUnreachable when the charge point is
        not connected or does not answer within `ocpp.response_timeout`, and
        ChargerProtocolError when it refuses every profile purpose.
        """
        limit = self._limits.request(amps)
        session = self._session
        if session is None:
            raise ChargerUnreachable(
                f"charger {self.charger_id}: charge point {self._charge_point_id} is not "
                f"connected; the limit of {limit:g} A will be written when it connects"
            )
        timeout = self._ocpp.response_timeout
        try:
            async with asyncio.timeout(timeout):
                await self._limits.write(session, limit)
        except TimeoutError as exc:
            raise ChargerUnreachable(
                f"charger {self.charger_id}: charge point {self._charge_point_id} did not "
                f"accept a limit within {timeout:g} s"
            ) from exc
        return limit

    async def close(self) -> None:
        """Drop the connection and refuse the charge point from now on. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        for task in list(self._background):
            task.cancel()
        if session is not None:
            await session.close("central system closing")

    # -- connection lifecycle (called by the central system) ----------------------------

    def attach(self, session: SessionBase) -> None:
        """A new connection for this charge point; it replaces (and closes) the old one."""
        old, self._session = self._session, session
        if old is not None:
            LOG.info(
                "charge point %s reconnected (OCPP %s); closing its old connection",
                self._charge_point_id,
                session.version_name,
            )
            self._in_background(old.close("replaced by a new connection"))
        else:
            LOG.info("charge point %s connected (OCPP %s)", self._charge_point_id,
                     session.version_name)  # fmt: skip

    def detach(self, session: SessionBase) -> None:
        """The connection of `session` ended; forget it unless it was already replaced."""
        session.cancel_tasks()
        if self._session is session:
            self._session = None
            LOG.warning("charge point %s disconnected", self._charge_point_id)

    def _in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- what the session reports (SessionHost) ----------------------------------------

    def pdu_received(self, session: SessionBase) -> None:
        """Any good frame from the current connection proves the charge point alive."""
        if session is self._session:
            self._last_seen_monotonic = self._clock.now()
            self._state.frame_received(self._last_seen_monotonic)

    def resync_requested(self, session: SessionBase) -> None:
        """Rebuild the charger's state on this connection (see the module docstring)."""
        if session is not self._session:
            return
        LOG.info("charge point %s: resynchronising", self._charge_point_id)
        session.spawn(self._resync(session), "resync")
        if not session.probing:
            session.probing = True
            session.spawn(self._refresh(session), "limit refresh")
            if self._probe_interval:
                session.spawn(self._probe(session, self._probe_interval), "liveness probe")

    async def _resync(self, session: SessionBase) -> None:
        """The fail-safe and limit first; then the other steps, each on its own.

        The first attempt at the limit is awaited so that its CALLs go out before any
        other; whatever its outcome, the other steps start, and a limit that was not
        answered keeps being retried alongside them.
        """
        label = f"charge point {self._charge_point_id}:"
        connector = self._config.connector_id

        def limit() -> Awaitable[None]:
            return self._write_requested(session, resync=True)

        try:
            await limit()
        except ChargerUnreachable as exc:
            LOG.warning("%s fail-safe and limit: %s; retrying", label, exc)
            session.spawn(
                retry_step(f"{label} fail-safe and limit", limit, self._clock, failed_once=True),
                "limit retry",
            )
        except ChargerProtocolError as exc:
            LOG.warning("%s fail-safe and limit refused: %s", label, exc)
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("sampling configuration", lambda: session.configure_sampling(
                self._ocpp.meter_value_interval, MEASURANDS)),
            ("status trigger", lambda: session.trigger(Trigger.STATUS, connector)),
            ("transaction trigger", lambda: session.trigger(Trigger.TRANSACTION, connector)),
            ("meter values trigger", lambda: session.trigger(Trigger.METER_VALUES, connector)),
        ]  # fmt: skip
        for name, step in steps:
            session.spawn(retry_step(f"{label} {name}", step, self._clock), name)

    def status_received(self, connector_id: int, status: object, error_code: object) -> None:
        """A connector status: logged when odd, folded into the reported state."""
        if error_code not in (None, "NoError"):
            LOG.warning(
                "charge point %s connector %d reports %s (status %s)",
                self._charge_point_id,
                connector_id,
                error_code,
                status,
            )
        if not self._state.status_received(connector_id, status):
            LOG.warning(
                "charge point %s: unknown connector status %r", self._charge_point_id, status
            )

    def meter_values_received(self, connector_id: int, reading: MeterReading) -> None:
        """Parsed meter values, folded into the reported state; Current.Offered checked."""
        self._state.meter_values_received(connector_id, reading)
        if connector_id == self._config.connector_id and reading.current_offered is not None:
            self._check_offered(reading.current_offered)

    def transaction_started(self, connector_id: int, meter_start: float | None) -> None:
        """A transaction started; its meterStart is an energy reading."""
        self._state.transaction_started(connector_id, meter_start)

    def transaction_stopped(self, connector_id: int, meter_stop: float | None) -> None:
        """A transaction ended: no more energy flows."""
        self._state.transaction_stopped(connector_id, meter_stop)

    # -- limits -------------------------------------------------------------------------

    def _number_phases(self) -> int:
        """Phases announced in a profile: the configured EV phases, else the wiring.

        Phases detected from measured currents are deliberately not used: a charge point
        that can switch phases may take `numberPhases = 1` as an order, after which the
        EV would only ever be seen on one phase.
        """
        wired = len(self._config.phases)
        ev = self._config.ev_phases
        return min(ev, wired) if ev is not None else wired

    async def _write_requested(self, session: SessionBase, resync: bool = False) -> None:
        """Write the last requested limit, if any (resync and refresh).

        On a resync without a limit yet, the fail-safe alone is installed. One step for
        both keeps them first in the charge point's queue, ahead of the other steps.
        """
        limit = self._limits.requested
        if session is not self._session:
            return
        if limit is not None:
            await self._limits.write(session, limit)
        elif resync:
            await self._limits.install_failsafe(session)

    async def _refresh(self, session: SessionBase) -> None:
        """Rewrite the limit every third of its validity, so it never lapses while we run."""
        period = self._ocpp.limit_validity / REFRESH_FRACTION
        while True:
            since = self._limits.accepted_at
            now = self._clock.now()
            if since is None or now - since < period:
                await self._clock.sleep(period - (now - since) if since is not None else period)
                continue
            await retry_step(
                f"charge point {self._charge_point_id}: limit refresh",
                lambda: self._write_requested(session),
                self._clock,
            )
            if self._limits.accepted_at == since:  # refused: try again after a period
                await self._clock.sleep(period)

    def _check_offered(self, offered: float) -> None:
        grace = 2.0 * self._ocpp.meter_value_interval
        mismatch = offered_mismatch(
            offered, self._limits.accepted, self._limits.accepted_at,
            self._clock.now(), grace,
        )  # fmt: skip
        if mismatch is not None and self._mismatch is None:
            LOG.warning("charger %s: %s", self.charger_id, mismatch)
        elif mismatch is None and self._mismatch is not None:
            LOG.info("charger %s: the offered current follows the limit again", self.charger_id)
        self._mismatch = mismatch

    # -- liveness -----------------------------------------------------------------------

    async def _probe(self, session: SessionBase, interval: float) -> None:
        """Ask a silent charge point for a Heartbeat, so its answer refreshes liveness."""
        while True:
            silent_for = self._clock.now() - self._last_seen_monotonic
            if silent_for < interval:
                await self._clock.sleep(interval - silent_for)
                continue
            with contextlib.suppress(ChargerError):
                await session.trigger(Trigger.HEARTBEAT, 0)
            await self._clock.sleep(interval)
