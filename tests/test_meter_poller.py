"""The meter poller against a real simulated meter: latest reading, last error, the
callback on each new reading, and the loop surviving a silent meter."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.clock import FakeClock
from gateway.core.model import Phases
from gateway.meters.modbus import ModbusTcpMeter
from gateway.meters.model import MeterSample
from gateway.meters.mqtt import MqttMeter
from gateway.meters.poller import MeterPoller
from gateway.simulator.meter_server import SimulatedMeter


async def test_poll_once_keeps_the_latest_reading_and_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[MeterSample] = []
    async with SimulatedMeter("eastron-sdm630", load=(10.0, 11.0, 12.0)) as sim:
        meter = ModbusTcpMeter("grid", sim.host, sim.port, None, "eastron-sdm630", timeout=0.5)
        poller = MeterPoller(meter, 1.0, on_sample=seen.append)
        assert await poller.poll_once()
        assert poller.latest is not None and poller.latest.current == Phases(10.0, 11.0, 12.0)
        assert poller.error is None and seen == [poller.latest]
        first = poller.latest
        sim.silence()
        caplog.set_level(logging.WARNING, logger="gateway.meters.poller")
        assert not await poller.poll_once()
        assert not await poller.poll_once()
        assert poller.latest is first and poller.failures == 2
        assert poller.error is not None and "no answer within 0.5 s" in poller.error
        assert len(caplog.records) == 1  # the same reason is logged once
        sim.resume()
        sim.set_load(30.0, 11.0, 12.0)
        assert await poller.poll_once()
        assert poller.error is None and poller.failures == 0
        assert [s.current.p1 for s in seen] == [10.0, 30.0]
        await meter.close()


async def test_run_polls_on_its_clock_and_survives_failures() -> None:
    """The loop sleeps on the injected clock (moved by hand here); only the Modbus round
    trips and the silent meter's timeout take real time."""
    clock = FakeClock()
    samples: list[MeterSample] = []
    new = asyncio.Event()
    failed = asyncio.Event()

    def on_sample(sample: MeterSample) -> None:
        samples.append(sample)
        new.set()

    def on_error(reason: str) -> None:
        failed.set()

    async with SimulatedMeter("abb-b23", load=(5.0, 5.0, 5.0)) as sim:
        meter = ModbusTcpMeter("grid", sim.host, sim.port, None, "abb-b23", timeout=0.2)
        poller = MeterPoller(meter, 1.0, on_sample=on_sample, on_error=on_error, clock=clock)
        task = asyncio.create_task(poller.run())
        try:
            await asyncio.wait_for(new.wait(), 10)  # the first poll is at once
            assert len(samples) == 1
            sim.silence()
            for _ in range(2):  # on failing, it keeps polling at its interval
                failed.clear()
                await _sleeping(clock)
                await clock.advance(1.0)
                await asyncio.wait_for(failed.wait(), 10)
            assert poller.failures == 2 and "no answer" in str(poller.error)
            new.clear()
            sim.resume()
            sim.set_load(7.0, 5.0, 5.0)
            await _sleeping(clock)
            await clock.advance(1.0)
            await asyncio.wait_for(new.wait(), 10)
            assert poller.latest is not None and poller.latest.current.p1 == pytest.approx(7.0)
            assert len(samples) == 2 and poller.polls == 4
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        await meter.close()


async def _sleeping(clock: FakeClock) -> None:
    """Until the poller sleeps on the clock (its round trip is real I/O)."""
    for _ in range(1000):
        if clock.sleepers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the poller never went to sleep")


async def test_an_mqtt_meter_without_messages_is_an_error_not_a_crash() -> None:
    meter = MqttMeter("house", "home/meter")
    poller = MeterPoller(meter, 1.0)
    assert not await poller.poll_once()
    assert poller.error == "meter house: no reading on topic home/meter yet"
    meter.on_message(b'{"value_p1": 1, "value_p2": 2, "value_p3": 3}', now=10.0)
    assert await poller.poll_once() and poller.latest is meter.latest
    with pytest.raises(ValueError, match="interval > 0"):
        MeterPoller(meter, 0.0)
