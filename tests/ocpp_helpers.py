"""A simulated OCPP 1.6J charge point for tests: a real `ocpp` ChargePoint on a real socket.

`SimulatedChargePoint` is the client side of the protocol. It sends what a charge
point sends (boot, status, meter values in W or kW, transactions) and answers what a
central system asks (SetChargingProfile, ChangeConfiguration, TriggerMessage,
ClearChargingProfile), recording every request so tests can assert on it. Quirks are
switches: per-purpose answers to SetChargingProfile (Accepted, Rejected,
NotSupported, or "CALLERROR"), answers to other actions (`answers`), measurands it
refuses, actions it never answers (`ignored`), and `silent` (it stops answering
anything, with the socket still open). `FakeClock` is the gateway's clock in tests
that check its timing without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets
from ocpp.exceptions import NotSupportedError
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.headers import build_authorization_basic

from gateway.adapters.ocpp.session import on
from gateway.config import ChargerConfig, OcppConfig

ALL_ACCEPTED = {"TxDefaultProfile": "Accepted", "ChargePointMaxProfile": "Accepted"}


def ocpp_config(**overrides: Any) -> OcppConfig:
    """An OcppConfig for tests: loopback, a free port, short timeouts."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "response_timeout": 0.5,
        "meter_value_interval": 5,
        "allow_unauthenticated": True,
    }
    values.update(overrides)
    return OcppConfig(**values)


def ocpp_charger(
    charger_id: str = "bay-1", charge_point_id: str = "CP-1", **overrides: Any
) -> ChargerConfig:
    """A ChargerConfig for an OCPP charger (16 A, three phases, connector 1)."""
    values: dict[str, Any] = {
        "id": charger_id,
        "adapter": "ocpp",
        "charge_point_id": charge_point_id,
        "max_current": 16.0,
        "phases": [1, 2, 3],
    }
    values.update(overrides)
    return ChargerConfig(**values)


class FakeClock:
    """The gateway's clock under test control: `advance()` moves time and wakes sleepers
    at once (synchronously; the OCPP tests then wait for the frames that follow)."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._wall_offset = time.time() - self._now
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.slept: list[float] = []
        """Every sleep asked for, in order."""

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks wait on this clock."""
        return sum(1 for _, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        self._now += seconds
        for deadline, future in list(self._sleepers):
            if deadline <= self._now and not future.done():
                future.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]


async def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


class Recorder:
    """What both simulators share: a record of requests and scripted quirks.

    Mixed in before the library's ChargePoint class of either OCPP version.
    """

    def __init__(self, charge_point_id: str, connection: Any, response_timeout: float) -> None:
        super().__init__(charge_point_id, connection, response_timeout=response_timeout)  # type: ignore[call-arg]
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, str] = {}
        self.ignored: set[str] = set()
        self.silent = False
        self.connection = connection

    def received(self, action: str) -> list[dict[str, Any]]:
        """The payloads (snake_case) of every request of one action, oldest first."""
        return [payload for name, payload in self.requests if name == action]

    def triggers(self) -> list[str]:
        """The requested_message of every TriggerMessage."""
        return [p["requested_message"] for p in self.received("TriggerMessage")]

    async def route_message(self, raw_msg: Any) -> None:
        if self.silent:
            return  # a hung charge point: the socket is open, nothing is answered
        message = json.loads(raw_msg)
        if message[0] == 2 and message[2] in self.ignored:
            self.requests.append((f"{message[2]} (ignored)", {}))
            return  # this action is never answered
        await super().route_message(raw_msg)  # type: ignore[misc]

    def _answer(self, action: str, default: str = "Accepted") -> str:
        answer = self.answers.get(action, default)
        if answer == "CALLERROR":
            raise NotSupportedError(description=f"{action} is not supported")
        return answer


