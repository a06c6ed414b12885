"""A grid meter read from an MQTT topic, as any meter bridged by Node-RED, Tasmota or
Home Assistant can publish it:

    {"value_p1": 12.5, "value_p2": 3.0, "value_p3": -4.2, "timestamp": "2026-11-28T21:00:00.250Z"}

Currents in A per meter phase (mapped to grid phases through the meter's `phases`),
import positive. `timestamp` is optional: an RFC 3339 string with a time zone, or Unix
seconds; without it the reading counts as measured when it arrived.

Two parts, so that the daemon's MQTT bridge can route the topic here:
- `parse_meter_payload` is pure and strict: a JSON object with exactly these keys,
  finite numbers, plausible currents. Anything else raises `MeterPayloadError` with a
  one-line reason.
- `MqttMeter.on_message(payload, now)` keeps the latest good reading. A bad payload is
  logged (at most once a minute per meter, with a count) and ignored; it never raises.
  A reading older than the one held is ignored too (messages can overtake each other
  across a bridge), and so is a retained message without a timestamp, whose age
  nobody knows.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.clock import Clock, SystemClock, wall_at
from gateway.core.model import Phases
from gateway.logsafe import LogLimiter
from gateway.meters.model import MeterSample, MeterUnreachable, to_grid

log = logging.getLogger(__name__)

MAX_PAYLOAD = 64 * 1024
"""Bytes: a meter reading is a few dozen; anything this large is not one."""

MAX_CURRENT = 10_000.0
"""A: larger values (either sign) are refused as implausible for any site meter."""

KEYS = ("value_p1", "value_p2", "value_p3")
OPTIONAL_KEYS = ("timestamp",)


class MeterPayloadError(ValueError):
    """A payload that is not a meter reading; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class MeterPayload:
    """A parsed reading: currents per meter phase, and when measured (None: unknown)."""

    current: Phases
    timestamp: float | None


def parse_meter_payload(payload: bytes | bytearray | str) -> MeterPayload:
    """The reading in `payload`; raises `MeterPayloadError` naming the problem."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if len(payload) > MAX_PAYLOAD:
        raise MeterPayloadError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise MeterPayloadError("payload is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise MeterPayloadError(f"payload is not JSON: {_short(exc)}") from None
    if not isinstance(data, dict):
        raise MeterPayloadError(
            f"payload must be a JSON object with {', '.join(KEYS)}, got {type(data).__name__}"
        )
    unknown = sorted(set(data) - {*KEYS, *OPTIONAL_KEYS})
    if unknown:
        raise MeterPayloadError(
            f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
            f"{', '.join((*KEYS, *OPTIONAL_KEYS))}"
        )
    missing = [key for key in KEYS if key not in data]
    if missing:
        raise MeterPayloadError(f"missing key(s) {', '.join(missing)}")
    currents = Phases(*(_current(key, data[key]) for key in KEYS))
    stamp = data.get("timestamp")
    return MeterPayload(currents, None if stamp is None else _timestamp(stamp))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _current(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeterPayloadError(f"{key} must be a number of amperes, got {value!r:.40}")
    amps = float(value)
    if not math.isfinite(amps) or abs(amps) > MAX_CURRENT:
        raise MeterPayloadError(
            f"{key} = {value!r:.40} A is not plausible (|A| <= {MAX_CURRENT:g})"
        )
    return amps


def _timestamp(value: Any) -> float:
    if isinstance(value, bool):
        raise MeterPayloadError(f"timestamp must be RFC 3339 text or Unix seconds, got {value}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds <= 0:
            raise MeterPayloadError(f"timestamp {value!r} is not a time in Unix seconds")
        return seconds
    if not isinstance(value, str):
        raise MeterPayloadError(
            f"timestamp must be RFC 3339 text or Unix seconds, got {type(value).__name__}"
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MeterPayloadError(f"timestamp {value!r:.40} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise MeterPayloadError(f"timestamp {value!r:.40} has no time zone (add Z or +01:00)")
    return moment.timestamp()


class MqttMeter:
    """A grid meter fed by MQTT messages (`on_message`); `read()` gives the latest.

    `phases` is the grid phase wired to the meter's L1, L2, L3. `clock` (default: the
    system clock) relates the monotonic `now` of a message to the wall clock, which a
    payload's timestamp is compared with to know the reading's age. With `max_age`,
    a reading already older than that on arrival is kept but warned about (rate-limited):
    the publisher's clock or the bridge is behind, and the pool will be falling back.
    """

    def __init__(
        self,
        meter_id: str,
        topic: str,
        phases: tuple[int, ...] = (1, 2, 3),
        *,
        clock: Clock | None = None,
        max_age: float | None = None,
        log_interval: float = 60.0,
    ) -> None:
        if sorted(phases) != [1, 2, 3]:
            raise ValueError(f"meter {meter_id}: phases must order 1, 2, 3, got {phases}")
        self._id = meter_id
        self.topic = topic
        self.phases = phases
        self.latest: MeterSample | None = None
        self.last_error: str | None = None
        self.accepted = 0
        self.rejected = 0
        self._clock = clock or SystemClock()
        self.max_age = max_age
        self._now = 0.0  # monotonic time of the message being handled: the limiter's clock
        self._warn = LogLimiter(log, log_interval, clock=lambda: self._now)

    @property
    def meter_id(self) -> str:
        """The meter's id from the config."""
        return self._id

    def on_message(
        self, payload: bytes | bytearray | str, now: float, *, retained: bool = False
    ) -> bool:
        """Take a message from the meter's topic at monotonic time `now`.

        Returns True when it became the latest reading. Never raises: a bad payload is
        counted, kept in `last_error`, logged (rate-limited) and ignored.
        """
        self._now = now
        try:
            sample = self._sample(parse_meter_payload(payload), now, retained)
        except MeterPayloadError as exc:
            self.rejected += 1
            self.last_error = f"meter {self._id}: topic {self.topic}: {exc}"
            self._warn.warning("bad", "%s; message ignored", self.last_error)
            return False
        if sample is None:
            return False
        self.latest = sample
        self.last_error = None
        self.accepted += 1
        return True

    def _sample(self, parsed: MeterPayload, now: float, retained: bool) -> MeterSample | None:
        wall_now = wall_at(self._clock, now)
        if parsed.timestamp is None:
            if retained:
                raise MeterPayloadError("retained message without a timestamp: its age is unknown")
            measured, age = wall_now, 0.0
        else:
            # a timestamp ahead of our clock counts as "now": never younger than arrival
            measured = min(parsed.timestamp, wall_now)
            age = wall_now - measured
        sample = MeterSample(
            monotonic=now - age,
            timestamp=measured,
            current=to_grid(parsed.current, self.phases),
        )
        if self.latest is not None and sample.monotonic < self.latest.monotonic:
            self._warn.warning(
                "order",
                "meter %s: topic %s: a reading from %.1f s ago is older than the one held; ignored",
                self._id,
                self.topic,
                age,
            )
            return None
        if self.max_age is not None and age > self.max_age:
            self._warn.warning(
                "old",
                "meter %s: topic %s: reading is %.1f s old on arrival (max_age %g s); "
                "check the publisher's clock and the bridge",
                self._id,
                self.topic,
                age,
                self.max_age,
            )
        return sample

    async def read(self) -> MeterSample:
        """The latest reading; raises `MeterUnreachable` before the first good message."""
        if self.latest is None:
            reason = self.last_error or f"meter {self._id}: no reading on topic {self.topic} yet"
            raise MeterUnreachable(reason)
        return self.latest

    async def close(self) -> None:
        """Nothing to release: the MQTT connection is the bridge's."""
