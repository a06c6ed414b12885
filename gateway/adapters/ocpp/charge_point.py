"""`OcppCharger`: the `Charger` adapter for one charge point connected over OCPP 1.6J.

Unlike a Modbus adapter it does not poll: the charge point pushes StatusNotification
and MeterValues, and `read()` assembles the latest of them into a `ChargerSample`.
Its timestamp is the wall-clock time of the last frame received, because OCPP lets a
charge point skip Heartbeats while it sends anything else; a charge point that falls
silent therefore ages out in the daemon (`power.max_data_age`) by itself. While the
connection is up, a charge point silent for `probe_interval` gets a
TriggerMessage(Heartbeat), whose answer alone proves it alive — many charge points
send nothing at all while idle.

Limits go out as charging profiles (see `profiles`). The last requested limit is
remembered and written again whenever the charge point (re)connects, because a
reconnecting charge point usually skips BootNotification (OCPP-J §5.4) and the
gateway must rebuild the charger's state without it: re-apply the limit first (it is
what keeps a fuse safe), then configure the measurands, then trigger a fresh
StatusNotification and MeterValues.

Status and measurements survive a reconnect (they are the best knowledge there is);
`read()` still raises `ChargerUnreachable` while no connection is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import ConfigurationStatus, MessageTrigger
from websockets.asyncio.server import ServerConnection

from gateway.adapters.base import ChargerError, ChargerProtocolError, ChargerUnreachable
from gateway.adapters.ocpp.meter_values import MeterReading
from gateway.adapters.ocpp.profiles import (
    ProfilePurpose,
    profile_target,
    round_limit,
    set_charging_profile,
)
from gateway.adapters.ocpp.session import ChargePointSession, SessionContext
from gateway.adapters.ocpp.state import ReportedState
from gateway.config import ChargerConfig, OcppConfig
from gateway.core.model import ChargerSample

LOG = logging.getLogger(__name__)

MEASURANDS = (
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "Energy.Active.Import.Register",
)
"""What the gateway asks every charge point to sample (MeterValuesSampledData)."""

_CONFIG_ACCEPTED = {ConfigurationStatus.accepted.value, ConfigurationStatus.reboot_required.value}


class OcppCharger:
    """One configured OCPP charger: the state its charge point reported, and its limit."""

    def __init__(
        self,
        config: ChargerConfig,
        ocpp: OcppConfig,
        nominal_voltage: float = 230.0,
        probe_interval: float | None = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config.charge_point_id is None:
            raise ValueError(f"charger {config.id}: an OCPP charger needs charge_point_id")
        self._config = config
        self._clock = clock  # monotonic: stamps samples (last frame received)
        self._charge_point_id = config.charge_point_id
        self._ocpp = ocpp
        self._nominal_voltage = nominal_voltage
        self._probe_interval = probe_interval
        self._session: ChargePointSession | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._state = ReportedState(config.connector_id, len(config.phases))
        # Limits: the last one asked for (re-applied on reconnect) and the last accepted.
        self._requested_limit: float | None = None
        self._accepted_limit: float | None = None
        self._purposes = [ProfilePurpose.TX_DEFAULT, ProfilePurpose.CHARGE_POINT_MAX]

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
    def closed(self) -> bool:
        """True once `close()` was called: the charge point is refused from then on."""
        return self._closed

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
                "but has sent no StatusNotification or MeterValues yet"
            )
        return self._state.sample(
            self._config.max_current, self._nominal_voltage, self._accepted_limit
        )

    async def set_current_limit(self, amps: float) -> float:
        """Write a per-phase limit as a charging profile; return the limit written.

        The limit is clamped to max_current, rounded down to 0.1 A, and below 6 A
        becomes 0. It is remembered even when the write fails, and written again when
        the charge point reconnects. Raises ChargerUnreachable when the charge point is
        not connected or does not answer within `ocpp.response_timeout`, and
        ChargerProtocolError when it refuses both TxDefaultProfile and
        ChargePointMaxProfile.
        """
        limit = round_limit(amps, self._config.max_current)
        self._requested_limit = limit
        session = self._session
        if session is None:
            raise ChargerUnreachable(
                f"charger {self.charger_id}: charge point {self._charge_point_id} is not "
                f"connected; the limit of {limit:g} A will be written when it connects"
            )
        timeout = self._ocpp.response_timeout
        try:
            async with asyncio.timeout(timeout), self._write_lock:
                await self._write_limit(session, limit)
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

    def attach(self, connection: ServerConnection, context: SessionContext) -> ChargePointSession:
        """A new connection for this charge point; it replaces (and closes) the old one."""
        old = self._session
        session = ChargePointSession(self._charge_point_id, connection, self, context)
        self._session = session
        if old is not None:
            LOG.info(
                "charge point %s reconnected; closing its old connection", self._charge_point_id
            )
            self._in_background(old.close("replaced by a new connection"))
        else:
            LOG.info("charge point %s connected", self._charge_point_id)
        return session

    def detach(self, session: ChargePointSession) -> None:
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

    def pdu_received(self, session: ChargePointSession) -> None:
        """Any frame from the current connection proves the charge point alive."""
        if session is self._session:
            self._state.frame_received(self._clock())

    def resync_requested(self, session: ChargePointSession) -> None:
        """Rebuild the charger's state on this connection (see the module docstring)."""
        if session is not self._session:
            return
        session.spawn(self._resync(session), "resync")
        if self._probe_interval and not session.probing:
            session.probing = True
            session.spawn(self._probe(session, self._probe_interval), "liveness probe")

    def status_received(self, connector_id: int, status: object, error_code: object) -> None:
        """A StatusNotification: logged when odd, folded into the reported state."""
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
        """A parsed MeterValues, folded into the reported state."""
        self._state.meter_values_received(connector_id, reading)

    def transaction_started(self, connector_id: int, meter_start: float | None) -> None:
        """A transaction started; its meterStart is an energy reading."""
        self._state.transaction_started(connector_id, meter_start)

    def transaction_stopped(self, connector_id: int, meter_stop: float | None) -> None:
        """A transaction ended: no more energy flows."""
        self._state.transaction_stopped(connector_id, meter_stop)

    # -- CALLs to the charge point ------------------------------------------------------

    def _number_phases(self) -> int:
        """Phases announced in a profile: the configured EV phases, else the wiring.

        Phases detected from measured currents are deliberately not used: a charge point
        that can switch phases may take `numberPhases = 1` as an order, after which the
        EV would only ever be seen on one phase.
        """
        wired = len(self._config.phases)
        ev = self._config.ev_phases
        return min(ev, wired) if ev is not None else wired

    async def _write_limit(self, session: ChargePointSession, limit: float) -> None:
        """Try each profile purpose until one is accepted; the last good one goes first."""
        refusals: list[str] = []
        for purpose in list(self._purposes):
            target = profile_target(purpose, self._config.connector_id)
            request = set_charging_profile(target, limit, self._number_phases())
            try:
                answer = await session.request(request)
            except ChargerProtocolError as exc:
                refusals.append(f"{purpose} on connector {target.connector_id}: {exc}")
                continue
            status = getattr(answer, "status", None)
            if status == "Accepted":
                self._accepted_limit = limit
                if self._purposes[0] is not purpose:
                    LOG.info(
                        "charge point %s: limits go out as %s from now on",
                        self._charge_point_id,
                        purpose,
                    )
                    self._purposes.remove(purpose)
                    self._purposes.insert(0, purpose)
                return
            refusals.append(f"{purpose} on connector {target.connector_id}: {status}")
        raise ChargerProtocolError(
            f"charger {self.charger_id}: charge point {self._charge_point_id} refused a "
            f"limit of {limit:g} A: " + "; ".join(refusals)
        )

    async def _resync(self, session: ChargePointSession) -> None:
        """Re-apply the limit, configure the measurands, trigger status and meter values."""
        LOG.info("charge point %s: resynchronising", self._charge_point_id)
        try:
            limit = self._requested_limit
            if limit is not None:
                async with self._write_lock:
                    try:
                        await self._write_limit(session, limit)
                    except ChargerProtocolError as exc:
                        LOG.warning("%s", exc)
            await self._configure_measurands(session)
            connector = self._config.connector_id
            for trigger in (MessageTrigger.status_notification, MessageTrigger.meter_values):
                await self._request_or_log(
                    session, call.TriggerMessage(requested_message=trigger, connector_id=connector)
                )
        except ChargerUnreachable as exc:
            LOG.warning(
                "charge point %s: resynchronisation stopped: %s", self._charge_point_id, exc
            )

    async def _configure_measurands(self, session: ChargePointSession) -> None:
        """Sample interval and measurands; one by one if the full list is refused.

        One unsupported measurand makes a charge point reject the whole list (§3.16.4),
        so the fallback grows the list one measurand at a time and keeps each that is
        accepted; a rejected change leaves the last accepted list in force.
        """
        interval = str(self._ocpp.meter_value_interval)
        await self._change_configuration(session, "MeterValueSampleInterval", interval)
        key = "MeterValuesSampledData"
        status = await self._change_configuration(session, key, ",".join(MEASURANDS))
        if status in _CONFIG_ACCEPTED or status == ConfigurationStatus.not_supported:
            return
        accepted: list[str] = []
        for measurand in MEASURANDS:
            candidate = [*accepted, measurand]
            status = await self._change_configuration(session, key, ",".join(candidate))
            if status in _CONFIG_ACCEPTED:
                accepted = candidate
        LOG.warning(
            "charge point %s refused the full measurand list; sampling %s",
            self._charge_point_id,
            ",".join(accepted) or "its defaults",
        )

    async def _change_configuration(
        self, session: ChargePointSession, key: str, value: str
    ) -> str | None:
        answer = await self._request_or_log(session, call.ChangeConfiguration(key=key, value=value))
        status = getattr(answer, "status", None)
        if status not in _CONFIG_ACCEPTED:
            LOG.info(
                "charge point %s: ChangeConfiguration %s=%s answered %s",
                self._charge_point_id,
                key,
                value,
                status,
            )
        return None if status is None else str(status)

    async def _request_or_log(self, session: ChargePointSession, payload: Any) -> Any:
        """A CALL whose refusal is only logged; ChargerUnreachable still propagates."""
        try:
            return await session.request(payload)
        except ChargerProtocolError as exc:
            LOG.info("%s", exc)
            return None

    async def _probe(self, session: ChargePointSession, interval: float) -> None:
        """Ask a silent charge point for a Heartbeat, so its answer refreshes liveness."""
        while True:
            silent_for = self._clock() - (self._state.last_seen or -math.inf)
            if silent_for < interval:
                await asyncio.sleep(interval - silent_for)
                continue
            with contextlib.suppress(ChargerError):
                await session.request(
                    call.TriggerMessage(requested_message=MessageTrigger.heartbeat)
                )
            await asyncio.sleep(interval)
