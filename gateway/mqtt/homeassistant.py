"""Home Assistant MQTT discovery: a device per pool and per charger, usable with no YAML.

Single-component discovery (`{prefix}/{component}/{unique_id}/config`, retained),
which every Home Assistant version understands. The gateway is a device of its own
(a connectivity sensor on `{base}/bridge/state`); each pool and each charger is a
device linked to it with `via_device`.

- Pool: power, current per grid phase, the target power (from the retained
  `{base}/pools/{pool}/target`), a `number` "Power limit" whose value becomes a
  lasting proposal of source `homeassistant` (shown from that source's retained
  `power_status`), and a button "Automatic" that withdraws it.
- Charger: power, current per phase it is wired to, current limit, status, plugged
  and energy (for the Energy dashboard).

Every entity is unavailable while `{base}/bridge/state` is not `online`; a charger's
measurements also while its data cannot be trusted (see `charger_availability`). No
entity uses `expire_after`: the topics they read are either retained or published at
every resampling tick together with the charger's status. The daemon publishes these
configs on every connect and again when `{prefix}/status` says `online`, and clears
the configs of chargers and pools that left the config (`stale_discovery_topic`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from gateway import __version__
from gateway.config import GatewayConfig, PoolConfig
from gateway.mqtt.topics import Topics

ORIGIN = {"name": "ev-gateway", "sw": __version__}
SOURCE = "homeassistant"
"""The proposal source of the "Power limit" number."""
COMPONENTS = ("sensor", "binary_sensor", "number", "button")
PLUGGED_STATES = ("ev_plugged", "ev_locked")
STATUS_OPTIONS = ["working", "not_working", "uncertain"]

Entity = tuple[str, str, dict[str, Any]]
"""(component, unique_id, config without device and availability)."""


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def gateway_id(config: GatewayConfig) -> str:
    """The gateway device's identifier; every unique_id starts with it and `_`."""
    return f"evgw_{slug(config.mqtt.base_topic)}"


def charger_availability(state_topic: str) -> dict[str, Any]:
    """Availability of a charger's measurements, from its state message.

    Offline while the charger is `not_working` and either never answered (measured
    fields null) or its last read failed (`error` set): its figures are then stale.
    An idle charger (not_working with fresh data) stays available.
    """
    return {
        "topic": state_topic,
        "value_template": (
            "{{ 'offline' if value_json.status == 'not_working' and "
            "(value_json.active_power is none or value_json.error is not none) "
            "else 'online' }}"
        ),
    }


def discovery_messages(config: GatewayConfig, topics: Topics) -> Iterator[tuple[str, str]]:
    """(topic, JSON payload) of every discovery config, to publish retained."""
    prefix = config.homeassistant.discovery_prefix
    gid = gateway_id(config)
    bridge = {"topic": topics.bridge_state}
    gateway_device = {
        "identifiers": [gid],
        "name": "EV gateway",
        "manufacturer": "ev-gateway",
        "model": "EV-charger pool gateway",
        "sw_version": __version__,
    }
    connectivity = {
        "name": "Connected",
        "state_topic": topics.bridge_state,
        "payload_on": "online",
        "payload_off": "offline",
        "device_class": "connectivity",
        "entity_category": "diagnostic",
    }
    bridge_entity = ("binary_sensor", f"{gid}_bridge", connectivity)
    yield discovery_message(prefix, bridge_entity, gateway_device, [])
    for pool in config.effective_pools():
        device = {"identifiers": [f"{gid}_pool_{slug(pool.name)}"], "name": f"EV pool {pool.name}"}
        device |= {"via_device": gid, "manufacturer": "ev-gateway", "model": "Charger pool"}
        for entity in pool_entities(config, topics, pool, device["identifiers"][0]):
            yield discovery_message(prefix, entity, device, [bridge])
    for charger in config.chargers:
        cid = f"{gid}_charger_{slug(charger.id)}"
        device = {"identifiers": [cid], "name": f"EV charger {charger.id}", "via_device": gid}
        device |= {"manufacturer": "ev-gateway", "model": charger.profile or charger.adapter}
        state = topics.charger_state(charger.id)
        measured = [bridge, charger_availability(state)]
        for entity in charger_entities(cid, state, tuple(charger.phases)):
            availability = [bridge] if entity[1].endswith("_status") else measured
            yield discovery_message(prefix, entity, device, availability)


def is_stale_discovery(config: GatewayConfig, topic: str, current: set[str]) -> bool:
    """True for a retained config topic of this gateway that the config no longer backs."""
    prefix = config.homeassistant.discovery_prefix + "/"
    if not topic.startswith(prefix) or topic in current or not topic.endswith("/config"):
        return False
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 3 or parts[0] not in COMPONENTS:
        return False
    gid = gateway_id(config)
    return parts[1] == f"{gid}_bridge" or parts[1].startswith(
        (f"{gid}_pool_", f"{gid}_charger_", f"{gid}_meter_")
    )


def discovery_filters(config: GatewayConfig) -> list[str]:
    """Subscription filters that cover every config topic this module publishes."""
    prefix = config.homeassistant.discovery_prefix
    return [f"{prefix}/{component}/+/config" for component in COMPONENTS]


