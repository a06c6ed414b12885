"""OCPP 2.0.1 in the central system, against the `ocpp` library's v201 ChargePoint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import websockets

from gateway.adapters.ocpp import OcppCentralSystem
from gateway.adapters.ocpp.v201.status import EvseStatus
from gateway.core.model import CableState, ComponentState, Phases
from tests.ocpp201_helpers import V201, SimulatedStation, sampled
from tests.ocpp_helpers import (
    FakeClock,
    connected_charge_point,
    ocpp_charger,
    ocpp_config,
    wait_until,
)

PASSWORD = "sixteen-chars-or-more"


async def test_status_transactions_and_meter_values_make_samples() -> None:
    async with (
        OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central,
        connected_charge_point(central.port, cls=SimulatedStation, subprotocols=V201) as cs,
    ):
        charger = central.charger("bay-1")
        boot = await cs.boot()
        assert (boot.status, boot.interval) == ("Accepted", 60)
        assert charger.ocpp_version == "2.0.1"
        await cs.status("Occupied")
        sample = await charger.read()
        assert (sample.cable_state, sample.component_state) == (
            CableState.EV_PLUGGED,
            ComponentState.READY,
        )
        await cs.transaction_event(
            "Started", charging_state="Charging", trigger_reason="CablePluggedIn",
            meter=sampled(power_kw=7.4, current=(10.7, 10.7, 10.7), voltage=230.0,
                          energy_kwh=12.5),
        )  # fmt: skip
        sample = await charger.read()
        assert sample.component_state is ComponentState.CHARGING
        assert sample.active_power == pytest.approx(7400.0)
        assert sample.current == Phases(10.7, 10.7, 10.7)
        assert sample.voltage == Phases(230.0, 230.0, 230.0)
        assert sample.energy == pytest.approx(12500.0)
        # A StatusNotification in the middle of the session keeps it charging.
        await cs.status("Occupied")
        assert (await charger.read()).component_state is ComponentState.CHARGING
        await cs.transaction_event("Updated", charging_state="SuspendedEVSE")
        assert (await charger.read()).component_state is ComponentState.READY
        await cs.meter_values(sampled(power_kw=0.0, energy_kwh=13.0))
        await cs.transaction_event(
            "Ended", trigger_reason="EVDeparted", evse_id=None,
            meter=sampled(energy_kwh=13.2),
        )  # fmt: skip
        sample = await charger.read()
        assert (sample.active_power, sample.current) == (0.0, Phases())
        assert sample.energy == pytest.approx(13200.0)
        await cs.status("Available")
        sample = await charger.read()
        assert (sample.cable_state, sample.component_state) == (
            CableState.UNPLUGGED,
            ComponentState.READY,
        )
        await cs.status("Faulted")
        assert (await charger.read()).component_state is ComponentState.ERROR


async def test_limits_are_tx_default_profiles_in_amperes_over_a_failsafe() -> None:
    chargers = [ocpp_charger(phases=[2], connector_id=2, max_current=32.0)]
    async with (
        OcppCentralSystem(ocpp_config(), chargers) as central,
        connected_charge_point(central.port, cls=SimulatedStation, subprotocols=V201) as cs,
    ):
        charger = central.charger("bay-1")
        await cs.boot()
        await cs.status("Occupied", evse_id=2)
        assert await charger.set_current_limit(13.37) == 13.3
        failsafe = cs.profiles()[0]
        limit = [p for p in cs.profiles() if p["stack_level"] == 1][-1]
        assert (await charger.read()).current_limit == 13.3
    assert (failsafe["evse_id"], failsafe["stack_level"]) == (2, 0)
    assert failsafe["charging_profile_purpose"] == "TxDefaultProfile"
    assert "valid_to" not in failsafe
    assert float(failsafe["charging_schedule"][0]["charging_schedule_period"][0]["limit"]) == 0
    assert limit["evse_id"] == 2
    assert limit["charging_profile_purpose"] == "TxDefaultProfile"
    assert limit["charging_profile_kind"] == "Absolute"
    (schedule,) = limit["charging_schedule"]
    assert schedule["charging_rate_unit"] == "A"
    assert schedule["id"] == limit["id"]
    assert schedule["duration"] == 240
    period = schedule["charging_schedule_period"][0]
    assert (period["start_period"], float(period["limit"]), period["number_phases"]) == (0, 13.3, 1)
    valid_to = datetime.fromisoformat(limit["valid_to"])
    assert 170 < (valid_to - datetime.now(UTC)).total_seconds() <= 181


async def test_refused_tx_default_falls_back_to_the_station_maximum() -> None:
    async with (
        OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central,
        connected_charge_point(central.port, cls=SimulatedStation, subprotocols=V201) as cs,
    ):
        cs.profile_answers["TxDefaultProfile"] = "Rejected"
        await cs.boot()
        assert await central.charger("bay-1").set_current_limit(10.0) == 10.0
        last = cs.profiles()[-1]
    assert (last["charging_profile_purpose"], last["evse_id"], last["stack_level"]) == (
        "ChargingStationMaxProfile",
        0,
        1,
    )


async def test_resync_sets_sampling_variables_and_triggers() -> None:
    async with (
        OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central,
        connected_charge_point(central.port, cls=SimulatedStation, subprotocols=V201) as cs,
    ):
        await cs.heartbeat()  # a reconnect without boot resynchronises too
        await wait_until(lambda: len(cs.triggers()) >= 3)
        await wait_until(lambda: "SampledDataCtrlr.TxUpdatedMeasurands" in cs.variables)
        triggers = cs.received("TriggerMessage")
    assert cs.variables == {
        "SampledDataCtrlr.TxUpdatedInterval": "5",
        "SampledDataCtrlr.TxUpdatedMeasurands": (
            "Power.Active.Import,Current.Import,Voltage,Energy.Active.Import.Register,"
            "Current.Offered"
        ),
    }
    assert [t["requested_message"] for t in triggers] == [
        "StatusNotification",
        "TransactionEvent",
        "MeterValues",
    ]
    assert triggers[0]["evse"] == {"id": 1, "connector_id": 1}


async def test_authorize_and_id_tokens() -> None:
    config = ocpp_config(authorize_id_tags=["GOOD"])
    async with (
        OcppCentralSystem(config, [ocpp_charger()]) as central,
        connected_charge_point(central.port, cls=SimulatedStation, subprotocols=V201) as cs,
    ):
        assert (await cs.authorize("GOOD")).id_token_info["status"] == "Accepted"
        assert (await cs.authorize("BAD")).id_token_info["status"] == "Invalid"
        answer = await cs.transaction_event("Started", id_token="BAD")
        assert answer.id_token_info["status"] == "Invalid"


async def test_basic_auth_and_the_charge_points_preference_of_subprotocols() -> None:
    config = ocpp_config(basic_auth={"CP-1": PASSWORD}, allow_unauthenticated=False)
    async with OcppCentralSystem(config, [ocpp_charger()]) as central:
        charger = central.charger("bay-1")
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connected_charge_point(
                central.port, cls=SimulatedStation, subprotocols=V201
            ):
                pass
        assert refused.value.response.status_code == 401
        both = ("ocpp2.0.1", "ocpp1.6")
        async with connected_charge_point(
            central.port, password=PASSWORD, cls=SimulatedStation, subprotocols=both
        ) as cs:
            assert cs.connection.subprotocol == "ocpp2.0.1"
            assert (await cs.boot()).status == "Accepted"
            assert charger.ocpp_version == "2.0.1"
        async with connected_charge_point(
            central.port, password=PASSWORD, subprotocols=tuple(reversed(both))
        ) as cp:
            assert cp.connection.subprotocol == "ocpp1.6"
            assert (await cp.boot()).status == "Accepted"
            assert charger.ocpp_version == "1.6J"


def test_evse_status_translation() -> None:
    status = EvseStatus()
    assert status.connector_status(1, "Occupied") == "Preparing"
    assert status.charging_state(1, "Charging") == "Charging"
    assert status.connector_status(1, "Occupied") == "Charging"  # kept mid-session
    assert status.connector_status(2, "Occupied") == "Preparing"  # another EVSE
    assert status.charging_state(1, "Idle") is None
    assert status.charging_state(1, "EVConnected") == "Preparing"
    status.transaction_ended(1)
    assert status.connector_status(1, "occupied") == "Preparing"
    assert status.charging_state(1, "SuspendedEV") == "SuspendedEV"
    assert status.connector_status(1, "Faulted") == "Faulted"
    assert status.connector_status(1, "Occupied") == "Preparing"  # a fault ends the state
    assert status.connector_status(1, "Bogus") == "Bogus"  # unknown passes through
    assert status.connector_status(1, 7) == 7


async def test_offered_current_in_a_transaction_event_is_checked_against_the_limit() -> None:
    clock = FakeClock()
    async with (
        OcppCentralSystem(ocpp_config(), [ocpp_charger()], probe_interval=None, clock=clock) as cs,
        connected_charge_point(cs.port, cls=SimulatedStation, subprotocols=V201) as station,
    ):
        charger = cs.charger("bay-1")
        await station.boot()
        await station.transaction_event("Started", charging_state="Charging")
        assert await charger.set_current_limit(10.0) == 10.0
        clock.advance(11.0)  # past the grace of two sample intervals
        await station.transaction_event("Updated", meter=sampled(current=(16.0,), offered=16.0))
        assert charger.error is not None and "offers 16 A" in charger.error
        await station.transaction_event("Updated", meter=sampled(current=(10.0,), offered=10.0))
        assert charger.error is None
