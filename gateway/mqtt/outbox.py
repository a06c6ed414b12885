"""What the gateway sends, in lanes: retained state, telemetry, replies, and bulk.

Publishers never wait for the network: they put a message in a lane and go on. The
sender takes from the lanes in strict priority order, so a flood of replies can delay
neither retained state nor telemetry:

1. `STATE` (retained topics) keeps only the latest payload per topic: a topic that
   changes faster than the broker takes it is sent once, with its newest value.
   Bounded by the number of retained topics the gateway owns.
2. `TELEMETRY` (periodic, QoS 0): bounded; when full the oldest message is dropped,
   since the newest figures are the ones worth sending.
3. `REPLY` (answers to proposals): bounded; when full the oldest reply is dropped
   (its requester has most likely given up on it already).
4. `BULK` (low-value notices such as "superseded" replies): small; dropped first.

Every drop is counted per lane (`dropped`) so the caller can log a count instead of a
line per message. Pure asyncio, no MQTT: the bridge drains it.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass

from paho.mqtt.properties import Properties

Payload = str | bytes | None


class Lane(enum.IntEnum):
    """Lanes in the order they are served (lower value first)."""

    STATE = 0
    TELEMETRY = 1
    REPLY = 2
    BULK = 3


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish."""

    topic: str
    payload: Payload
    qos: int
    retain: bool
    properties: Properties | None = None


def lane_for(qos: int, retain: bool) -> Lane:
    """The default lane: retained -> STATE, QoS 0 -> TELEMETRY, else REPLY."""
    if retain:
        return Lane.STATE
    return Lane.TELEMETRY if qos == 0 else Lane.REPLY


class Outbox:
    """Bounded, prioritised queue of outgoing messages (see module docstring)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"outbox size is {size}; give at least 1")
        self._state: dict[str, Outgoing] = {}
        self._queues: dict[Lane, deque[Outgoing]] = {
            Lane.TELEMETRY: deque(),
            Lane.REPLY: deque(),
            Lane.BULK: deque(),
        }
        self._limits = {
            Lane.TELEMETRY: size,
            Lane.REPLY: size,
            Lane.BULK: max(1, size // 10),
        }
        self.dropped: dict[Lane, int] = dict.fromkeys(Lane, 0)
        self.put_count: dict[Lane, int] = dict.fromkeys(Lane, 0)
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._state) + sum(len(q) for q in self._queues.values())

    def put(self, message: Outgoing, lane: Lane | None = None) -> bool:
        """Queue `message`; False when that pushed an older message out of its lane.

        A retained topic's newer value replacing its queued older one is not a drop.
        """
        lane = lane_for(message.qos, message.retain) if lane is None else lane
        self.put_count[lane] += 1
        self._ready.set()
        if lane is Lane.STATE:
            # Only the newest value of a retained topic matters; it keeps its place.
            self._state[message.topic] = message
            return True
        queue = self._queues[lane]
        queue.append(message)
        if len(queue) > self._limits[lane]:
            queue.popleft()
            self.dropped[lane] += 1
            return False
        return True

    def get_nowait(self) -> Outgoing | None:
        """The next message by lane priority, or None when every lane is empty."""
        if self._state:
            topic = next(iter(self._state))
            return self._state.pop(topic)
        for queue in self._queues.values():
            if queue:
                return queue.popleft()
        self._ready.clear()
        return None

    async def get(self) -> Outgoing:
        """Wait for the next message by lane priority."""
        while True:
            message = self.get_nowait()
            if message is not None:
                return message
            await self._ready.wait()
