"""JSON payloads of the meter topics, built from meter and headroom data. Pure code.

- `{base}/meters/{id}/state`: the meter's latest reading per grid phase, whether it is
  stale, and the last read error.
- `{base}/pools/{pool}/grid`: the fuse, the meter current used and the headroom per
  grid phase, and whether the stale-meter fallback applies.

Non-finite numbers become null, as in every other payload of the gateway.
"""

from __future__ import annotations

from gateway.core.headroom import GridHeadroom
from gateway.meters.model import MeterSample
from gateway.mqtt.payloads import JsonObject, _num, phases_payload
from gateway.mqtt.topics import Topics
from gateway.timefmt import rfc3339


def meter_state_topic(topics: Topics, meter_id: str) -> str:
    """`{base}/meters/{id}/state`."""
    return f"{topics.base}/meters/{meter_id}/state"


def grid_topic(topics: Topics, pool: str) -> str:
    """`{base}/pools/{pool}/grid`."""
    return topics.pool(pool, "grid")


def meter_state(
    sample: MeterSample | None,
    *,
    now: float,
    wall_now: float,
    max_age: float,
    error: str | None = None,
) -> JsonObject:
    """`{"timestamp", "current_per_phase", "power_per_phase", "voltage_per_phase",
    "stale", "error"}` for `{base}/meters/{id}/state`.

    The timestamp is the reading's (when it was measured), or `wall_now` without one;
    `stale` is True when there is no reading or it is older than `max_age` at monotonic
    time `now`; measured fields are null without a reading, and `power_per_phase` /
    `voltage_per_phase` are null where the meter does not provide them.
    """
    if sample is None:
        return {
            "timestamp": rfc3339(wall_now),
            "current_per_phase": None,
            "power_per_phase": None,
            "voltage_per_phase": None,
            "stale": True,
            "error": error,
        }
    return {
        "timestamp": rfc3339(sample.timestamp),
        "current_per_phase": phases_payload(sample.current),
        "power_per_phase": None if sample.power is None else phases_payload(sample.power),
        "voltage_per_phase": None if sample.voltage is None else phases_payload(sample.voltage),
        "stale": not sample.is_fresh(now, max_age),
        "error": error,
    }


def grid_state(headroom: GridHeadroom, wall_now: float) -> JsonObject:
    """`{"timestamp", "fuse", "meter_p1..p3", "headroom_p1..p3", "stale"}` for
    `{base}/pools/{pool}/grid`, at the tick's wall time `wall_now`.

    `meter_pN` is the meter current the headroom was computed from, null while the
    meter is stale (its last reading stays visible on the meter's own state topic).
    """
    meter = headroom.meter.as_tuple() if headroom.meter is not None else (None, None, None)
    payload: JsonObject = {"timestamp": rfc3339(wall_now), "fuse": _num(headroom.fuse)}
    for index, value in enumerate(meter, start=1):
        payload[f"meter_p{index}"] = _num(value)
    for index, value in enumerate(headroom.headroom.as_tuple(), start=1):
        payload[f"headroom_p{index}"] = _num(value)
    payload["stale"] = headroom.stale
    return payload
