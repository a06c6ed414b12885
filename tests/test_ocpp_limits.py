"""Current limits over OCPP 1.6J: fail-safe and bounded profiles, fallbacks, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.adapters.base import ChargerProtocolError, ChargerUnreachable
from gateway.adapters.ocpp import OcppCentralSystem
from tests.ocpp_helpers import connected_charge_point, ocpp_charger, ocpp_config, wait_until

TIMEOUT = 0.5


def period(profile: dict[str, Any]) -> dict[str, Any]:
    periods = profile["charging_schedule"]["charging_schedule_period"]
    assert len(periods) == 1
    # The simulator gets JSON decimals as decimal.Decimal; compare them as floats.
    return {**periods[0], "limit": float(periods[0]["limit"])}


def limits(cp: Any) -> list[dict[str, Any]]:
    """The bounded limit profiles (stack level 1) the charge point received."""
    return [p for p in cp.profiles() if p["stack_level"] == 1]


@pytest.fixture
async def central() -> AsyncIterator[OcppCentralSystem]:
    """bay-1 = CP-1 (3 phases, connector 1), bay-2 = CP-2 (1 phase on L2, connector 2)."""
    chargers = [
        ocpp_charger(),
        ocpp_charger("bay-2", "CP-2", phases=[2], connector_id=2, max_current=32.0),
    ]
    async with OcppCentralSystem(ocpp_config(response_timeout=TIMEOUT), chargers) as system:
        yield system


async def test_limit_is_bounded_over_a_persistent_failsafe(central: OcppCentralSystem) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        await cp.status("Charging")
        assert await charger.set_current_limit(13.37) == 13.3
        assert await charger.set_current_limit(15.0) == 15.0
        failsafe = cp.profiles()[0]
        first, second = limits(cp)[-2:]
        sample = await charger.read()
    # The fail-safe: stack level 0, 0 A (no safe_current configured), no end.
    assert failsafe["stack_level"] == 0
    assert failsafe["charging_profile_purpose"] == "TxDefaultProfile"
    assert period(failsafe)["limit"] == 0
    assert "valid_to" not in failsafe and "duration" not in failsafe["charging_schedule"]
    # The limit: stack level 1, valid for limit_validity (180 s) from now.
    assert first["connector_id"] == 1
    assert first["charging_profile_purpose"] == "TxDefaultProfile"
    assert first["charging_profile_kind"] == "Absolute"
    assert first["charging_schedule"]["charging_rate_unit"] == "A"
    assert period(first) == {"start_period": 0, "limit": 13.3, "number_phases": 3}
    start = datetime.fromisoformat(first["charging_schedule"]["start_schedule"])
    valid_to = datetime.fromisoformat(first["valid_to"])
    assert 0 < (datetime.now(UTC) - start).total_seconds() < 300
    assert 170 < (valid_to - datetime.now(UTC)).total_seconds() <= 181
    assert first["charging_schedule"]["duration"] == 240  # 180 s + the minute of lead
    assert first["charging_profile_id"] == second["charging_profile_id"]  # replaces, not stacks
    assert first["charging_profile_id"] != failsafe["charging_profile_id"]
    assert period(second)["limit"] == 15
    assert sample.current_limit == 15.0


async def test_configured_safe_current_is_the_failsafe() -> None:
    charger_config = ocpp_charger(safe_current=8.0)
    async with (
        OcppCentralSystem(ocpp_config(), [charger_config]) as central,
        connected_charge_point(central.port) as cp,
    ):
        await cp.boot()
        await wait_until(lambda: bool(cp.profiles()))
        failsafe = cp.profiles()[0]
    assert (failsafe["stack_level"], period(failsafe)["limit"]) == (0, 8.0)


async def test_below_six_amps_is_zero_and_phases_follow_the_config(
    central: OcppCentralSystem,
) -> None:
    async with connected_charge_point(central.port, "CP-2") as cp:
        await cp.boot()
        assert await central.charger("bay-2").set_current_limit(4.0) == 0.0
        profile = limits(cp)[-1]
    assert profile["connector_id"] == 2
    assert period(profile) == {"start_period": 0, "limit": 0, "number_phases": 1}


@pytest.mark.parametrize("refusal", ["Rejected", "NotSupported", "CALLERROR"])
async def test_refused_tx_default_falls_back_to_charge_point_max(
    central: OcppCentralSystem, refusal: str
) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        cp.profile_answers["TxDefaultProfile"] = refusal
        await cp.boot()
        assert await charger.set_current_limit(10.0) == 10.0
        cp_max = limits(cp)[-1]
        assert cp_max["charging_profile_purpose"] == "ChargePointMaxProfile"
        assert cp_max["connector_id"] == 0
        assert period(cp_max)["limit"] == 10
        failsafes = [p for p in cp.profiles() if p["stack_level"] == 0]
        assert {p["charging_profile_purpose"] for p in failsafes} >= {"ChargePointMaxProfile"}
        # The purpose that worked is tried first from now on, the fail-safe is not resent.
        count = len(cp.profiles())
        assert await charger.set_current_limit(12.0) == 12.0
        new = cp.profiles()[count:]
        assert [(p["charging_profile_purpose"], p["stack_level"]) for p in new] == [
            ("ChargePointMaxProfile", 1)
        ]
        await cp.status("Charging")
        assert (await charger.read()).current_limit == 12.0


async def test_stack_level_one_refused_gives_an_unbounded_limit(
    central: OcppCentralSystem, caplog: pytest.LogCaptureFixture
) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        cp.answers["StackLevel1"] = "Rejected"
        await cp.boot()
        assert await charger.set_current_limit(10.0) == 10.0
        last = cp.profiles()[-1]
        count = len(cp.profiles())
        assert await charger.set_current_limit(11.0) == 11.0
        again = cp.profiles()[count:]
    assert (last["stack_level"], period(last)["limit"]) == (0, 10.0)
    assert "valid_to" not in last
    # From then on straight to the unbounded slot: the fail-safe never overwrites it.
    assert [(p["stack_level"], period(p)["limit"]) for p in again] == [(0, 11.0)]
    assert sum("no bounded limit over a fail-safe" in r.message for r in caplog.records) == 1


async def test_both_purposes_refused_is_a_protocol_error(central: OcppCentralSystem) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        cp.profile_answers.update(TxDefaultProfile="Rejected", ChargePointMaxProfile="CALLERROR")
        await cp.boot()
        await cp.status("Charging")
        with pytest.raises(ChargerProtocolError) as refused:
            await charger.set_current_limit(10.0)
        sample = await charger.read()
    message = str(refused.value)
    assert "TxDefault limit without end on connector 1: Rejected" in message
    assert "StationMax limit without end on connector 0" in message
    assert "NotSupported" in message
    assert sample.current_limit is None


async def _timed(awaitable: Awaitable[float]) -> tuple[float | BaseException, float]:
    start = time.monotonic()
    try:
        result: float | BaseException = await awaitable
    except Exception as exc:
        result = exc
    return result, time.monotonic() - start


async def test_silent_charge_point_times_out_without_blocking_others(
    central: OcppCentralSystem,
) -> None:
    async with (
        connected_charge_point(central.port, "CP-1") as dead,
        connected_charge_point(central.port, "CP-2") as alive,
    ):
        await dead.boot()
        await alive.boot()
        await wait_until(lambda: "MeterValues" in alive.triggers())
        dead.silent = True
        (dead_result, dead_time), (alive_result, alive_time) = await asyncio.gather(
            _timed(central.charger("bay-1").set_current_limit(10.0)),
            _timed(central.charger("bay-2").set_current_limit(10.0)),
        )
    assert isinstance(dead_result, ChargerUnreachable), dead_result
    assert "did not" in str(dead_result)
    assert dead_time < TIMEOUT + 0.3
    assert alive_result == 10.0
    assert alive_time < 0.3


async def test_not_connected_raises_and_the_limit_is_applied_on_reconnect(
    central: OcppCentralSystem,
) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        assert await charger.set_current_limit(16.0) == 16.0
    await wait_until(lambda: not charger.connected)
    with pytest.raises(ChargerUnreachable, match="will be written when it connects"):
        await charger.set_current_limit(8.25)

    # Reconnect without BootNotification: the first frame triggers the resync.
    async with connected_charge_point(central.port) as cp:
        await cp.heartbeat()
        await wait_until(lambda: {"StatusNotification", "MeterValues"} <= set(cp.triggers()))
        await wait_until(lambda: "MeterValuesSampledData" in cp.configuration)
        actions = [name for name, _ in cp.requests]
        # fail-safe, then the limit: they keep the fuse safe
        assert actions[:2] == ["SetChargingProfile", "SetChargingProfile"]
        assert period(cp.profiles()[1])["limit"] == 8.2
        assert cp.configuration == {
            "MeterValueSampleInterval": "5",
            "MeterValuesSampledData": (
                "Power.Active.Import,Current.Import,Voltage,Energy.Active.Import.Register,"
                "Current.Offered"
            ),
        }
        await cp.status("SuspendedEVSE")
        assert (await charger.read()).current_limit == 8.2


async def test_refused_measurands_are_set_one_by_one(central: OcppCentralSystem) -> None:
    async with connected_charge_point(central.port) as cp:
        cp.rejected_measurands = {"Voltage"}
        await cp.boot()
        await wait_until(lambda: "MeterValues" in cp.triggers())
        await wait_until(lambda: len(cp.received("ChangeConfiguration")) >= 7)
    sampled = [
        p["value"]
        for p in cp.received("ChangeConfiguration")
        if p["key"] == "MeterValuesSampledData"
    ]
    assert sampled[0].startswith("Power.Active.Import,Current.Import,Voltage,")
    assert cp.configuration["MeterValuesSampledData"] == (
        "Power.Active.Import,Current.Import,Energy.Active.Import.Register,Current.Offered"
    )


async def test_limits_are_clamped_to_max_current(central: OcppCentralSystem) -> None:
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        assert await central.charger("bay-1").set_current_limit(40.0) == 16.0
        assert period(limits(cp)[-1])["limit"] == 16
