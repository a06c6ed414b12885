"""What every OCPP connection shares, whatever the version: plumbing around the library.

`SessionBase` is mixed into the version's `ocpp` ChargePoint class (`v16.session`,
`v201.session`). It
- checks each frame before the library sees it (`framing`): a bad frame gets its
  CALLERROR and never a traceback, a connection over its message rate is closed
  (1008, policy violation), an answer nobody waits for is dropped;
- tells the host (the `OcppCharger` adapter) that the charge point is alive and when
  to resynchronise (the first frame of a connection, and after every boot);
- sends CALLs for the host through `request()`, which turns the library's outcomes
  into the gateway's `ChargerError`s;
- runs follow-up CALLs as tasks it owns (`spawn`), because a handler must never
  await a CALL: `start()` is blocked in the handler, so the answer would never be read.

Each version implements `send_profile`, `configure_sampling` and `trigger`, the
only operations the adapter needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, TypeVar, cast

from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from ocpp.routing import on as _ocpp_on
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from gateway.adapters.base import ChargerProtocolError, ChargerUnreachable
from gateway.adapters.ocpp.clock import Clock, wall_datetime
from gateway.adapters.ocpp.framing import FrameKind, RateLimiter, check_frame
from gateway.adapters.ocpp.meter_values import MeterReading, parse_meter_values
from gateway.adapters.ocpp.profiles import LimitProfile
from gateway.adapters.ocpp.transactions import TransactionRegistry

LOG = logging.getLogger(__name__)
WIRE_LOG = logging.getLogger("gateway.adapters.ocpp.wire")
"""Every frame in and out (the library logs them at INFO); silence it separately."""

_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: Any, *, skip_schema_validation: bool = False) -> Callable[[_F], _F]:
    """`ocpp.routing.on` with a type, so handlers stay checked under mypy --strict."""
    return cast(Callable[[_F], _F], _ocpp_on(action, skip_schema_validation=skip_schema_validation))


class _QuietLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The library's logger, minus tracebacks and errors.

    It logs a traceback for every CALLERROR it sends and an error for every answer
    with an unknown id: both are the charge point's doing, so they are warnings here.
    """

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        self.warning(msg, *args, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.warning(msg, *args, **kwargs)


class Trigger(Enum):
    """Messages the adapter asks a charge point to send now (TriggerMessage)."""

    STATUS = "StatusNotification"
    METER_VALUES = "MeterValues"
    TRANSACTION = "TransactionEvent"
    HEARTBEAT = "Heartbeat"


class SessionHost(Protocol):
    """What a session reports to (the charger adapter behind one charge point id)."""

    def pdu_received(self, session: SessionBase) -> None:
        """A good frame arrived: the charge point is alive."""

    def resync_requested(self, session: SessionBase) -> None:
        """A fresh connection spoke for the first time, or the charge point booted."""

    def status_received(self, connector_id: int, status: object, error_code: object) -> None:
        """A connector status (1.6 names), already answered."""

    def meter_values_received(self, connector_id: int, reading: MeterReading) -> None:
        """Parsed meter values, already answered."""

    def transaction_started(self, connector_id: int, meter_start: float | None) -> None:
        """A transaction started; `meter_start` is the energy register (Wh)."""

    def transaction_stopped(self, connector_id: int, meter_stop: float | None) -> None:
        """A transaction of this charge point ended."""


@dataclass(slots=True)
class SessionContext:
    """Settings and shared state that every session of one central system uses."""

    heartbeat_interval: int
    response_timeout: float
    authorize_id_tags: frozenset[str] | None
    clock: Clock
    max_message_rate: float = 50.0
    message_burst: int = 200
    transactions: TransactionRegistry = field(default_factory=TransactionRegistry)
    """1.6 transaction ids, unique across the central system."""

    def id_tag_accepted(self, id_tag: object) -> bool:
        """True unless an allow-list is configured and lacks the tag."""
        return self.authorize_id_tags is None or (
            isinstance(id_tag, str) and id_tag in self.authorize_id_tags
        )


class SessionBase:
    """The shared part of a session; mixed in before the version's `ChargePoint`."""

    _ocpp_version: str
    _call_lock: asyncio.Lock
    version_name: str = ""

    def __init__(
        self,
        charge_point_id: str,
        connection: ServerConnection,
        host: SessionHost,
        context: SessionContext,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]  # the library's ChargePoint
            charge_point_id,
            connection,
            response_timeout=context.response_timeout,
            logger=_QuietLog(WIRE_LOG, {}),
        )
        self.charge_point_id = charge_point_id
        self.connection = connection
        self.host = host
        self.context = context
        self._frames = 0
        self._bad_frames = 0
        self._booted = False
        self._limiter = RateLimiter(
            context.max_message_rate, context.message_burst, context.clock.now()
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._awaited_id: str | None = None
        """The id of the CALL in flight: only the answer to it reaches the library."""
        self.probing = False
        """Set by the host once it runs a liveness probe on this connection."""
        self.limit_state: dict[Any, Any] = {}
        """Per-connection memory of the host's limit writes (e.g. fail-safes installed)."""

    # -- frames in ----------------------------------------------------------------------

    async def route_message(self, raw_msg: Any) -> None:
        """Check a frame, then let the library route it; see the module docstring."""
        if not self._limiter.allow(self.context.clock.now()):
            LOG.warning(
                "charge point %s sends faster than %g frames/s; closing its connection",
                self.charge_point_id,
                self.context.max_message_rate,
            )
            await self.connection.close(CloseCode.POLICY_VIOLATION, "message rate limit exceeded")
            return
        check = check_frame(raw_msg, self._ocpp_version)
        if check.kind is FrameKind.BAD:
            self._bad_frame(str(check.problem))
            assert check.reply is not None
            await self.connection.send(check.reply)
            return
        if check.kind is FrameKind.RESPONSE and (
            not self._call_lock.locked() or check.message_id != self._awaited_id
        ):
            self._bad_frame("an answer to no outstanding request (dropped)")
            return
        self.host.pdu_received(self)
        first = self._frames == 0
        self._frames += 1
        await super().route_message(raw_msg)  # type: ignore[misc]
        # The response to a CALL has been sent by now, so follow-up CALLs may start.
        if first or self._booted:
            self._booted = False
            self.host.resync_requested(self)

    async def _send(self, message: str) -> None:
        """The library sends every frame through here; a CALL's id is remembered.

        The library sends a CALL only while it holds its call lock, so the id is that
        of the one CALL in flight until the lock is released.
        """
        if message.startswith("[2,"):
            self._awaited_id = json.loads(message)[1]
        await super()._send(message)  # type: ignore[misc]

    def _bad_frame(self, problem: str) -> None:
        """Log the first bad frame of a connection, then every 100th, with a count."""
        self._bad_frames += 1
        if self._bad_frames == 1 or self._bad_frames % 100 == 0:
            LOG.warning(
                "charge point %s sent a bad frame (%d on this connection): %s",
                self.charge_point_id,
                self._bad_frames,
                problem,
            )

    # -- what both versions' handlers share -------------------------------------------

    def boot_accepted(self) -> dict[str, Any]:
        """The BootNotification answer's fields; resynchronise once it has gone out."""
        self._booted = True
        return {
            "current_time": now_iso(self.context.clock),
            "interval": self.context.heartbeat_interval,
            "status": "Accepted",
        }

    def report_meter_values(self, connector: int | None, meter_value: object) -> float | None:
        """Parse meter values and report them for a connector (EVSE in 2.0.1).

        Returns the energy register they carry, if any. Problems are logged, never
        raised: the charge point still gets its answer.
        """
        result = parse_meter_values(meter_value)
        for problem in result.problems:
            LOG.warning("charge point %s: meter values: %s (ignored)", self.charge_point_id,
                        problem)  # fmt: skip
        if connector is None:
            self.ignored("meter values")
        elif not result.reading.empty:
            self.host.meter_values_received(connector, result.reading)
        return result.reading.energy

    def ignored(self, what: str) -> None:
        """Log a message that names no connector (or EVSE), so cannot be used."""
        LOG.warning("charge point %s: %s without a connector or EVSE id ignored",
                    self.charge_point_id, what)  # fmt: skip

    # -- tasks --------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a follow-up coroutine as a task the session owns and cancels on close."""
        task = asyncio.create_task(coro, name=f"ocpp {self.charge_point_id}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error(
                "charge point %s: %s failed: %r",
                self.charge_point_id,
                task.get_name(),
                task.exception(),
            )

    def cancel_tasks(self) -> None:
        """Stop every follow-up task (resync, probe, refresh) of this connection."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self, reason: str) -> None:
        """Cancel the follow-up tasks and close the websocket."""
        self.cancel_tasks()
        await self.connection.close(reason=reason)

    # -- CALLs out ----------------------------------------------------------------------

    async def request(self, payload: Any) -> Any:
        """Send a CALL and return its CALLRESULT payload (a `call_result` dataclass).

        Raises ChargerUnreachable when there is no answer within the response timeout
        or the connection is gone, ChargerProtocolError on a CALLERROR or an answer
        that fails the schema.
        """
        action = type(payload).__name__
        try:
            return await self.call(payload, suppress=False)  # type: ignore[attr-defined]
        except TimeoutError as exc:
            raise ChargerUnreachable(
                f"charge point {self.charge_point_id} did not answer {action} "
                f"within {self.context.response_timeout:g} s"
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

    async def setting(
        self, payload: Any, name: str, status_of: Callable[[Any], object]
    ) -> str | None:
        """Change one setting; "Accepted" (also when a reboot is required), the refusal's
        status, or None for a CALLERROR. Refusals are logged at INFO."""
        try:
            answer = await self.request(payload)
        except ChargerProtocolError as exc:
            LOG.info("%s", exc)
            return None
        status = status_of(answer)
        if status in ("Accepted", "RebootRequired"):
            return "Accepted"
        LOG.info("charge point %s: %s answered %s", self.charge_point_id, name, status)
        return None if status is None else str(status)

    async def set_measurands(
        self,
        measurands: tuple[str, ...],
        set_list: Callable[[str], Awaitable[str | None]],
        unsupported: frozenset[str | None],
    ) -> None:
        """Set a measurand list; if refused, grow it one measurand at a time.

        One unsupported measurand makes a charge point reject the whole list, so the
        fallback keeps each measurand that is accepted. A status in `unsupported` (the
        setting itself is unknown, or a CALLERROR) stops at once.
        """
        first = await set_list(",".join(measurands))
        if first == "Accepted" or first in unsupported:
            return
        accepted: list[str] = []
        for measurand in measurands:
            candidate = [*accepted, measurand]
            if await set_list(",".join(candidate)) == "Accepted":
                accepted = candidate
        LOG.warning(
            "charge point %s refused part of the measurand list; sampling %s",
            self.charge_point_id,
            ",".join(accepted) or "its defaults",
        )

    def require_accepted(self, answer: Any, what: str) -> None:
        """Raise ChargerProtocolError unless the answer's status is Accepted."""
        status = getattr(answer, "status", None)
        if status != "Accepted":
            raise ChargerProtocolError(
                f"charge point {self.charge_point_id} answered {what} with {status}"
            )

    # -- what each version implements ---------------------------------------------------

    async def send_profile(self, profile: LimitProfile) -> str:
        """Install a charging profile; the status the charge point answered."""
        raise NotImplementedError

    async def configure_sampling(self, interval: int, measurands: tuple[str, ...]) -> None:
        """Ask for meter values every `interval` s with these measurands."""
        raise NotImplementedError

    async def trigger(self, kind: Trigger, connector_id: int) -> None:
        """TriggerMessage; raises ChargerProtocolError when the charge point refuses."""
        raise NotImplementedError


def now_iso(clock: Clock) -> str:
    """The current UTC time as OCPP wants it (ISO 8601, milliseconds, `Z`)."""
    return wall_datetime(clock).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def integer(value: object) -> int | None:
    """An int from a JSON integer or a numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
