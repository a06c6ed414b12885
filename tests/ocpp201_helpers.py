"""A simulated OCPP 2.0.1 charging station for tests: the `ocpp` library's v201 ChargePoint.

It sends what a station sends (boot, status, transaction events with meter values,
meter values, authorize; numbers with `unitOfMeasure`, as 2.0.1 wants) and answers
what the central system asks (SetChargingProfile, SetVariables, TriggerMessage),
recording every request. `profile_answers` scripts the answer per profile purpose.
Connect it with `connected_charge_point(..., cls=SimulatedStation,
subprotocols=("ocpp2.0.1",))`.
"""

from __future__ import annotations

import time
from typing import Any

from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from gateway.adapters.ocpp.session import on
from tests.ocpp_helpers import Recorder

V201 = ("ocpp2.0.1",)


class SimulatedStation(Recorder, ChargePoint):  # type: ignore[misc]
    """A scriptable OCPP 2.0.1 charging station; see the module docstring."""

    def __init__(self, charge_point_id: str, connection: Any, response_timeout: float) -> None:
        super().__init__(charge_point_id, connection, response_timeout)
        self.profile_answers: dict[str, str] = {}
        self.variables: dict[str, str] = {}
        self._seq_no = 0

    def profiles(self) -> list[dict[str, Any]]:
        """Every charging profile received, with `evse_id` added."""
        return [
            {**payload["charging_profile"], "evse_id": payload["evse_id"]}
            for payload in self.received("SetChargingProfile")
        ]

    def limits(self) -> list[float]:
        """The limits (A) of the bounded profiles (stack level 1), oldest first."""
        return [
            float(p["charging_schedule"][0]["charging_schedule_period"][0]["limit"])
            for p in self.profiles()
            if p["stack_level"] == 1
        ]

    # -- what it answers ------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, **payload: Any) -> call_result.SetChargingProfile:
        self.requests.append(("SetChargingProfile", payload))
        purpose = payload["charging_profile"]["charging_profile_purpose"]
        return call_result.SetChargingProfile(status=self.profile_answers.get(purpose, "Accepted"))

    @on(Action.set_variables)
    def on_set_variables(self, **payload: Any) -> call_result.SetVariables:
        self.requests.append(("SetVariables", payload))
        results = []
        for item in payload["set_variable_data"]:
            name = f"{item['component']['name']}.{item['variable']['name']}"
            self.variables[name] = item["attribute_value"]
            results.append(
                {
                    "attribute_status": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.trigger_message)
    def on_trigger_message(self, **payload: Any) -> call_result.TriggerMessage:
        self.requests.append(("TriggerMessage", payload))
        return call_result.TriggerMessage(status=self._answer("TriggerMessage"))

    # -- what it sends --------------------------------------------------------------

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(
                charging_station={"model": "Sim-201", "vendor_name": "Tests"}, reason="PowerUp"
            )
        )

    async def heartbeat(self) -> Any:
        return await self.call(call.Heartbeat())

    async def status(self, connector_status: str, evse_id: int = 1) -> Any:
        return await self.call(
            call.StatusNotification(
                timestamp=_now(), connector_status=connector_status, evse_id=evse_id,
                connector_id=1,
            )
        )  # fmt: skip

    async def transaction_event(
        self,
        event_type: str,
        transaction_id: str = "tx-1",
        *,
        charging_state: str | None = None,
        evse_id: int | None = 1,
        meter: list[dict[str, Any]] | None = None,
        id_token: str | None = None,
        trigger_reason: str = "MeterValuePeriodic",
    ) -> Any:
        self._seq_no += 1
        info: dict[str, Any] = {"transaction_id": transaction_id}
        if charging_state is not None:
            info["charging_state"] = charging_state
        return await self.call(
            call.TransactionEvent(
                event_type=event_type,
                timestamp=_now(),
                trigger_reason=trigger_reason,
                seq_no=self._seq_no,
                transaction_info=info,
                evse={"id": evse_id, "connector_id": 1} if evse_id is not None else None,
                meter_value=[{"timestamp": _now(), "sampled_value": meter}] if meter else None,
                id_token={"id_token": id_token, "type": "ISO14443"} if id_token else None,
            )
        )

    async def meter_values(self, sampled: list[dict[str, Any]], evse_id: int = 1) -> Any:
        return await self.call(
            call.MeterValues(
                evse_id=evse_id, meter_value=[{"timestamp": _now(), "sampled_value": sampled}]
            )
        )

    async def authorize(self, token: str) -> Any:
        return await self.call(call.Authorize(id_token={"id_token": token, "type": "ISO14443"}))


def sampled(
    *,
    power_kw: float | None = None,
    current: tuple[float, ...] = (),
    voltage: float | None = None,
    energy_kwh: float | None = None,
    offered: float | None = None,
) -> list[dict[str, Any]]:
    """2.0.1 sampled values: numbers, units in `unit_of_measure` (kW and kWh as 10^3)."""
    values: list[dict[str, Any]] = []
    if power_kw is not None:
        values.append(
            {"value": power_kw, "measurand": "Power.Active.Import",
             "unit_of_measure": {"unit": "W", "multiplier": 3}}
        )  # fmt: skip
    for phase, amps in zip(("L1", "L2", "L3"), current, strict=False):
        values.append({"value": amps, "measurand": "Current.Import", "phase": phase})
    if voltage is not None:
        for phase in ("L1-N", "L2-N", "L3-N"):
            values.append({"value": voltage, "measurand": "Voltage", "phase": phase})
    if energy_kwh is not None:
        values.append(
            {"value": energy_kwh, "measurand": "Energy.Active.Import.Register",
             "unit_of_measure": {"unit": "kWh"}}
        )  # fmt: skip
    if offered is not None:
        values.append({"value": offered, "measurand": "Current.Offered"})
    return values


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
