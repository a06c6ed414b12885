"""One OCPP 1.6J connection, seen from the central system: the `ocpp` ChargePoint.

`ChargePointSession` answers what the charge point sends (Boot, Heartbeat, Status,
MeterValues, transactions, Authorize, DataTransfer) and hands what it learnt to a
`SessionHost` (the `OcppCharger` adapter). It sends CALLs for the host through
`request()`, which turns the library's outcomes into the gateway's `ChargerError`s.

Two rules of the `ocpp` library shape this class:
- A handler must never await a CALL: `start()` is blocked in the handler, so the
  answer would never be read. Follow-up CALLs run as tasks that the session keeps
  (`spawn`), started once the response has been sent (`route_message`).
- A request that fails the JSON schema never reaches its handler. Where sloppy
  firmware is common (status, meter values, transactions) validation is off and the
  handler parses leniently instead, so a charge point is never stuck resending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from ocpp.routing import on as _ocpp_on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    DataTransferStatus,
    RegistrationStatus,
)
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.adapters.base import ChargerProtocolError, ChargerUnreachable
from gateway.adapters.ocpp.meter_values import MeterReading, parse_meter_values, parse_number

LOG = logging.getLogger(__name__)
WIRE_LOG = logging.getLogger("gateway.adapters.ocpp.wire")
"""Every frame in and out (the library logs them at INFO); silence it separately."""

_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: Action, *, skip_schema_validation: bool = False) -> Callable[[_F], _F]:
    """`ocpp.routing.on` with a type, so handlers stay checked under mypy --strict."""
    return cast(Callable[[_F], _F], _ocpp_on(action, skip_schema_validation=skip_schema_validation))


class SessionHost(Protocol):
    """What a session reports to (the charger adapter behind one charge point id)."""

    def pdu_received(self, session: ChargePointSession) -> None:
        """Any frame arrived: the charge point is alive."""

    def resync_requested(self, session: ChargePointSession) -> None:
        """A fresh connection spoke for the first time, or the charge point booted."""

    def status_received(self, connector_id: int, status: object, error_code: object) -> None:
        """A StatusNotification, already answered."""

    def meter_values_received(self, connector_id: int, reading: MeterReading) -> None:
        """A parsed MeterValues, already answered."""

    def transaction_started(self, connector_id: int, meter_start: float | None) -> None:
        """A StartTransaction was accepted; `meter_start` is the energy register (Wh)."""

    def transaction_stopped(self, connector_id: int, meter_stop: float | None) -> None:
        """A StopTransaction for a transaction of this charge point."""


class TransactionRegistry:
    """Transaction ids for the whole central system: unique, and transaction -> connector.

    StopTransaction carries no connector id, so the registry remembers where each
    transaction runs. Ids start from the clock so that a restarted gateway does not
    hand out ids that a charge point may still hold in its offline queue; they stay in
    the positive int32 range that charge points store.
    """

    MAX_ID = 2**31 - 1

    def __init__(self, first_id: int | None = None) -> None:
        self._next = first_id if first_id is not None else int(time.time()) % 10**9 + 1
        self._open: dict[int, tuple[str, int]] = {}

    def start(self, charge_point_id: str, connector_id: int) -> int:
        """A new id; an older open transaction on the same connector is forgotten."""
        key = (charge_point_id, connector_id)
        for stale in [tx for tx, where in self._open.items() if where == key]:
            del self._open[stale]
        transaction_id = self._next
        self._next = self._next + 1 if self._next < self.MAX_ID else 1
        self._open[transaction_id] = key
        return transaction_id

    def stop(self, transaction_id: int) -> tuple[str, int] | None:
        """Where the transaction ran, or None when the id is unknown."""
        return self._open.pop(transaction_id, None)


@dataclass(slots=True)
class SessionContext:
    """Settings and shared state that every session of one central system uses."""

    heartbeat_interval: int
    response_timeout: float
    authorize_id_tags: frozenset[str] | None
    transactions: TransactionRegistry = field(default_factory=TransactionRegistry)

    def id_tag_status(self, id_tag: object) -> str:
        """Accepted, or Invalid when an allow-list is configured and lacks the tag."""
        if self.authorize_id_tags is None or (
            isinstance(id_tag, str) and id_tag in self.authorize_id_tags
        ):
            return str(AuthorizationStatus.accepted.value)
        return str(AuthorizationStatus.invalid.value)


class ChargePointSession(ChargePoint):  # type: ignore[misc]  # the library is untyped
    """The central system's side of one websocket connection to one charge point."""

    def __init__(
        self,
        charge_point_id: str,
        connection: ServerConnection,
        host: SessionHost,
        context: SessionContext,
    ) -> None:
        super().__init__(
            charge_point_id, connection, response_timeout=context.response_timeout, logger=WIRE_LOG
        )
        self.charge_point_id = charge_point_id
        self.connection = connection
        self._host = host
        self._context = context
        self._frames = 0
        self._booted = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.probing = False
        """Set by the host once it runs a liveness probe on this connection."""

    # -- plumbing -------------------------------------------------------------------

    async def route_message(self, raw_msg: Any) -> None:
        """Route one frame; any frame proves liveness; the first one triggers a resync."""
        self._host.pdu_received(self)
        first = self._frames == 0
        self._frames += 1
        await super().route_message(raw_msg)
        # The response to a CALL has been sent by now, so follow-up CALLs may start.
        if first or self._booted:
            self._booted = False
            self._host.resync_requested(self)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a follow-up coroutine as a task the session owns and cancels on close."""
        task = asyncio.create_task(coro, name=f"ocpp {self.charge_point_id}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error(
                "charge point %s: %s failed",
                self.charge_point_id,
                task.get_name(),
                exc_info=task.exception(),
            )

    def cancel_tasks(self) -> None:
        """Stop every follow-up task (resync, probe) of this connection."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self, reason: str) -> None:
        """Cancel the follow-up tasks and close the websocket."""
        self.cancel_tasks()
        await self.connection.close(reason=reason)

    async def request(self, payload: Any) -> Any:
        """Send a CALL and return its CALLRESULT payload (an `ocpp.v16.call_result`).

        Raises ChargerUnreachable when there is no answer within the response timeout
        or the connection is gone, ChargerProtocolError on a CALLERROR or an answer
        that fails the schema.
        """
        action = type(payload).__name__
        try:
            return await self.call(payload, suppress=False)
        except TimeoutError as exc:
            raise ChargerUnreachable(
                f"charge point {self.charge_point_id} did not answer {action} "
                f"within {self._context.response_timeout:g} s"
            ) from exc
        except ConnectionClosed as exc:
            raise ChargerUnreachable(
                f"charge point {self.charge_point_id}: connection closed during {action}"
            ) from exc
        except OCPPError as exc:
            raise ChargerProtocolError(
                f"charge point {self.charge_point_id} answered {action} with "
                f"{exc.code}: {exc.description}"
            ) from exc
        except UnknownCallErrorCodeError as exc:
            raise ChargerProtocolError(
                f"charge point {self.charge_point_id} answered {action} with {exc}"
            ) from exc

    # -- handlers (never await a CALL in here) --------------------------------------

    @on(Action.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        LOG.info(
            "charge point %s booted: %s %s, firmware %s",
            self.charge_point_id,
            charge_point_vendor,
            charge_point_model,
            kwargs.get("firmware_version", "unknown"),
        )
        self._booted = True
        return call_result.BootNotification(
            current_time=_now(),
            interval=self._context.heartbeat_interval,
            status=RegistrationStatus.accepted,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification, skip_schema_validation=True)
    def on_status_notification(
        self, connector_id: object = None, status: object = None, **kwargs: Any
    ) -> call_result.StatusNotification:
        connector = _integer(connector_id)
        if connector is None:
            LOG.warning(
                "charge point %s: StatusNotification without connectorId ignored",
                self.charge_point_id,
            )
        else:
            self._host.status_received(connector, status, kwargs.get("error_code"))
        return call_result.StatusNotification()

    @on(Action.meter_values, skip_schema_validation=True)
    def on_meter_values(
        self, connector_id: object = None, meter_value: object = None, **kwargs: Any
    ) -> call_result.MeterValues:
        result = parse_meter_values(meter_value)
        for problem in result.problems:
            LOG.warning("charge point %s: MeterValues: %s (ignored)", self.charge_point_id, problem)
        connector = _integer(connector_id)
        if connector is None:
            LOG.warning(
                "charge point %s: MeterValues without connectorId ignored", self.charge_point_id
            )
        elif not result.reading.empty:
            self._host.meter_values_received(connector, result.reading)
        return call_result.MeterValues()

    @on(Action.start_transaction, skip_schema_validation=True)
    def on_start_transaction(
        self,
        connector_id: object = None,
        id_tag: object = None,
        meter_start: object = None,
        **kwargs: Any,
    ) -> call_result.StartTransaction:
        connector = _integer(connector_id) or 0
        status = self._context.id_tag_status(id_tag)
        transaction_id = self._context.transactions.start(self.charge_point_id, connector)
        LOG.info(
            "charge point %s: transaction %d started on connector %d (id tag %s)",
            self.charge_point_id,
            transaction_id,
            connector,
            status,
        )
        if status == AuthorizationStatus.accepted:
            self._host.transaction_started(connector, parse_number(meter_start))
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=IdTagInfo(status=status)
        )

    @on(Action.stop_transaction, skip_schema_validation=True)
    def on_stop_transaction(
        self,
        transaction_id: object = None,
        meter_stop: object = None,
        id_tag: object = None,
        **kwargs: Any,
    ) -> call_result.StopTransaction:
        transaction = _integer(transaction_id)
        where = self._context.transactions.stop(transaction) if transaction is not None else None
        if where is None or where[0] != self.charge_point_id:
            LOG.info(
                "charge point %s: StopTransaction for unknown transaction %r",
                self.charge_point_id,
                transaction_id,
            )
        else:
            LOG.info("charge point %s: transaction %d stopped", self.charge_point_id, transaction)
            self._host.transaction_stopped(where[1], parse_number(meter_stop))
        info = IdTagInfo(status=self._context.id_tag_status(id_tag)) if id_tag else None
        return call_result.StopTransaction(id_tag_info=info)

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **kwargs: Any) -> call_result.Authorize:
        return call_result.Authorize(
            id_tag_info=IdTagInfo(status=self._context.id_tag_status(id_tag))
        )

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        LOG.info(
            "charge point %s: DataTransfer from vendor %r answered UnknownVendorId",
            self.charge_point_id,
            vendor_id,
        )
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.firmware_status_notification, skip_schema_validation=True)
    def on_firmware_status_notification(
        self, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification, skip_schema_validation=True)
    def on_diagnostics_status_notification(
        self, **kwargs: Any
    ) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()


def _now() -> str:
    """The current UTC time as OCPP wants it (ISO 8601 with `Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _integer(value: object) -> int | None:
    """An int from a JSON integer or a numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
