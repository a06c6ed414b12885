"""One OCPP 1.6J connection, seen from the central system.

`V16Session` answers what the charge point sends (Boot, Heartbeat, Status,
MeterValues, transactions, Authorize, DataTransfer) and hands what it learnt to the
host; it carries out the host's operations as 1.6 CALLs (SetChargingProfile,
ChangeConfiguration, TriggerMessage). Where sloppy firmware is common (status, meter
values, transactions) schema validation is off and the handler parses leniently, so
a charge point is never stuck resending.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.datatypes import ChargingProfile, ChargingSchedule, ChargingSchedulePeriod, IdTagInfo
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    ChargingProfileKindType,
    ChargingRateUnitType,
    ConfigurationStatus,
    DataTransferStatus,
    MessageTrigger,
)

from gateway.adapters.ocpp.meter_values import parse_number
from gateway.adapters.ocpp.profiles import LimitProfile, ProfilePurpose, iso
from gateway.adapters.ocpp.session import (
    SessionBase,
    Trigger,
    integer,
    now_iso,
    on,
)

LOG = logging.getLogger(__name__)

_PURPOSE = {
    ProfilePurpose.TX_DEFAULT: "TxDefaultProfile",
    ProfilePurpose.STATION_MAX: "ChargePointMaxProfile",
}
_TRIGGERS = {
    Trigger.STATUS: MessageTrigger.status_notification,
    Trigger.METER_VALUES: MessageTrigger.meter_values,
    Trigger.HEARTBEAT: MessageTrigger.heartbeat,
}


class V16Session(SessionBase, ChargePoint):  # type: ignore[misc]  # the library is untyped
    """The central system's side of one OCPP 1.6J websocket connection."""

    version_name = "1.6J"

    # -- operations for the host --------------------------------------------------------

    async def send_profile(self, profile: LimitProfile) -> str:
        schedule = ChargingSchedule(
            charging_rate_unit=ChargingRateUnitType.amps,
            charging_schedule_period=[
                ChargingSchedulePeriod(
                    start_period=0, limit=profile.limit, number_phases=profile.number_phases
                )
            ],
            start_schedule=iso(profile.start),
            duration=profile.duration,
        )
        request = call.SetChargingProfile(
            connector_id=profile.connector_id,
            cs_charging_profiles=ChargingProfile(
                charging_profile_id=profile.profile_id,
                stack_level=profile.stack_level,
                charging_profile_purpose=_PURPOSE[profile.purpose],
                charging_profile_kind=ChargingProfileKindType.absolute,
                charging_schedule=schedule,
                valid_to=iso(profile.valid_to) if profile.valid_to else None,
            ),
        )
        answer = await self.request(request)
        return str(getattr(answer, "status", None))

    async def configure_sampling(self, interval: int, measurands: tuple[str, ...]) -> None:
        """MeterValueSampleInterval, then MeterValuesSampledData (see `set_measurands`)."""
        await self._change_configuration("MeterValueSampleInterval", str(interval))
        await self.set_measurands(
            measurands,
            lambda value: self._change_configuration("MeterValuesSampledData", value),
            frozenset({None, ConfigurationStatus.not_supported.value}),
        )

    async def _change_configuration(self, key: str, value: str) -> str | None:
        request = call.ChangeConfiguration(key=key, value=value)
        return await self.setting(
            request, f"ChangeConfiguration {key}={value}", lambda a: getattr(a, "status", None)
        )

    async def trigger(self, kind: Trigger, connector_id: int) -> None:
        message = _TRIGGERS.get(kind)
        if message is None:
            return  # nothing to trigger in 1.6 (transactions report by themselves)
        connector = None if kind is Trigger.HEARTBEAT else connector_id
        answer = await self.request(
            call.TriggerMessage(requested_message=message, connector_id=connector)
        )
        self.require_accepted(answer, f"TriggerMessage {kind.value}")

    # -- handlers (never await a CALL in here) ------------------------------------------

    @on(Action.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        LOG.info(
            "charge point %s booted (OCPP 1.6J): %s %s, firmware %s",
            self.charge_point_id,
            charge_point_vendor,
            charge_point_model,
            kwargs.get("firmware_version", "unknown"),
        )
        return call_result.BootNotification(**self.boot_accepted())

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_iso(self.context.clock))

    @on(Action.status_notification, skip_schema_validation=True)
    def on_status_notification(
        self, connector_id: object = None, status: object = None, **kwargs: Any
    ) -> call_result.StatusNotification:
        connector = integer(connector_id)
        if connector is None:
            self.ignored("StatusNotification")
        else:
            self.host.status_received(connector, status, kwargs.get("error_code"))
        return call_result.StatusNotification()

    @on(Action.meter_values, skip_schema_validation=True)
    def on_meter_values(
        self, connector_id: object = None, meter_value: object = None, **kwargs: Any
    ) -> call_result.MeterValues:
        self.report_meter_values(integer(connector_id), meter_value)
        return call_result.MeterValues()

    @on(Action.start_transaction, skip_schema_validation=True)
    def on_start_transaction(
        self,
        connector_id: object = None,
        id_tag: object = None,
        meter_start: object = None,
        **kwargs: Any,
    ) -> call_result.StartTransaction:
        connector = integer(connector_id) or 0
        accepted = self.context.id_tag_accepted(id_tag)
        transaction_id = self.context.transactions.start(self.charge_point_id, connector)
        LOG.info(
            "charge point %s: transaction %d started on connector %d (id tag %s)",
            self.charge_point_id,
            transaction_id,
            connector,
            "accepted" if accepted else "invalid",
        )
        if accepted:
            self.host.transaction_started(connector, parse_number(meter_start))
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=IdTagInfo(status=_tag_status(accepted))
        )

    @on(Action.stop_transaction, skip_schema_validation=True)
    def on_stop_transaction(
        self,
        transaction_id: object = None,
        meter_stop: object = None,
        id_tag: object = None,
        **kwargs: Any,
    ) -> call_result.StopTransaction:
        transaction = integer(transaction_id)
        where = self.context.transactions.stop(transaction) if transaction is not None else None
        if where is None or where[0] != self.charge_point_id:
            LOG.info(
                "charge point %s: StopTransaction for unknown transaction %r",
                self.charge_point_id,
                transaction_id,
            )
        else:
            LOG.info("charge point %s: transaction %d stopped", self.charge_point_id, transaction)
            self.host.transaction_stopped(where[1], parse_number(meter_stop))
        info = (
            IdTagInfo(status=_tag_status(self.context.id_tag_accepted(id_tag))) if id_tag else None
        )
        return call_result.StopTransaction(id_tag_info=info)

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **kwargs: Any) -> call_result.Authorize:
        status = _tag_status(self.context.id_tag_accepted(id_tag))
        return call_result.Authorize(id_tag_info=IdTagInfo(status=status))

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


def _tag_status(accepted: bool) -> str:
    status = AuthorizationStatus.accepted if accepted else AuthorizationStatus.invalid
    return str(status.value)