class SimulatedChargePoint(Recorder, ChargePoint):  # type: ignore[misc]
    """A scriptable OCPP 1.6J charge point; see the module docstring."""

    def __init__(self, charge_point_id: str, connection: Any, response_timeout: float) -> None:
        super().__init__(charge_point_id, connection, response_timeout)
        self.profile_answers: dict[str, str] = dict(ALL_ACCEPTED)
        self.rejected_measurands: set[str] = set()
        self.configuration: dict[str, str] = {}

    def profiles(self) -> list[dict[str, Any]]:
        """The charging profiles of every SetChargingProfile, with `connector_id` added."""
        return [
            {**payload["cs_charging_profiles"], "connector_id": payload["connector_id"]}
            for payload in self.received("SetChargingProfile")
        ]

    # -- what it answers ------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, **payload: Any) -> call_result.SetChargingProfile:
        self.requests.append(("SetChargingProfile", payload))
        profile = payload["cs_charging_profiles"]
        purpose = profile["charging_profile_purpose"]
        answer = self.profile_answers.get(purpose, "Accepted")
        if profile["stack_level"] > 0:
            answer = self.answers.get("StackLevel1", answer)
        if answer == "CALLERROR":
            raise NotSupportedError(description="smart charging is not supported")
        return call_result.SetChargingProfile(status=answer)

    @on(Action.change_configuration)
    def on_change_configuration(self, **payload: Any) -> call_result.ChangeConfiguration:
        self.requests.append(("ChangeConfiguration", payload))
        key, value = payload["key"], payload["value"]
        if key == "MeterValuesSampledData" and self.rejected_measurands & set(value.split(",")):
            return call_result.ChangeConfiguration(status="Rejected")
        answer = self._answer("ChangeConfiguration")
        if answer != "Accepted":
            return call_result.ChangeConfiguration(status=answer)
        self.configuration[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, **payload: Any) -> call_result.TriggerMessage:
        self.requests.append(("TriggerMessage", payload))
        return call_result.TriggerMessage(status=self._answer("TriggerMessage"))

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **payload: Any) -> call_result.ClearChargingProfile:
        self.requests.append(("ClearChargingProfile", payload))
        return call_result.ClearChargingProfile(status="Accepted")

    # -- what it sends --------------------------------------------------------------

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(charge_point_model="Sim-1", charge_point_vendor="Tests")
        )

    async def heartbeat(self) -> Any:
        return await self.call(call.Heartbeat())

    async def status(self, status: str, connector_id: int = 1, error_code: str = "NoError") -> Any:
        return await self.call(
            call.StatusNotification(connector_id=connector_id, error_code=error_code, status=status)
        )

    async def meter_values(
        self,
        connector_id: int = 1,
        *,
        power: float | None = None,
        power_unit: str = "W",
        current: tuple[float, ...] = (),
        voltage: tuple[float, ...] = (),
        voltage_phases: tuple[str, ...] = ("L1-N", "L2-N", "L3-N"),
        energy: float | None = None,
        energy_unit: str = "Wh",
        transaction_id: int | None = None,
        offered: float | None = None,
    ) -> Any:
        """One MeterValues with the given quantities, values as strings like real CPs."""
        sampled: list[dict[str, Any]] = []
        if power is not None:
            sampled.append(_sv(power, "Power.Active.Import", power_unit))
        for phase, amps in zip(("L1", "L2", "L3"), current, strict=False):
            sampled.append(_sv(amps, "Current.Import", "A", phase))
        for phase, volts in zip(voltage_phases, voltage, strict=False):
            sampled.append(_sv(volts, "Voltage", "V", phase))
        if energy is not None:
            sampled.append(_sv(energy, "Energy.Active.Import.Register", energy_unit))
        if offered is not None:
            sampled.append(_sv(offered, "Current.Offered", "A"))
        return await self.raw_meter_values(sampled, connector_id, transaction_id)

    async def raw_meter_values(
        self,
        sampled_values: list[dict[str, Any]],
        connector_id: int = 1,
        transaction_id: int | None = None,
    ) -> Any:
        """MeterValues with sampled values as given (camelCase keys), unvalidated."""
        return await self.call(
            call.MeterValues(
                connector_id=connector_id,
                meter_value=[{"timestamp": _now(), "sampledValue": sampled_values}],
                transaction_id=transaction_id,
            ),
            skip_schema_validation=True,
        )

    async def start_transaction(
        self, connector_id: int = 1, id_tag: str = "TAG-1", meter_start: int = 0
    ) -> Any:
        return await self.call(
            call.StartTransaction(
                connector_id=connector_id, id_tag=id_tag, meter_start=meter_start, timestamp=_now()
            )
        )

    async def stop_transaction(self, transaction_id: int, meter_stop: int) -> Any:
        return await self.call(
            call.StopTransaction(
                meter_stop=meter_stop, timestamp=_now(), transaction_id=transaction_id
            )
        )


@contextlib.asynccontextmanager
async def connected_charge_point(
    port: int,
    charge_point_id: str = "CP-1",
    *,
    password: str | None = None,
    user: str | None = None,
    subprotocols: tuple[str, ...] = ("ocpp1.6",),
    response_timeout: float = 2.0,
    scheme: str = "ws",
    ssl: Any = None,
    cls: Any = None,
    path: str | None = None,
) -> AsyncIterator[Any]:
    """Connect a simulated charge point to ws://127.0.0.1:port/<id> and run it.

    `cls` is the simulator class (default `SimulatedChargePoint`); `path` replaces
    `/<id>` in the URL as given.
    """
    headers = None
    if password is not None:
        headers = {"Authorization": build_authorization_basic(user or charge_point_id, password)}
    async with websockets.connect(
        f"{scheme}://127.0.0.1:{port}{path or '/' + charge_point_id}",
        subprotocols=[websockets.Subprotocol(s) for s in subprotocols],
        additional_headers=headers,
        ssl=ssl,
        open_timeout=5,
    ) as connection:
        charge_point = (cls or SimulatedChargePoint)(charge_point_id, connection, response_timeout)
        runner = asyncio.create_task(charge_point.start())
        try:
            yield charge_point
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await runner


def _sv(value: float, measurand: str, unit: str, phase: str | None = None) -> dict[str, Any]:
    sampled = {"value": str(value), "measurand": measurand, "unit": unit}
    if phase is not None:
        sampled["phase"] = phase
    return sampled


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
