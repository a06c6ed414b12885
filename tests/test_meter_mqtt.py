"""MQTT meters: the strict payload parser, the meter fed by `on_message` (bad input
logged at a limited rate and ignored, never raised), and a real broker in between."""

from __future__ import annotations

import asyncio
import json
import logging
import math

import pytest

from gateway.clock import FakeClock
from gateway.core.model import Phases
from gateway.meters.model import Meter, MeterUnreachable
from gateway.meters.mqtt import MAX_PAYLOAD, MeterPayloadError, MqttMeter, parse_meter_payload
from gateway.meters.payloads import meter_state
from tests.conftest import MqttProbe

WALL = 1_764_363_600.0  # 2025-11-28T21:00:00Z


def good(**extra: object) -> bytes:
    return json.dumps({"value_p1": 12.5, "value_p2": 3, "value_p3": -4.25, **extra}).encode()


# -- parser --------------------------------------------------------------------------


def test_parse_a_reading() -> None:
    parsed = parse_meter_payload(good())
    assert parsed.current == Phases(12.5, 3.0, -4.25) and parsed.timestamp is None
    assert parse_meter_payload(good(timestamp="2025-11-28T21:00:00.250Z")).timestamp == WALL + 0.25
    assert parse_meter_payload(good(timestamp="2025-11-28T22:00:00+01:00")).timestamp == WALL
    assert parse_meter_payload(good(timestamp=WALL)).timestamp == WALL
    assert parse_meter_payload(good(timestamp=None)).timestamp is None
    text = good().decode()
    assert parse_meter_payload(text) == parse_meter_payload(bytearray(good()))
    with pytest.raises(MeterPayloadError, match="not UTF-8"):
        parse_meter_payload("\udcff")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", r"not JSON"),
        (b"\xff\xfe", r"not UTF-8"),
        (b"12.5", r"must be a JSON object .* got float"),
        (b"[1, 2, 3]", r"must be a JSON object .* got list"),
        (b'{"value_p1": 1, "value_p2": 2}', r"missing key\(s\) value_p3"),
        (good(power=100), r"unknown key\(s\) 'power'"),
        (b'{"value_p1": "1", "value_p2": 2, "value_p3": 3}', r"value_p1 must be a number"),
        (b'{"value_p1": true, "value_p2": 2, "value_p3": 3}', r"value_p1 must be a number"),
        (b'{"value_p1": null, "value_p2": 2, "value_p3": 3}', r"value_p1 must be a number"),
        (b'{"value_p1": NaN, "value_p2": 2, "value_p3": 3}', r"NaN is not a number"),
        (b'{"value_p1": 1, "value_p2": Infinity, "value_p3": 3}', r"Infinity is not a number"),
        (b'{"value_p1": 1, "value_p2": 2, "value_p3": 1e400}', r"value_p3 .* not plausible"),
        (b'{"value_p1": 1, "value_p2": 2, "value_p3": -20000}', r"value_p3 .* not plausible"),
        (good(timestamp="yesterday"), r"timestamp 'yesterday' is not RFC 3339"),
        (good(timestamp="2025-11-28T21:00:00"), r"has no time zone"),
        (good(timestamp=True), r"timestamp must be"),
        (good(timestamp=-5), r"not a time in Unix seconds"),
        (good(timestamp=[1]), r"timestamp must be .* got list"),
        (b"[" * 60_000, r"not JSON"),
        (b" " * (MAX_PAYLOAD + 1), r"over 65536"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(MeterPayloadError, match=reason) as caught:
        parse_meter_payload(payload)
    assert "\n" not in str(caught.value)


# -- the meter -----------------------------------------------------------------------


def clock() -> FakeClock:
    """A clock on which monotonic 100.0 is the wall time WALL."""
    return FakeClock(start=100.0, wall_offset=WALL - 100.0)


async def test_meter_keeps_the_latest_good_reading_on_grid_phases() -> None:
    meter = MqttMeter("grid", "site/meter", (2, 3, 1), clock=clock())
    assert isinstance(meter, Meter)
    with pytest.raises(MeterUnreachable, match="meter grid: no reading on topic site/meter yet"):
        await meter.read()
    assert meter.on_message(good(), now=100.0)
    sample = await meter.read()
    assert sample.current == Phases(-4.25, 12.5, 3.0)  # meter L1 is grid L2
    assert (sample.monotonic, sample.timestamp) == (100.0, WALL)
    assert sample.power is None and sample.voltage is None
    # a timestamped reading 2 s old on arrival is 2 s old on the monotonic clock
    assert meter.on_message(good(timestamp=WALL + 8.0), now=110.0)
    assert (meter.latest.monotonic, meter.latest.timestamp) == (108.0, WALL + 8.0)  # type: ignore[union-attr]
    # a clock ahead of ours: counts as measured on arrival, never younger
    assert meter.on_message(good(timestamp=WALL + 60.0), now=111.0)
    assert meter.latest is not None and meter.latest.monotonic == 111.0
    assert meter.latest.timestamp == WALL + 11.0
    assert meter.accepted == 3 and meter.rejected == 0
    await meter.close()


async def test_bad_and_out_of_order_messages_change_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    meter = MqttMeter("grid", "site/meter", clock=clock())
    assert meter.on_message(good(timestamp=WALL), now=100.0)
    held = meter.latest
    caplog.set_level(logging.WARNING, logger="gateway.meters.mqtt")
    for index in range(50):  # a broken publisher, once a second
        assert not meter.on_message(b"garbage", now=101.0 + index)
    assert meter.latest is held and meter.rejected == 50
    assert meter.last_error is not None and "not JSON" in meter.last_error
    assert await meter.read() is held  # the last good reading stays
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate-limited: once a minute
    assert "meter grid: topic site/meter: payload is not JSON" in warnings[0].getMessage()
    assert not meter.on_message(b"garbage", now=161.0)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert "(and 49 more like it in 60 s)" in caplog.records[-1].getMessage()
    # an older reading (overtaken on the way) is ignored
    assert not meter.on_message(good(timestamp=WALL - 5.0), now=170.0)  # 75 s old
    assert meter.latest is held
    # a good one clears the error
    assert meter.on_message(good(), now=171.0)
    assert meter.last_error is None and meter.latest.monotonic == 171.0  # type: ignore[union-attr]


async def test_a_retained_message_needs_a_timestamp() -> None:
    meter = MqttMeter("grid", "site/meter", clock=clock())
    assert not meter.on_message(good(), now=100.0, retained=True)
    assert meter.latest is None and "retained message without a timestamp" in str(meter.last_error)
    with pytest.raises(MeterUnreachable, match="retained message without a timestamp"):
        await meter.read()
    assert meter.on_message(good(timestamp=WALL - 30.0), now=100.0, retained=True)
    assert meter.latest is not None and meter.latest.monotonic == 70.0  # old: stale at once
    assert not meter.latest.is_fresh(100.0, 5.0)


async def test_a_reading_old_on_arrival_is_kept_and_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.meters.mqtt")
    meter = MqttMeter("grid", "site/meter", clock=clock(), max_age=5.0)
    assert meter.on_message(good(timestamp=WALL - 4.0), now=100.0)  # within max_age
    assert meter.on_message(good(timestamp=WALL), now=100.0)
    assert not caplog.records
    # 50 s later, the publisher's clock is 12 s behind ours
    assert meter.on_message(good(timestamp=WALL + 50.0 - 12.0), now=150.0)
    assert meter.latest is not None and meter.latest.monotonic == 138.0
    assert [r.getMessage() for r in caplog.records] == [
        "meter grid: topic site/meter: reading is 12.0 s old on arrival (max_age 5 s); "
        "check the publisher's clock and the bridge"
    ]


def test_meter_refuses_a_wiring_that_is_not_three_phases() -> None:
    with pytest.raises(ValueError, match="phases must order 1, 2, 3"):
        MqttMeter("grid", "t", (1, 1, 2))


# -- state payload -------------------------------------------------------------------


async def test_meter_state_payload() -> None:
    meter = MqttMeter("grid", "site/meter", clock=clock())
    empty = meter_state(None, now=100.0, wall_now=WALL, max_age=5.0, error="no reading yet")
    assert empty == {
        "timestamp": "2025-11-28T21:00:00.000Z",
        "current_per_phase": None,
        "power_per_phase": None,
        "voltage_per_phase": None,
        "stale": True,
        "error": "no reading yet",
    }
    meter.on_message(good(timestamp=WALL - 1.0), now=100.0)
    state = meter_state(meter.latest, now=100.0, wall_now=WALL, max_age=5.0)
    assert state["timestamp"] == "2025-11-28T20:59:59.000Z"
    assert state["current_per_phase"] == {"value_p1": 12.5, "value_p2": 3.0, "value_p3": -4.25}
    assert (state["stale"], state["error"], state["power_per_phase"]) == (False, None, None)
    later = meter_state(meter.latest, now=104.5, wall_now=WALL, max_age=5.0)
    assert later["stale"] is True  # 5.5 s old
    assert not math.isnan(json.loads(json.dumps(later))["current_per_phase"]["value_p1"])


# -- through a real broker -----------------------------------------------------------


async def test_readings_arrive_through_mosquitto(probe: MqttProbe) -> None:
    """A publisher (Node-RED, Tasmota...) and a subscriber routing the topic to the meter,
    as the gateway's MQTT bridge does."""
    loop = asyncio.get_running_loop()
    meter = MqttMeter("grid", "site/grid-meter")
    await probe.publish("site/grid-meter", {"value_p1": 30.5, "value_p2": 2.0, "value_p3": 1.0})
    await probe.publish("site/grid-meter", b"{broken")
    await probe.publish("site/grid-meter", {"value_p1": 31.0, "value_p2": 2.5, "value_p3": 1.5})
    for expected in range(3):
        message = await probe.wait_for("site/grid-meter", after=expected)
        meter.on_message(message.payload, loop.time(), retained=message.retain)
    assert (meter.accepted, meter.rejected) == (2, 1)
    sample = await meter.read()
    assert sample.current == Phases(31.0, 2.5, 1.5)
