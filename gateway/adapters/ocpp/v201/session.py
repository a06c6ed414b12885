"""One OCPP 2.0.1 connection, seen from the central system.

`V201Session` answers BootNotification, Heartbeat, StatusNotification,
TransactionEvent (Started, Updated with meter values, Ended), MeterValues, Authorize
and a few notifications, and hands what it learnt to the host in the terms the 1.6
path uses: the EVSE id stands where 1.6 has the connector id (the charger's
`connector_id` is its EVSE id), statuses are translated (`status`), meter values
parsed by the same parser. It carries out the host's operations as 2.0.1 CALLs:
SetChargingProfile (TxDefaultProfile on the EVSE, ChargingStationMaxProfile on EVSE
0 as the fallback), SetVariables on SampledDataCtrlr, TriggerMessage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.datatypes import (
    ChargingProfileType,
    ChargingSchedulePeriodType,
    ChargingScheduleType,
    ComponentType,
    EVSEType,
    IdTokenInfoType,
    SetVariableDataType,
    VariableType,
)
from ocpp.v201.enums import (
    Action,
    AuthorizationStatusEnumType,
    ChargingProfileKindEnumType,
    ChargingRateUnitEnumType,
    MessageTriggerEnumType,
)

from gateway.adapters.ocpp.profiles import LimitProfile, ProfilePurpose, iso
from gateway.adapters.ocpp.session import (
    SessionBase,
    Trigger,
    integer,
    now_iso,
    on,
)
from gateway.adapters.ocpp.v201.status import EvseStatus

LOG = logging.getLogger(__name__)

_PURPOSE = {
    ProfilePurpose.TX_DEFAULT: "TxDefaultProfile",
    ProfilePurpose.STATION_MAX: "ChargingStationMaxProfile",
}
_TRIGGERS = {
    Trigger.STATUS: MessageTriggerEnumType.status_notification,
    Trigger.METER_VALUES: MessageTriggerEnumType.meter_values,
    Trigger.TRANSACTION: MessageTriggerEnumType.transaction_event,
    Trigger.HEARTBEAT: MessageTriggerEnumType.heartbeat,
}
_SAMPLED_DATA = "SampledDataCtrlr"


class V201Session(SessionBase, ChargePoint):  # type: ignore[misc]  # the library is untyped
    """The central system's side of one OCPP 2.0.1 websocket connection."""

    version_name = "2.0.1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._evse_status = EvseStatus()
        self._transactions: dict[str, int] = {}
        """Transaction id (the station's) -> EVSE id, for events that omit the EVSE."""

    # -- operations for the host --------------------------------------------------------

    async def send_profile(self, profile: LimitProfile) -> str:
        schedule = ChargingScheduleType(
            id=profile.profile_id,
            charging_rate_unit=ChargingRateUnitEnumType.amps,
            charging_schedule_period=[
                ChargingSchedulePeriodType(
                    start_period=0, limit=profile.limit, number_phases=profile.number_phases
                )
            ],
            start_schedule=iso(profile.start),
            duration=profile.duration,
        )
        request = call.SetChargingProfile(
            evse_id=profile.connector_id,
            charging_profile=ChargingProfileType(
                id=profile.profile_id,
                stack_level=profile.stack_level,
                charging_profile_purpose=_PURPOSE[profile.purpose],
                charging_profile_kind=ChargingProfileKindEnumType.absolute,
                charging_schedule=[schedule],
                valid_to=iso(profile.valid_to) if profile.valid_to else None,
            ),
        )
        answer = await self.request(request)
        return str(getattr(answer, "status", None))

    async def configure_sampling(self, interval: int, measurands: tuple[str, ...]) -> None:
        """SampledDataCtrlr.TxUpdatedInterval and TxUpdatedMeasurands (see `set_measurands`)."""
        await self._set_variable("TxUpdatedInterval", str(interval))
        await self.set_measurands(
            measurands,
            lambda value: self._set_variable("TxUpdatedMeasurands", value),
            frozenset({None, "UnknownComponent", "UnknownVariable"}),
        )

    async def _set_variable(self, variable: str, value: str) -> str | None:
        """SetVariables of one SampledDataCtrlr variable; the result's status."""
        data = SetVariableDataType(
            attribute_value=value,
            component=ComponentType(name=_SAMPLED_DATA),
            variable=VariableType(name=variable),
        )
        return await self.setting(
            call.SetVariables(set_variable_data=[data]),
            f"SetVariables {_SAMPLED_DATA}.{variable}={value}",
            _attribute_status,
        )

    async def trigger(self, kind: Trigger, connector_id: int) -> None:
        evse = None
        if kind is Trigger.STATUS:
            evse = EVSEType(id=connector_id, connector_id=1)
        elif kind is not Trigger.HEARTBEAT:
            evse = EVSEType(id=connector_id)
        answer = await self.request(
            call.TriggerMessage(requested_message=_TRIGGERS[kind], evse=evse)
        )
        if kind is not Trigger.TRANSACTION:  # no transaction to report is a normal answer
            self.require_accepted(answer, f"TriggerMessage {kind.value}")

    # -- handlers (never await a CALL in here) ------------------------------------------

    @on(Action.boot_notification)
    def on_boot_notification(
        self, charging_station: dict[str, Any], reason: str = "", **kwargs: Any
    ) -> call_result.BootNotification:
        LOG.info(
            "charging station %s booted (OCPP 2.0.1, %s): %s %s, firmware %s",
            self.charge_point_id,
            reason,
            charging_station.get("vendor_name"),
            charging_station.get("model"),
            charging_station.get("firmware_version", "unknown"),
        )
        return call_result.BootNotification(**self.boot_accepted())

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_iso(self.context.clock))

    @on(Action.status_notification, skip_schema_validation=True)
    def on_status_notification(
        self, evse_id: object = None, connector_status: object = None, **kwargs: Any
    ) -> call_result.StatusNotification:
        evse = integer(evse_id)
        if evse is None:
            self.ignored("StatusNotification")
        else:
            status = self._evse_status.connector_status(evse, connector_status)
            self.host.status_received(evse, status, None)
        return call_result.StatusNotification()

    @on(Action.meter_values, skip_schema_validation=True)
    def on_meter_values(
        self, evse_id: object = None, meter_value: object = None, **kwargs: Any
    ) -> call_result.MeterValues:
        self.report_meter_values(integer(evse_id), meter_value)
        return call_result.MeterValues()

    @on(Action.transaction_event, skip_schema_validation=True)
    def on_transaction_event(
        self,
        event_type: object = None,
        transaction_info: object = None,
        evse: object = None,
        meter_value: object = None,
        id_token: object = None,
        **kwargs: Any,
    ) -> call_result.TransactionEvent:
        info = transaction_info if isinstance(transaction_info, Mapping) else {}
        transaction_id = str(info.get("transaction_id", ""))
        evse_id = integer(evse.get("id")) if isinstance(evse, Mapping) else None
        if evse_id is None:
            evse_id = self._transactions.get(transaction_id)
        reply = call_result.TransactionEvent(id_token_info=self._token_info(id_token))
        if evse_id is None:
            self.ignored("TransactionEvent")
            return reply
        if event_type == "Started":
            self._transactions[transaction_id] = evse_id
            LOG.info(
                "charging station %s: transaction %s started on EVSE %d",
                self.charge_point_id, transaction_id, evse_id,
            )  # fmt: skip
            self.host.transaction_started(evse_id, None)
        status = self._evse_status.charging_state(evse_id, info.get("charging_state"))
        if status is not None:
            self.host.status_received(evse_id, status, None)
        energy = self.report_meter_values(evse_id, meter_value) if meter_value else None
        if event_type == "Ended":
            self._transactions.pop(transaction_id, None)
            self._evse_status.transaction_ended(evse_id)
            LOG.info(
                "charging station %s: transaction %s ended", self.charge_point_id, transaction_id
            )
            self.host.transaction_stopped(evse_id, energy)
        return reply

    @on(Action.authorize, skip_schema_validation=True)
    def on_authorize(self, id_token: object = None, **kwargs: Any) -> call_result.Authorize:
        info = self._token_info(id_token) or IdTokenInfoType(
            status=AuthorizationStatusEnumType.invalid
        )
        return call_result.Authorize(id_token_info=info)

    @on(Action.notify_event, skip_schema_validation=True)
    def on_notify_event(self, **kwargs: Any) -> call_result.NotifyEvent:
        return call_result.NotifyEvent()

    @on(Action.security_event_notification, skip_schema_validation=True)
    def on_security_event_notification(
        self, **kwargs: Any
    ) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification, skip_schema_validation=True)
    def on_firmware_status_notification(
        self, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    # -- helpers ------------------------------------------------------------------------

    def _token_info(self, id_token: object) -> IdTokenInfoType | None:
        """The answer for an id token, or None when none was sent."""
        if not isinstance(id_token, Mapping):
            return None
        accepted = self.context.id_tag_accepted(id_token.get("id_token"))
        statuses = AuthorizationStatusEnumType
        return IdTokenInfoType(status=statuses.accepted if accepted else statuses.invalid)


def _attribute_status(answer: Any) -> object:
    """The status of the first (only) result of a SetVariables answer."""
    results = getattr(answer, "set_variable_result", None) or [{}]
    first = results[0]
    return first.get("attribute_status") if isinstance(first, Mapping) else None
