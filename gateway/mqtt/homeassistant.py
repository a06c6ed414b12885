"""Home Assistant MQTT discovery: retained sensor configs for every pool and charger.

Single-component discovery (`{prefix}/sensor/{unique_id}/config`), which every Home
Assistant version understands. Each entity has a stable `unique_id`, a `device` block
(the pool or charger, linked `via_device` to the gateway) and `{base}/bridge/state`
as availability, so everything shows unavailable when the gateway goes offline. The
daemon publishes these on every connect and again when `{prefix}/status` says
`online` (Home Assistant restarted and lost its entities).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gateway import __version__
from gateway.config import GatewayConfig
from gateway.mqtt.topics import Topics

ORIGIN = {"name": "ev-gateway", "sw_version": __version__}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def discovery_messages(config: GatewayConfig, topics: Topics) -> Iterator[tuple[str, str]]:
    """(topic, JSON payload) of every discovery config, to publish retained."""
    import json

    prefix = config.homeassistant.discovery_prefix
    gateway_id = f"evgw_{_slug(config.mqtt.base_topic)}"
    gateway_device = {
        "identifiers": [gateway_id],
        "name": "EV gateway",
        "manufacturer": "ev-gateway",
        "model": "EV-charger pool gateway",
        "sw_version": __version__,
    }
    common = {"availability_topic": topics.bridge_state, "origin": ORIGIN}
    first = True
    for pool in config.effective_pools():
        pool_id = f"{gateway_id}_pool_{_slug(pool.name)}"
        device: dict[str, Any] = {
            "identifiers": [pool_id],
            "name": f"EV pool {pool.name}",
            "via_device": gateway_id,
        }
        if first:  # the gateway device itself is declared by the first entity
            device = gateway_device | {"identifiers": [gateway_id, pool_id]}
            first = False
        power_topic = topics.pool(pool.name, "power")
        current_topic = topics.pool(pool.name, "current_per_phase")
        entities = [
            _sensor(pool_id, "power", "Power", power_topic, "{{ value_json.value }}", "power", "W"),
            *(
                _sensor(
                    pool_id,
                    f"current_l{n}",
                    f"Current L{n}",
                    current_topic,
                    f"{{{{ value_json.value_p{n} }}}}",
                    "current",
                    "A",
                )
                for n in (1, 2, 3)
            ),
            _sensor(
                pool_id,
                "target_power",
                "Target power",
                topics.pool(pool.name, "power_distribution_results"),
                "{{ value_json.request.power }}",
                "power",
                "W",
            ),
        ]
        for unique_id, body in entities:
            payload = {**body, **common, "device": device}
            yield f"{prefix}/sensor/{unique_id}/config", json.dumps(payload)
    for charger in config.chargers:
        charger_id = f"{gateway_id}_charger_{_slug(charger.id)}"
        device = {
            "identifiers": [charger_id],
            "name": f"EV charger {charger.id}",
            "model": charger.profile or charger.adapter,
            "via_device": gateway_id,
        }
        state = topics.charger_state(charger.id)
        entities = [
            _sensor(
                charger_id, "power", "Power", state, "{{ value_json.active_power }}", "power", "W"
            ),
            _sensor(
                charger_id,
                "current_limit",
                "Current limit",
                state,
                "{{ value_json.current_limit }}",
                "current",
                "A",
            ),
            (
                f"{charger_id}_status",
                {
                    "name": "Status",
                    "unique_id": f"{charger_id}_status",
                    "object_id": f"{charger_id}_status",
                    "state_topic": state,
                    "value_template": "{{ value_json.status }}",
                    "device_class": "enum",
                    "options": ["working", "not_working", "uncertain"],
                },
            ),
        ]
        for unique_id, body in entities:
            payload = {**body, **common, "device": device}
            yield f"{prefix}/sensor/{unique_id}/config", json.dumps(payload)


def _sensor(
    device_id: str,
    key: str,
    name: str,
    state_topic: str,
    template: str,
    device_class: str,
    unit: str,
) -> tuple[str, dict[str, Any]]:
    unique_id = f"{device_id}_{key}"
    return unique_id, {
        "name": name,
        "unique_id": unique_id,
        "object_id": unique_id,
        "state_topic": state_topic,
        "value_template": template,
        "device_class": device_class,
        "unit_of_measurement": unit,
        "state_class": "measurement",
        "expire_after": 60,
    }
