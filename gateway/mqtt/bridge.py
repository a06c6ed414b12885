"""The MQTT connection: availability, retained state, reconnects, and incoming messages.

aiomqtt 2.x has no automatic reconnect, so `run()` loops: connect, announce `online`,
republish every retained topic the gateway owns (the broker may have lost them),
subscribe, and hand each incoming message to the handler until the connection drops;
then wait with capped exponential backoff and start over. Publishing while
disconnected drops telemetry (it is periodic) but keeps retained state for the next
connect. The will publishes `offline` on a crash; `stop()` publishes it itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.properties import Properties

from gateway.config import MqttConfig
from gateway.mqtt.tls import tls_parameters
from gateway.mqtt.topics import Topics

log = logging.getLogger(__name__)

MessageHandler = Callable[[aiomqtt.Message], Awaitable[None]]
ConnectHook = Callable[[], Awaitable[None]]
Payload = str | bytes | None

OUTBOX_SIZE = 20_000
_Outgoing = tuple[str, "Payload", int, bool, "Properties | None"]

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
    ) -> None:
        self._config = config
        self._topics = topics
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connect = on_connect
        self._client: aiomqtt.Client | None = None
        self._outbox: asyncio.Queue[_Outgoing] | None = None
        self._retained: dict[str, tuple[Payload, int]] = {}
        self._fixed = _fixed_protocol(config.protocol)
        self._protocol: aiomqtt.ProtocolVersion | None = self._fixed
        self._session_open = False
        self._stopping = False
        self.connected = asyncio.Event()
        self.connections = 0

    @property
    def protocol(self) -> aiomqtt.ProtocolVersion | None:
        """The MQTT version in use (None until the first connect in `auto` mode)."""
        return self._protocol

    @property
    def is_v5(self) -> bool:
        return self._protocol == aiomqtt.ProtocolVersion.V5

    async def run(self) -> None:
        """Stay connected until `stop()`; never raises for broker trouble."""
        backoff = BACKOFF_START
        while not self._stopping:
            for protocol in self._candidates():
                self._session_open = False
                try:
                    await self._session(protocol)
                except Exception as exc:  # whatever breaks a session, reconnect
                    if not isinstance(exc, aiomqtt.MqttError):
                        log.exception("MQTT session failed unexpectedly")
                    if not self._stopping:
                        log.warning(
                            "MQTT broker %s:%s (MQTT %s): %s",
                            self._config.host,
                            self._config.port,
                            _version_name(protocol),
                            exc,
                        )
                finally:
                    self._client = None
                    self.connected.clear()
                if self._session_open or self._stopping:
                    backoff = BACKOFF_START
                    break
            if self._stopping:
                break
            log.info("reconnecting to the MQTT broker in %.1f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _candidates(self) -> list[aiomqtt.ProtocolVersion]:
        """Protocols to try: the configured one; in auto mode the last that worked first."""
        if self._fixed is not None:
            return [self._fixed]
        if self._protocol is not None:
            return [self._protocol, *[p for p in _AUTO_ORDER if p != self._protocol]]
        return list(_AUTO_ORDER)

    async def _session(self, protocol: aiomqtt.ProtocolVersion) -> None:
        client = self._make_client(protocol)
        async with client:
            self._session_open = True
            self._protocol = protocol
            self._client = client
            self.connections += 1
            log.info("connected to MQTT broker %s:%s", self._config.host, self._config.port)
            await client.publish(self._topics.bridge_state, ONLINE, qos=1, retain=True)
            for topic, (payload, qos) in list(self._retained.items()):
                await client.publish(topic, payload, qos=qos, retain=True)
            for topic in self._subscriptions:
                await client.subscribe(topic, qos=1)
            outbox: asyncio.Queue[_Outgoing] = asyncio.Queue(maxsize=OUTBOX_SIZE)
            self._outbox = outbox
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._send(client, outbox))
                    group.create_task(self._receive(client))
            except* aiomqtt.MqttError as errors:
                raise errors.exceptions[0] from None
            finally:
                self._outbox = None

    async def _receive(self, client: aiomqtt.Client) -> None:
        if self._on_connect is not None:
            await self._on_connect()
        async for message in client.messages:
            if self._on_message is not None:
                await self._handle(message)

    async def _send(self, client: aiomqtt.Client, outbox: asyncio.Queue[_Outgoing]) -> None:
        """Drain the outbox: publishers never wait for the network themselves."""
        task = asyncio.current_task()
        while True:
            topic, payload, qos, retain, properties = await outbox.get()
            try:
                await client.publish(
                    topic,
                    payload,
                    qos=qos,
                    retain=retain,
                    properties=properties if self.is_v5 else None,
                )
            except (ValueError, TypeError) as exc:  # a bad topic or payload: drop it alone
                log.warning("not published to %r: %s", topic, exc)
            # aiomqtt's publish can swallow a cancellation that lands while it waits;
            # honour it here, or the TaskGroup would wait for this task for ever.
            if task is not None and task.cancelling():
                raise asyncio.CancelledError

    async def _handle(self, message: aiomqtt.Message) -> None:
        assert self._on_message is not None
        try:
            await self._on_message(message)
        except aiomqtt.MqttError:
            raise
        except Exception:  # a handler bug must not take the connection down
            log.exception("error handling message on %s", message.topic)

    def _make_client(self, protocol: aiomqtt.ProtocolVersion) -> aiomqtt.Client:
        config = self._config
        kwargs: dict[str, Any] = {}
        if protocol == aiomqtt.ProtocolVersion.V311:
            kwargs["clean_session"] = True
        return aiomqtt.Client(
            config.host,
            port=config.port,
            username=config.username,
            password=config.resolved_password(),
            identifier=config.client_id,
            protocol=protocol,
            keepalive=config.keepalive,
            will=aiomqtt.Will(self._topics.bridge_state, OFFLINE, qos=1, retain=True),
            tls_params=tls_parameters(config),
            timeout=10,
            **kwargs,
        )

    async def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> bool:
        """Queue a message for the broker; False when it was dropped (not connected).

        Never waits for the network, so a broker outage cannot stall the caller; a
        retained message is also kept for the next connect.
        """
        if retain:
            self._retained[topic] = (payload, qos)
        outbox = self._outbox
        if outbox is None:
            return False
        try:
            outbox.put_nowait((topic, payload, qos, retain, properties))
        except asyncio.QueueFull:
            log.warning("MQTT outbox full: dropping a message to %s", topic)
            return False
        return True

    def remember_retained(self, topic: str, payload: Payload, qos: int = 1) -> None:
        """Keep a retained message to send on every (re)connect."""
        self._retained[topic] = (payload, qos)

    async def clear_retained(self, topic: str) -> bool:
        """Clear a retained topic on the broker with an empty retained payload."""
        self._retained.pop(topic, None)
        outbox = self._outbox
        if outbox is None:
            return False
        try:
            outbox.put_nowait((topic, None, 1, True, None))
        except asyncio.QueueFull:
            return False
        return True

    async def stop(self) -> None:
        """Planned stop: say `offline` ourselves (the will only covers crashes)."""
        self._stopping = True
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish(self._topics.bridge_state, OFFLINE, qos=1, retain=True), 5
                )


_AUTO_ORDER = (aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311)


def _version_name(protocol: aiomqtt.ProtocolVersion) -> str:
    return "5" if protocol == aiomqtt.ProtocolVersion.V5 else "3.1.1"


def _fixed_protocol(setting: str) -> aiomqtt.ProtocolVersion | None:
    if setting == "5":
        return aiomqtt.ProtocolVersion.V5
    if setting == "3.1.1":
        return aiomqtt.ProtocolVersion.V311
    return None
