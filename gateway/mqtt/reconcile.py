"""Clearing retained topics the gateway no longer backs (removed chargers, pools, sources).

A retained message outlives the process that sent it: a charger taken out of the
config would keep its Home Assistant entities for ever. `reconcile_retained` opens a
short connection of its own, subscribes to the given filters, reads the retained
messages the broker delivers, and clears (empty retained payload) every topic for
which `keep(topic)` is false.

The end of the retained burst is found deterministically: after the subscriptions
are acknowledged, a marker message goes to a private topic; the broker queues it
behind the retained messages it already sent us, so when the marker comes back, all
of them have arrived. `settle` only bounds the wait if the marker never returns.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping

import aiomqtt

from gateway.config import GatewayConfig, MqttConfig
from gateway.mqtt.homeassistant import is_stale_discovery
from gateway.mqtt.tls import tls_parameters
from gateway.mqtt.topics import Topics

log = logging.getLogger(__name__)

SETTLE = 5.0
"""Longest wait (s) for the marker; the retained burst normally ends in milliseconds."""


def _client(mqtt: MqttConfig) -> aiomqtt.Client:
    """A clean, short-lived connection with a random client id (never the daemon's own)."""
    protocol = aiomqtt.ProtocolVersion.V5 if mqtt.protocol == "5" else aiomqtt.ProtocolVersion.V311
    return aiomqtt.Client(
        mqtt.host,
        port=mqtt.port,
        username=mqtt.username,
        password=mqtt.resolved_password(),
        identifier=f"evgw-reconcile-{secrets.token_hex(4)}",
        protocol=protocol,
        keepalive=mqtt.keepalive,
        tls_params=tls_parameters(mqtt),
        timeout=10,
    )


async def reconcile_retained(
    mqtt: MqttConfig,
    filters: list[str],
    keep: Callable[[str], bool],
    settle: float = SETTLE,
) -> list[str]:
    """Clear every retained topic under `filters` that `keep` rejects; the cleared topics.

    Raises `aiomqtt.MqttError` when the broker cannot be reached; the caller decides
    whether that matters (the daemon logs it and tries again at its next connect).
    """
    marker = f"{mqtt.base_topic}/bridge/reconcile/{secrets.token_hex(8)}"
    retained: dict[str, bool] = {}
    async with _client(mqtt) as client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)
        await client.subscribe(marker, qos=1)
        await client.publish(marker, b"end", qos=1)
        try:
            async with asyncio.timeout(settle):
                async for message in client.messages:
                    topic = str(message.topic)
                    if topic == marker:
                        break
                    if message.retain:
                        # An empty payload is a clear that passed by: nothing to do.
                        retained[topic] = bool(message.payload)
        except TimeoutError:
            log.warning("retained-topic check: no marker within %.1f s; using what came", settle)
        cleared = sorted(t for t, present in retained.items() if present and not keep(t))
        for topic in cleared:
            await client.publish(topic, None, qos=1, retain=True)
    if cleared:
        log.info("cleared %d retained topic(s) no longer backed: %s", len(cleared),
                 ", ".join(cleared))
    return cleared


def backed_by(
    config: GatewayConfig,
    topics: Topics,
    discovery: set[str],
    sources: Mapping[str, Callable[[], list[str]]],
) -> Callable[[str], bool]:
    """What the running gateway still backs: `keep(topic)` for `reconcile_retained`.

    Home Assistant configs that `discovery` (the current set) holds or that are not
    this gateway's; `{base}/pools/{pool}/...` of configured pools, and of those
    `power_status/{source}` only for `sources[pool]()`, the live proposals asked at the
    moment of judging: a proposal that arrives while the retained burst is read has
    its status published retained meanwhile, and that status must survive.
    """

    def keep(topic: str) -> bool:
        if not topic.startswith(topics.base + "/"):
            return not is_stale_discovery(config, topic, discovery)
        parts = topic[len(topics.base) + 1 :].split("/")
        if len(parts) < 3 or parts[0] != "pools":
            return True  # not a pool topic: not ours to judge
        if parts[1] not in sources:
            return False
        if parts[2] == "power_status":
            return len(parts) == 4 and parts[3] in sources[parts[1]]()
        return True

    return keep
