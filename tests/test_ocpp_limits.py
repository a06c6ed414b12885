"""Current limits over OCPP: profiles, fallbacks, timeouts, and resync on reconnect."""

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


@pytest.fixture
async def central() -> AsyncIterator[OcppCentralSystem]:
    """bay-1 = CP-1 (3 phases, connector 1), bay-2 = CP-2 (1 phase on L2, connector 2)."""
    chargers = [
        ocpp_charger(),
        ocpp_charger("bay-2", "CP-2", phases=[2], connector_id=2, max_current=32.0),
    ]
    async with OcppCentralSystem(ocpp_config(response_timeout=TIMEOUT), chargers) as system:
        yield system


async def test_limit_is_a_tx_default_profile_rounded_down(central: OcppCentralSystem) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        await cp.status("Charging")
        assert await charger.set_current_limit(13.37) == 13.3
        assert await charger.set_current_limit(15.0) == 15.0
        first, second = cp.profiles()[-2:]
        sample = await charger.read()
    assert first["connector_id"] == 1
    assert first["charging_profile_purpose"] == "TxDefaultProfile"
    assert first["charging_profile_kind"] == "Absolute"
    assert first["stack_level"] == 0
    assert first["charging_schedule"]["charging_rate_unit"] == "A"
    assert period(first) == {"start_period": 0, "limit": 13.3, "number_phases": 3}
    start = datetime.fromisoformat(first["charging_schedule"]["start_schedule"])
    assert 0 < (datetime.now(UTC) - start).total_seconds() < 300
    assert first["charging_profile_id"] == second["charging_profile_id"]  # replaces, not stacks
    assert period(second)["limit"] == 15
    assert sample.current_limit == 15.0


async def test_below_six_amps_is_zero_and_phases_follow_the_config(
    central: OcppCentralSystem,
) -> None:
    async with connected_charge_point(central.port, "CP-2") as cp:
        await cp.boot()
        assert await central.charger("bay-2").set_current_limit(4.0) == 0.0
        profile = cp.profiles()[-1]
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
        tx_default, cp_max = cp.profiles()[-2:]
        assert tx_default["charging_profile_purpose"] == "TxDefaultProfile"
        assert cp_max["charging_profile_purpose"] == "ChargePointMaxProfile"
        assert cp_max["connector_id"] == 0
        assert period(cp_max)["limit"] == 10
        # The purpose that worked is tried first from now on.
        count = len(cp.profiles())
        assert await charger.set_current_limit(12.0) == 12.0
        assert [p["charging_profile_purpose"] for p in cp.profiles()[count:]] == [
            "ChargePointMaxProfile"
        ]
        await cp.status("Charging")
        assert (await charger.read()).current_limit == 12.0


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
    assert "TxDefaultProfile on connector 1: Rejected" in message
    assert "ChargePointMaxProfile on connector 0" in message
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
        actions = [name for name, _ in cp.requests]
        assert actions[0] == "SetChargingProfile"  # the limit first: it keeps the fuse safe
        assert period(cp.profiles()[0])["limit"] == 8.2
        assert cp.configuration == {
            "MeterValueSampleInterval": "5",
            "MeterValuesSampledData": (
                "Power.Active.Import,Current.Import,Voltage,Energy.Active.Import.Register"
            ),
        }
        await cp.status("SuspendedEVSE")
        assert (await charger.read()).current_limit == 8.2


async def test_refused_measurands_are_set_one_by_one(central: OcppCentralSystem) -> None:
    async with connected_charge_point(central.port) as cp:
        cp.rejected_measurands = {"Voltage"}
        await cp.boot()
        await wait_until(lambda: "MeterValues" in cp.triggers())
    sampled = [
        p["value"]
        for p in cp.received("ChangeConfiguration")
        if p["key"] == "MeterValuesSampledData"
    ]
    assert sampled[0] == "Power.Active.Import,Current.Import,Voltage,Energy.Active.Import.Register"
    assert cp.configuration["MeterValuesSampledData"] == (
        "Power.Active.Import,Current.Import,Energy.Active.Import.Register"
    )


async def test_limits_are_clamped_to_max_current(central: OcppCentralSystem) -> None:
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        assert await central.charger("bay-1").set_current_limit(40.0) == 16.0
        assert period(cp.profiles()[-1])["limit"] == 16
