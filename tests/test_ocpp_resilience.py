"""OCPP resynchronisation and fail-safe on the gateway's clock (no real sleeps).

Each resync step is independent and retried with backoff; refusals are final and do
not stop the other steps; the limit is refreshed before it lapses; Current.Offered
is checked against the accepted limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from gateway.adapters.base import ChargerProtocolError, ChargerUnreachable
from gateway.adapters.ocpp import OcppCentralSystem
from gateway.adapters.ocpp.limits import offered_mismatch
from gateway.adapters.ocpp.resync import retry_step
from tests.ocpp_helpers import FakeClock, connected_charge_point, ocpp_charger, ocpp_config
from tests.ocpp_helpers import wait_until as _wait_until

TIMEOUT = 0.3


async def wait_until(predicate: Any) -> None:
    await _wait_until(predicate, timeout=5.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def central(clock: FakeClock) -> AsyncIterator[OcppCentralSystem]:
    config = ocpp_config(response_timeout=TIMEOUT)
    async with OcppCentralSystem(config, [ocpp_charger()], probe_interval=None, clock=clock) as cs:
        yield cs


def actions(cp: Any) -> list[str]:
    return [name for name, _ in cp.requests]


async def test_an_unanswered_limit_stops_no_other_step_and_is_retried(
    central: OcppCentralSystem, clock: FakeClock
) -> None:
    async with connected_charge_point(central.port) as cp:
        cp.ignored = {"SetChargingProfile"}
        await cp.boot()
        await wait_until(lambda: {"StatusNotification", "MeterValues"} <= set(cp.triggers()))
        await wait_until(lambda: "MeterValuesSampledData" in cp.configuration)
        assert actions(cp).count("SetChargingProfile (ignored)") == 1
        # The fail-safe step waits on the gateway's clock: 1 s, then 2 s, ...
        await wait_until(lambda: clock.sleepers >= 1)
        cp.ignored = set()
        clock.advance(1.0)
        await wait_until(lambda: bool(cp.profiles()))
    assert cp.profiles()[0]["stack_level"] == 0  # the fail-safe, on the retry


async def test_refusals_are_final_and_the_other_steps_still_run(
    central: OcppCentralSystem, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected_charge_point(central.port) as cp:
        cp.answers = {"TriggerMessage": "Rejected", "ChangeConfiguration": "CALLERROR"}
        await cp.boot()
        await wait_until(lambda: len(cp.triggers()) >= 2)
        await wait_until(lambda: len(cp.received("ChangeConfiguration")) >= 2)
        # A CALLERROR for the measurand list: not retried one measurand at a time.
        assert len(cp.received("ChangeConfiguration")) == 2
        await central.charger("bay-1").set_current_limit(10.0)
        clock.advance(50.0)  # no retry of a refusal (the limit refresh is not due yet)
        await wait_until(lambda: clock.sleepers >= 1)  # the limit refresh waits
    assert sorted(cp.triggers()) == ["MeterValues", "StatusNotification"]
    assert [p["stack_level"] for p in cp.profiles()] == [0, 1]
    refusals = [r.message for r in caplog.records if "refused" in r.message]
    assert sum("status trigger refused" in m for m in refusals) == 1
    assert sum("meter values trigger refused" in m for m in refusals) == 1
    assert any("NotSupported" in r.message for r in caplog.records)  # the CALLERROR, logged


async def test_the_limit_is_refreshed_before_it_lapses(
    central: OcppCentralSystem, clock: FakeClock
) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        await wait_until(lambda: bool(cp.profiles()))
        assert await charger.set_current_limit(12.0) == 12.0
        first = [p for p in cp.profiles() if p["stack_level"] == 1]
        assert len(first) == 1
        clock.advance(59.0)
        await wait_until(lambda: clock.sleepers >= 1)
        assert len([p for p in cp.profiles() if p["stack_level"] == 1]) == 1
        clock.advance(1.0)  # a third of the 180 s validity
        await wait_until(lambda: len([p for p in cp.profiles() if p["stack_level"] == 1]) == 2)
        second = [p for p in cp.profiles() if p["stack_level"] == 1][-1]
    valid_to = [datetime.fromisoformat(p["valid_to"]) for p in (first[0], second)]
    assert (valid_to[1] - valid_to[0]).total_seconds() == pytest.approx(60.0, abs=1.0)
    limit = second["charging_schedule"]["charging_schedule_period"][0]["limit"]
    assert float(limit) == 12.0


async def test_offered_current_above_the_limit_is_reported_once(
    central: OcppCentralSystem, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    charger = central.charger("bay-1")
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        await cp.status("Charging")
        assert await charger.set_current_limit(10.0) == 10.0
        await cp.meter_values(current=(16.0, 16.0, 16.0), offered=16.0)
        assert charger.error is None  # within the grace after the limit (2 x 5 s)
        clock.advance(11.0)
        await cp.meter_values(current=(16.0, 16.0, 16.0), offered=16.0)
        assert charger.error is not None and "offers 16 A" in charger.error
        assert "limit of 10 A" in charger.error
        await cp.meter_values(current=(16.0, 16.0, 16.0), offered=16.0)
        await cp.meter_values(current=(9.0, 9.0, 9.0), offered=10.0)
        assert charger.error is None
    warnings = [r for r in caplog.records if "offers 16 A" in r.message]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_offered_mismatch_rules() -> None:
    assert offered_mismatch(16.0, None, None, 100.0, 10.0) is None  # no limit yet
    assert offered_mismatch(16.0, 10.0, 95.0, 100.0, 10.0) is None  # within the grace
    assert offered_mismatch(10.5, 10.0, 0.0, 100.0, 10.0) is None  # within the tolerance
    assert offered_mismatch(6.0, 10.0, 0.0, 100.0, 10.0) is None  # less is fine
    assert offered_mismatch(10.6, 10.0, 0.0, 100.0, 10.0) is not None


async def test_retry_backs_off_doubling_up_to_the_cap() -> None:
    clock = FakeClock()
    attempts: list[float] = []

    async def flaky() -> None:
        attempts.append(clock.now())
        if len(attempts) < 6:
            raise ChargerUnreachable("no answer")

    task = asyncio.create_task(retry_step("step", flaky, clock, 1.0, 4.0))
    while not task.done():
        await wait_until(lambda: clock.sleepers == 1 or task.done())
        clock.advance(100.0)
    assert task.result() is True
    assert clock.slept == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(attempts) == 6

    async def refused() -> None:
        raise ChargerProtocolError("Rejected")

    assert await retry_step("step", refused, clock) is False
    assert clock.slept == [1.0, 2.0, 4.0, 4.0, 4.0]  # a refusal is not retried