def pool_entities(
    config: GatewayConfig, topics: Topics, pool: PoolConfig, device_id: str
) -> list[Entity]:
    """A pool's figures, its target and the controls of the `homeassistant` source."""
    power = topics.pool(pool.name, "power")
    currents = topics.pool(pool.name, "current_per_phase")
    rated = config.rated_power(pool)
    # Home Assistant sends the number as text; the template wraps it in a lasting proposal.
    proposal = (
        f'{{"source": "{SOURCE}", "priority": {config.homeassistant.priority}, '
        '"power": {{ value }}, "expires_in": null}'
    )
    proposed = "value_json.proposed_power"
    limit = {
        "name": "Power limit",
        "command_topic": topics.propose_power(pool.name),
        "command_template": proposal,
        "state_topic": topics.power_status(pool.name, SOURCE),
        # The topic is cleared (empty payload) when the proposal is withdrawn: unknown.
        "value_template": (
            f"{{{{ {proposed} if value_json is defined and {proposed} is not none "
            "else 'None' }}"
        ),
        "min": 0,
        "max": rated,
        "step": 100 if rated >= 10_000 else 10,
        "mode": "box",
        "device_class": "power",
        "unit_of_measurement": "W",
        "icon": "mdi:speedometer",
        "qos": 1,
        "retain": False,
    }
    automatic = {
        "name": "Automatic",
        "command_topic": topics.propose_power(pool.name),
        "payload_press": json.dumps({"source": SOURCE, "power": None}),
        "icon": "mdi:auto-mode",
        "qos": 1,
        "retain": False,
    }
    return [
        numeric_sensor(device_id, "power", "Power", power, "value_json.value", "power"),
        *(
            numeric_sensor(device_id, f"current_l{n}", f"Current L{n}", currents,
                     f"value_json.value_p{n}", "current")
            for n in (1, 2, 3)
        ),
        numeric_sensor(device_id, "target_power", "Target power", topics.pool(pool.name, "target"),
                 "value_json.target_power", "power"),
        ("number", f"{device_id}_power_limit", limit),
        ("button", f"{device_id}_automatic", automatic),
    ]


def charger_entities(device_id: str, state: str, phases: tuple[int, ...]) -> list[Entity]:
    """A charger's measurements from its state message, one entity per figure."""
    plugged = " or ".join(f"value_json.cable_state == '{s}'" for s in PLUGGED_STATES)
    return [
        numeric_sensor(device_id, "power", "Power", state, "value_json.active_power", "power"),
        *(
            numeric_sensor(device_id, f"current_l{p}", f"Current L{p}", state,
                     f"value_json.current_per_phase.value_p{p}", "current",
                     guard="value_json.current_per_phase")
            for p in sorted(phases)
        ),
        numeric_sensor(device_id, "current_limit", "Current limit", state,
                 "value_json.current_limit", "current"),
        numeric_sensor(device_id, "energy", "Energy", state, "value_json.energy", "energy"),
        (
            "binary_sensor",
            f"{device_id}_plugged",
            {
                "name": "Plugged",
                "state_topic": state,
                "value_template": f"{{{{ 'ON' if {plugged} else 'OFF' }}}}",
                "device_class": "plug",
            },
        ),
        (
            "sensor",
            f"{device_id}_status",
            {
                "name": "Status",
                "state_topic": state,
                "value_template": "{{ value_json.status }}",
                "device_class": "enum",
                "options": STATUS_OPTIONS,
            },
        ),
        (
            "sensor",
            f"{device_id}_ev_resume",
            {
                "name": "EV resume",
                "state_topic": state,
                "value_template": "{{ value_json.ev_resume | default('ok') }}",
                "device_class": "enum",
                "options": RESUME_OPTIONS,
                "icon": "mdi:sleep",
            },
        ),
    ]


RESUME_OPTIONS = ["ok", "waking", "stalled"]
"""Whether the EV took power after its last start (`ev_resume` in the charger state)."""


UNITS = {"power": ("W", 0), "current": ("A", 1), "energy": ("Wh", 0)}
"""Unit and suggested display precision per device class."""


def numeric_sensor(
    device_id: str,
    key: str,
    name: str,
    state_topic: str,
    field: str,
    device_class: str,
    guard: str | None = None,
) -> Entity:
    """A numeric sensor reading one JSON field; null (or a null `guard`) is unknown.

    `device_class` is power, current or energy: it picks the unit, the state class and
    the suggested display precision.
    """
    unit, precision = UNITS[device_class]
    test = f"{guard} is not none and {field} is not none" if guard else f"{field} is not none"
    unique_id = f"{device_id}_{key}"
    return "sensor", unique_id, {
        "name": name,
        "state_topic": state_topic,
        "value_template": f"{{{{ {field} if {test} else 'None' }}}}",
        "device_class": device_class,
        "unit_of_measurement": unit,
        "state_class": "total_increasing" if device_class == "energy" else "measurement",
        "suggested_display_precision": precision,
    }


def discovery_message(
    prefix: str, entity: Entity, device: dict[str, Any], availability: list[dict[str, Any]]
) -> tuple[str, str]:
    """A config topic and payload: the entity with its device, origin and availability."""
    component, unique_id, body = entity
    payload: dict[str, Any] = {
        **body,
        "unique_id": unique_id,
        "object_id": unique_id,
        "device": device,
        "origin": ORIGIN,
    }
    if availability:
        payload["availability"] = availability
        payload["availability_mode"] = "all"
    return f"{prefix}/{component}/{unique_id}/config", json.dumps(payload)
