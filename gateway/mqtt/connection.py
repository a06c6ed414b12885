"""Building the MQTT client for one session, and the facts about protocol versions.

Kept apart from the bridge so the session logic reads on its own: which protocol to
try, how a failure is classified (broker unreachable, or refused by it), and the
aiomqtt client with our TLS, will and bounded incoming queue.
"""

from __future__ import annotations

from typing import Any

import aiomqtt

from gateway.config import MqttConfig
from gateway.mqtt.ingress import IngressQueue
from gateway.mqtt.tls import tls_parameters

AUTO_ORDER = (aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311)
"""Protocols tried in `auto` mode, in this order."""


def make_client(
    config: MqttConfig,
    protocol: aiomqtt.ProtocolVersion,
    will_topic: str,
    will_payload: str,
    incoming: IngressQueue,
) -> aiomqtt.Client:
    """An aiomqtt client for one session; received messages go into `incoming`."""
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
        will=aiomqtt.Will(will_topic, will_payload, qos=1, retain=True),
        tls_params=tls_parameters(config),
        timeout=10,
        queue_type=_QueueFactory(incoming),  # type: ignore[arg-type]
        max_queued_incoming_messages=config.max_queued_incoming,
        **kwargs,
    )


class _QueueFactory:
    """Hands the client our own `IngressQueue` when it asks for a queue of its type."""

    def __init__(self, queue: IngressQueue) -> None:
        self._queue = queue

    def __call__(self, maxsize: int = 0) -> IngressQueue:
        return self._queue


def unreachable(failure: tuple[aiomqtt.ProtocolVersion, Exception] | None) -> bool:
    """True when the broker could not be reached at all (no protocol answer to try)."""
    if failure is None:
        return False
    exc = failure[1]
    return isinstance(exc, aiomqtt.MqttError) and not isinstance(exc, aiomqtt.MqttCodeError)


def version_name(protocol: aiomqtt.ProtocolVersion) -> str:
    """ "5" or "3.1.1", as the config spells it."""
    return "5" if protocol == aiomqtt.ProtocolVersion.V5 else "3.1.1"


def fixed_protocol(setting: str) -> aiomqtt.ProtocolVersion | None:
    """The configured protocol; None for `auto`."""
    if setting == "5":
        return aiomqtt.ProtocolVersion.V5
    if setting == "3.1.1":
        return aiomqtt.ProtocolVersion.V311
    return None
