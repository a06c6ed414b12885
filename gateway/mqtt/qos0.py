"""QoS 0 publishes without waiting: straight into the paho client's send queue.

Awaiting aiomqtt's `publish()` for a QoS 0 message costs a task, an event and a
timeout only to learn that the message left the socket; at a thousand chargers'
states a second that was a large share of the daemon's CPU. QoS 0 promises nothing
more than "handed to the connection", so the bridge hands it over and goes on; every
`MAX_INFLIGHT`-th QoS 0 message it awaits the public way, so the client's own queue
never runs far ahead of the socket and the outbox's bound and drop policy still hold.
"""

from __future__ import annotations

from typing import Any

import aiomqtt

from gateway.mqtt.outbox import Outgoing


def paho_client(client: aiomqtt.Client) -> Any:
    """The paho client inside aiomqtt's (a private attribute of aiomqtt 2.x), or None
    when an upgrade renamed it; QoS 0 then goes the public, slower way."""
    paho = getattr(client, "_client", None)
    return paho if callable(getattr(paho, "publish", None)) else None


def publish_qos0(paho: Any, message: Outgoing, v5: bool) -> None:
    """Queue one QoS 0 message on the connection.

    Raises ValueError/TypeError for a topic or payload the client refuses, and
    `aiomqtt.MqttCodeError` when the connection is gone (as aiomqtt's publish would).
    """
    info = paho.publish(
        message.topic, message.payload, 0, message.retain, message.properties if v5 else None
    )
    if info.rc != 0:
        raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
