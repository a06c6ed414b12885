"""The MQTT connection: availability, retained state, reconnects, and incoming messages.

aiomqtt 2.x has no automatic reconnect, so `run()` loops: connect, announce `online`,
subscribe, queue every retained topic the gateway owns (the broker may have lost
them), then send and receive until the connection drops; then wait with capped
exponential backoff and start over, logging one line per failed attempt.

Sending goes through an `Outbox` of prioritised, bounded lanes (retained state,
telemetry, replies, bulk) and is pipelined: up to `MAX_INFLIGHT` QoS 1 publishes await
their acknowledgement at once, so one slow round trip does not hold the rest.
Receiving goes through a bounded `IngressQueue` and is done in batches: every message
already received is handed to `on_message`, then `on_batch_end` runs once (the pools
apply the newest proposal per source there). Publishing while disconnected drops
telemetry and replies but keeps retained state for the next connect. The will
publishes `offline` on a crash. `stop()` stops reading and sending whatever is still
queued, then the session publishes `offline` itself and disconnects, within
`STOP_TIMEOUT` seconds however busy the broker is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.config import MqttConfig
from gateway.logsafe import DEFAULT_INTERVAL, LogLimiter, flush_all
from gateway.mqtt.connection import (
    AUTO_ORDER,
    fixed_protocol,
    make_client,
    unreachable,
    version_name,
)
from gateway.mqtt.ingress import IngressQueue
from gateway.mqtt.outbox import GROUPS, Lane, Outbox, Outgoing, Payload
from gateway.mqtt.qos0 import paho_client, publish_qos0
from gateway.mqtt.topics import Topics

log = logging.getLogger(__name__)

MessageHandler = Callable[[aiomqtt.Message], Awaitable[None]]
ConnectHook = Callable[[], Awaitable[None]]

MAX_INFLIGHT = 16
"""Publishes handed to the client at once; the client keeps at most 20 unacknowledged
on the wire (the broker's default receive maximum) and queues the rest."""
STOP_TIMEOUT = 2.0
"""Seconds a planned stop waits for `offline` to be acknowledged, and then for the
disconnect."""

ONLINE = "online"
OFFLINE = "offline"
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class MqttBridge:
    """One broker connection, kept up for the daemon's lifetime."""

    def __init__(
        self,
        config: MqttConfig,
        topics: Topics,
        subscriptions: Sequence[str] = (),
        on_message: MessageHandler | None = None,
        on_connect: ConnectHook | None = None,
        on_batch_end: ConnectHook | None = None,
    ) -> None:
        self._config = config
        self._topics = topics
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_batch_end = on_batch_end
        self._client: aiomqtt.Client | None = None
        self._outbox: Outbox | None = None
        self._incoming: IngressQueue | None = None
        self._retained: dict[str, tuple[Payload, int]] = {}
        self._fixed = fixed_protocol(config.protocol)
        self._protocol: aiomqtt.ProtocolVersion | None = self._fixed
        self._session_open = False
        self._stopping = False
        self._receiver: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()
        self._limiter = LogLimiter(log)
        self.connected = asyncio.Event()
        self.connections = 0
        self.received = 0
        self.dropped_incoming = 0
        self.unacknowledged = 0
        self.failed_attempts = 0

    @property
    def protocol(self) -> aiomqtt.ProtocolVersion | None:
        """The MQTT version in use (None until the first connect in `auto` mode)."""
        return self._protocol

    @property
    def is_v5(self) -> bool:
        return self._protocol == aiomqtt.ProtocolVersion.V5

    @property
    def outbox(self) -> Outbox | None:
        """The current session's outbox (None while disconnected), for its counters."""
        return self._outbox

    async def run(self) -> None:
        """Stay connected until `stop()`; never raises for broker trouble."""
        self._finished.clear()
        try:
            await self._run()
        finally:
            self._finished.set()

    async def _run(self) -> None:
        backoff = BACKOFF_START
        attempt = 0
        while not self._stopping:
            attempt += 1
            failure: tuple[aiomqtt.ProtocolVersion, Exception] | None = None
            for protocol in self._candidates():
                self._session_open = False
                try:
                    await self._session(protocol)
                except Exception as exc:  # whatever breaks a session, reconnect
                    if not isinstance(exc, aiomqtt.MqttError):
                        log.exception("MQTT session failed unexpectedly")
                    failure = (protocol, exc)
                finally:
                    self._client = None
                    self._incoming = None
                    self.connected.clear()
                if self._session_open or self._stopping or unreachable(failure):
                    break
            if self._session_open:
                backoff, attempt = BACKOFF_START, 0
            if self._stopping:
                break
            if failure is not None:
                self.failed_attempts += 1
                self._log_failure(failure, attempt, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _log_failure(
        self, failure: tuple[aiomqtt.ProtocolVersion, Exception], attempt: int, backoff: float
    ) -> None:
        """One line per failed attempt (rate-limited when it repeats), with a hint."""
        protocol, exc = failure
        where = f"{self._config.host}:{self._config.port}"
        if self._session_open:
            self._limiter.warning(
                "lost",
                "MQTT connection to %s lost (%s); reconnecting in %.1f s",
                where,
                exc,
                backoff,
            )
            return
        hint = (
            "check [mqtt] host and port, and that the broker is running"
            if unreachable(failure)
            else "check [mqtt] username, password, tls and protocol"
        )
        self._limiter.warning(
            ("connect", str(exc)),
            "MQTT broker %s (MQTT %s): %s (attempt %d); %s; retrying in %.1f s",
            where,
            version_name(protocol),
            exc,
            attempt,
            hint,
            backoff,
        )

    def _candidates(self) -> list[aiomqtt.ProtocolVersion]:
        """Protocols to try: the configured one; in auto mode the last that worked first."""
        if self._fixed is not None:
            return [self._fixed]
        if self._protocol is not None:
            return [self._protocol, *[p for p in AUTO_ORDER if p != self._protocol]]
        return list(AUTO_ORDER)

    async def _session(self, protocol: aiomqtt.ProtocolVersion) -> None:
        incoming = IngressQueue(self._config.max_queued_incoming)
        client = make_client(self._config, protocol, self._topics.bridge_state, OFFLINE, incoming)
        # Pipelined publishes are expected, not a sign of trouble.
        client.pending_calls_threshold = len(GROUPS) * MAX_INFLIGHT + 16
        async with client:
            self._session_open = True
            self._protocol = protocol
            self._client = client
            self._incoming = incoming
            self.connections += 1
            log.info("connected to MQTT broker %s:%s", self._config.host, self._config.port)
            await client.publish(self._topics.bridge_state, ONLINE, qos=1, retain=True)
            for topic in self._subscriptions:
                await self._subscribe(client, topic)
            outbox = Outbox(self._config.max_queued_outgoing)
            for topic, (payload, qos) in self._retained.items():
                outbox.put(Outgoing(topic, payload, qos, True))
            self._outbox = outbox
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as group:
                    workers = [group.create_task(self._send(client, outbox, g)) for g in GROUPS]
                    self._receiver = group.create_task(self._receive(client, incoming))
                    workers.append(self._receiver)
                    flusher = group.create_task(_flush_logs())
                    if self._stopping:  # stop() came while connecting
                        self._quiesce()
                    # They end when stop() closes the outbox and cancels the receiver.
                    await asyncio.wait(workers)
                    flusher.cancel()
            except* aiomqtt.MqttError as errors:
                raise errors.exceptions[0] from None
            finally:
                self._outbox = None
                self._receiver = None
            await self._say_offline(client)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """Publish `offline` (retained) before a planned disconnect, bounded in time."""
        try:
            await client.publish(
                self._topics.bridge_state, OFFLINE, qos=1, retain=True, timeout=STOP_TIMEOUT
            )
        except aiomqtt.MqttError as exc:
            log.warning("MQTT: `offline` not acknowledged on stop (%s)", exc)

    def _quiesce(self) -> None:
        """Stop sending and receiving; the session then says `offline` and ends."""
        if self._outbox is not None:
            self._outbox.close()
        if self._receiver is not None:
            self._receiver.cancel()

    async def _subscribe(self, client: aiomqtt.Client, topic: str) -> None:
        """QoS 1; on MQTT 5 with Retain As Published, so a retained publish is visible."""
        if self.is_v5:
            options = SubscribeOptions(qos=1, retainAsPublished=True)
            await client.subscribe(topic, options=options)
        else:
            await client.subscribe(topic, qos=1)

    async def _receive(self, client: aiomqtt.Client, incoming: IngressQueue) -> None:
        """Hand over messages batch by batch: all already received, then `on_batch_end`."""
        if self._on_connect is not None:
            await self._on_connect()
        async for first in client.messages:
            for message in incoming.batch(first):
                self.received += 1
                if self._on_message is not None:
                    await self._handle(message)
            if self._on_batch_end is not None:
                await self._call_batch_end()
            if incoming.dropped != self.dropped_incoming:
                self.dropped_incoming = incoming.dropped
                self._limiter.warning(
                    "ingress",
                    "MQTT ingress: %d incoming messages dropped so far, oldest first "
                    "(more than [mqtt] max_queued_incoming = %d waiting)",
                    incoming.dropped,
                    self._config.max_queued_incoming,
                )

    async def _send(self, client: aiomqtt.Client, outbox: Outbox, lanes: tuple[Lane, ...]) -> None:
        """Drain `lanes` of the outbox by priority, up to `MAX_INFLIGHT` publishes at once."""
        window = asyncio.Semaphore(MAX_INFLIGHT)
        paho = paho_client(client)
        handed = 0  # QoS 0 messages queued on the client since one was seen written
        async with asyncio.TaskGroup() as group:
            while (message := await outbox.get(lanes)) is not None:
                if message.qos == 0 and paho is not None and handed < MAX_INFLIGHT:
                    handed += 1
                    self._publish_qos0(paho, message)
                    continue
                await window.acquire()
                if message.qos == 0:
                    # Every MAX_INFLIGHT-th waits until written, and with it all before
                    # it: the client never holds more, the outbox's bound still holds.
                    handed = 0
                    await self._publish(client, message, window)
                    continue
                group.create_task(self._publish(client, message, window))

    def _publish_qos0(self, paho: Any, message: Outgoing) -> None:
        """QoS 0 needs no acknowledgement: queue it and go on (see `gateway.mqtt.qos0`)."""
        try:
            publish_qos0(paho, message, self.is_v5)
        except (ValueError, TypeError) as exc:  # a bad topic or payload: drop it alone
            self._limiter.warning("bad-publish", "not published to %r: %s", message.topic[:80], exc)

    async def _publish(
        self, client: aiomqtt.Client, message: Outgoing, window: asyncio.Semaphore
    ) -> None:
        try:
            await client.publish(
                message.topic,
                message.payload,
                qos=message.qos,
                retain=message.retain,
                properties=message.properties if self.is_v5 else None,
            )
        except aiomqtt.MqttCodeError:
            raise  # the client refused it: not connected any more
        except aiomqtt.MqttError as exc:  # no acknowledgement within the client's timeout
            # A busy broker answers late; the message is sent, the session stays up.
            self.unacknowledged += 1
            self._limiter.warning(
                "unacknowledged",
                "MQTT: %d QoS 1 publishes not acknowledged in time so far (%s); the broker is busy",
                self.unacknowledged,
                exc,
            )
        except (ValueError, TypeError) as exc:  # a bad topic or payload: drop it alone
            self._limiter.warning("bad-publish", "not published to %r: %s", message.topic[:80], exc)
        finally:
            window.release()

    async def _handle(self, message: aiomqtt.Message) -> None:
        assert self._on_message is not None
        try:
            await self._on_message(message)
        except aiomqtt.MqttError:
            raise
        except Exception:  # a handler bug must not take the connection down
            log.exception("error handling message on %s", str(message.topic)[:80])

    async def _call_batch_end(self) -> None:
        assert self._on_batch_end is not None
        try:
            await self._on_batch_end()
        except aiomqtt.MqttError:
            raise
        except Exception:  # a handler bug must not take the connection down
            log.exception("error applying a batch of messages")

    async def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
        lane: Lane | None = None,
    ) -> bool:
        """Queue a message for the broker; False when it was dropped.

        Never waits for the network, so a broker outage cannot stall the caller; a
        retained message is also kept for the next connect. `lane` defaults to STATE
        for retained, TELEMETRY for QoS 0 and REPLY for QoS 1 messages (see outbox).
        A full lane drops its oldest message; that is logged as a count.
        """
        if retain:
            self._retained[topic] = (payload, qos)
        outbox = self._outbox
        if outbox is None:
            return False
        if outbox.put(Outgoing(topic, payload, qos, retain, properties), lane):
            return True
        self._limiter.warning(
            "outbox",
            "MQTT outbox: dropped the oldest queued messages (so far: %s); the broker "
            "takes them slower than they come",
            ", ".join(f"{lane.name.lower()} {n}" for lane, n in outbox.dropped.items() if n),
        )
        return False

    def remember_retained(self, topic: str, payload: Payload, qos: int = 1) -> None:
        """Keep a retained message to send on every (re)connect."""
        self._retained[topic] = (payload, qos)

    async def clear_retained(self, topic: str) -> bool:
        """Clear a retained topic on the broker with an empty retained payload."""
        self._retained.pop(topic, None)
        outbox = self._outbox
        if outbox is None:
            return False
        return outbox.put(Outgoing(topic, None, 1, True))

    async def stop(self) -> None:
        """Planned stop: say `offline` ourselves (the will only covers crashes).

        Reading and sending stop at once, whatever is queued; the session publishes
        `offline` and disconnects. Returns when `run()` has ended, or after
        `2 * STOP_TIMEOUT` seconds at most.
        """
        self._stopping = True
        self._quiesce()
        if self._client is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), 2 * STOP_TIMEOUT)


async def _flush_logs() -> None:
    """Every few seconds, write the counts of rate-limited log lines that stopped."""
    while True:
        await asyncio.sleep(DEFAULT_INTERVAL / 2)
        flush_all()
