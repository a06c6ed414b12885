"""One grid meter at run time: its adapter, its latest reading, and who to tell.

A Modbus meter is polled on its own task (`MeterPoller`); an MQTT meter is fed by the
daemon with the messages of its topic. Either way every new reading is passed on to
the listeners (the pools whose fuse it measures), so a house load step reaches the
distributor at once, not at the next tick.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from gateway.clock import Clock
from gateway.config import MeterConfig
from gateway.meters.factory import open_meter
from gateway.meters.model import Meter, MeterSample
from gateway.meters.mqtt import MqttMeter
from gateway.meters.payloads import meter_state
from gateway.meters.poller import MeterPoller
from gateway.mqtt.payloads import JsonObject

Listener = Callable[[], None]


class MeterRuntime:
    """Owns one configured meter while the daemon runs."""

    def __init__(self, config: MeterConfig, meter: Meter, clock: Clock) -> None:
        self.id = config.id
        self.config = config
        self.meter = meter
        self.clock = clock
        self._listeners: list[Listener] = []
        self._poller: MeterPoller | None = None
        if not isinstance(meter, MqttMeter):
            self._poller = MeterPoller(
                meter, config.poll_interval, on_sample=self._sampled, clock=clock
            )

    def listen(self, listener: Listener) -> None:
        """Call `listener` after every new reading."""
        self._listeners.append(listener)

    @property
    def topic(self) -> str | None:
        """The MQTT topic an MQTT meter reads (None for a Modbus meter)."""
        return self.meter.topic if isinstance(self.meter, MqttMeter) else None

    @property
    def latest(self) -> MeterSample | None:
        """The latest reading, None before the first."""
        if self._poller is not None:
            return self._poller.latest
        assert isinstance(self.meter, MqttMeter)
        return self.meter.latest

    @property
    def error(self) -> str | None:
        """The last read or payload error, None while readings come in."""
        if self._poller is not None:
            return self._poller.error
        assert isinstance(self.meter, MqttMeter)
        return self.meter.last_error

    def on_message(self, payload: bytes, retained: bool) -> None:
        """A message on an MQTT meter's topic (never raises)."""
        if isinstance(self.meter, MqttMeter) and self.meter.on_message(
            payload, self.clock.now(), retained=retained
        ):
            self._sampled(self.meter.latest)

    def state(self, now: float, wall_now: float) -> JsonObject:
        """The `{base}/meters/{id}/state` payload at monotonic time `now`."""
        return meter_state(
            self.latest, now=now, wall_now=wall_now, max_age=self.config.max_age, error=self.error
        )

    async def run(self) -> None:
        """Poll a Modbus meter until cancelled; an MQTT meter needs no task."""
        if self._poller is not None:
            await self._poller.run()

    def _sampled(self, _sample: MeterSample | None) -> None:
        for listener in self._listeners:
            listener()


@contextlib.asynccontextmanager
async def open_meter_runtime(config: MeterConfig, clock: Clock) -> AsyncIterator[MeterRuntime]:
    """The runtime of one meter, its adapter opened and closed with it."""
    async with open_meter(config, clock) as meter:
        yield MeterRuntime(config, meter, clock)
