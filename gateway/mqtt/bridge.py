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
publishes `offline` on a crash; `stop()` publishes it itself, bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.config import MqttConfig
from gateway.logsafe import DEFAULT_INTERVAL, LogLimiter, flush_all
from gateway.mqtt.ingress import IngressQueue
from gateway.mqtt.outbox import Lane, Outbox, Outgoing, Payload
from gateway.mqtt.qos0 import paho_client, publish_qos0
from gateway.mqtt.topics import Topics

log = logging.getLogger(__name__)

MessageHandler = Callable[[aiomqtt.Message], Awaitable[None]]
ConnectHook = Callable[[], Awaitable[None]]

MAX_INFLIGHT = 64
"""Publishes handed to the client at once; the client keeps at most 20 unacknowledged
on the wire (the broker's default receive maximum) and queues the rest."""
STOP_TIMEOUT = 2.0
"""Seconds `stop()` waits for `offline` to be acknowledged."""

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
        self._fixed = _fixed_protocol(config.protocol)
        self._protocol: aiomqtt.ProtocolVersion | None = self._fixed
        self._session_open = False
        self._stopping = False
        self._limiter = LogLimiter(log)
        self.connected = asyncio.Event()
        self.connections = 0
        self.received = 0
        self.dropped_incoming = 0

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
                if self._session_open or self._stopping or _unreachable(failure):
                    break
            if self._session_open:
                backoff, attempt = BACKOFF_START, 0
            if self._stopping:
                break
            if failure is not None:
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
            if _unreachable(failure)
            else "check [mqtt] username, password, tls and protocol"
        )
        self._limiter.warning(
            ("connect", str(exc)),
            "MQTT broker %s (MQTT %s): %s (attempt %d); %s; retrying in %.1f s",
            where,
            _version_name(protocol),
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
            return [self._protocol, *[p for p in _AUTO_ORDER if p != self._protocol]]
        return list(_AUTO_ORDER)

    async def _session(self, protocol: aiomqtt.ProtocolVersion) -> None:
        incoming = IngressQueue(self._config.max_queued_incoming)
        client = self._make_client(protocol, incoming)
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
                    group.create_task(self._send(client, outbox))
                    group.create_task(self._receive(client, incoming))
                    group.create_task(_flush_logs())
            except* aiomqtt.MqttError as errors:
                raise errors.exceptions[0] from None
            finally:
                self._outbox = None

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

    async def _send(self, client: aiomqtt.Client, outbox: Outbox) -> None:
        """Drain the outbox by priority, up to `MAX_INFLIGHT` publishes at once."""
        window = asyncio.Semaphore(MAX_INFLIGHT)
        paho = paho_client(client)
        handed = 0  # QoS 0 messages queued on the client since one was seen written
        async with asyncio.TaskGroup() as group:
            while True:
                message = await outbox.get()
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

    def _make_client(
        self, protocol: aiomqtt.ProtocolVersion, incoming: IngressQueue
    ) -> aiomqtt.Client:
        config = self._config
        tls: aiomqtt.TLSParameters | None = None
        if config.tls is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(config.tls.ca_file) if config.tls.ca_file else None,
                certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
                keyfile=str(config.tls.key_file) if config.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        kwargs: dict[str, Any] = {}
        if protocol == aiomqtt.ProtocolVersion.V311:
            kwargs["clean_session"] = True
        client = aiomqtt.Client(
            config.host,
            port=config.port,
            username=config.username,
            password=config.resolved_password(),
            identifier=config.client_id,
            protocol=protocol,
            keepalive=config.keepalive,
            will=aiomqtt.Will(self._topics.bridge_state, OFFLINE, qos=1, retain=True),
            tls_params=tls,
            timeout=10,
            queue_type=_QueueFactory(incoming),  # type: ignore[arg-type]
            max_queued_incoming_messages=config.max_queued_incoming,
            **kwargs,
        )
        # Pipelined publishes are expected, not a sign of trouble.
        client.pending_calls_threshold = MAX_INFLIGHT + 16
        return client

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

        Bounded by `STOP_TIMEOUT` whatever is still queued: `offline` goes straight to
        the client, ahead of the outbox.
        """
        self._stopping = True
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish(self._topics.bridge_state, OFFLINE, qos=1, retain=True),
                    STOP_TIMEOUT,
                )


async def _flush_logs() -> None:
    """Every few seconds, write the counts of rate-limited log lines that stopped."""
    while True:
        await asyncio.sleep(DEFAULT_INTERVAL / 2)
        flush_all()


class _QueueFactory:
    """Hands the client our own `IngressQueue` when it asks for a queue of its type."""

    def __init__(self, queue: IngressQueue) -> None:
        self._queue = queue

    def __call__(self, maxsize: int = 0) -> IngressQueue:
        return self._queue


def _unreachable(failure: tuple[aiomqtt.ProtocolVersion, Exception] | None) -> bool:
    """True when the broker could not be reached at all (no protocol answer to try)."""
    if failure is None:
        return False
    exc = failure[1]
    return isinstance(exc, aiomqtt.MqttError) and not isinstance(exc, aiomqtt.MqttCodeError)


_AUTO_ORDER = (aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311)


def _version_name(protocol: aiomqtt.ProtocolVersion) -> str:
    return "5" if protocol == aiomqtt.ProtocolVersion.V5 else "3.1.1"


def _fixed_protocol(setting: str) -> aiomqtt.ProtocolVersion | None:
    if setting == "5":
        return aiomqtt.ProtocolVersion.V5
    if setting == "3.1.1":
        return aiomqtt.ProtocolVersion.V311
    return None
