"""Home Assistant discovery for grid meters and pool headroom (pure)."""

from __future__ import annotations

import json

from gateway.config import config_from_dict
from gateway.meters.homeassistant import meter_discovery
from gateway.mqtt.homeassistant import discovery_messages
from gateway.mqtt.topics import Topics

CONFIG = {
    "chargers": [{"id": "bay-1", "adapter": "simulated"}, {"id": "bay-2", "adapter": "simulated"}],
    "meters": [
        {"id": "grid", "adapter": "modbus", "profile": "abb-b23", "host": "10.0.0.9"},
        {"id": "house", "adapter": "mqtt", "topic": "home/meter"},
    ],
    "pools": [
        {"name": "garage", "chargers": ["bay-1"], "grid": {"meter": "grid", "fuse": 35.0}},
        {"name": "yard", "chargers": ["bay-2"]},
    ],
}


def test_meter_and_headroom_entities() -> None:
    config = config_from_dict(CONFIG)
    topics = Topics("ev-gateway")
    messages = dict(meter_discovery(config, topics))
    configs = {topic: json.loads(payload) for topic, payload in messages.items()}
    assert len(configs) == 2 * 3 + 3 + 1  # currents of two meters; one pool's headroom
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    existing = {json.loads(p)["unique_id"] for _, p in discovery_messages(config, topics)}
    assert not existing & set(unique_ids)

    current = configs["homeassistant/sensor/evgw_ev-gateway_meter_grid_current_l2/config"]
    assert current["state_topic"] == "ev-gateway/meters/grid/state"
    assert "value_json.current_per_phase.value_p2" in current["value_template"]
    assert (current["device_class"], current["unit_of_measurement"]) == ("current", "A")
    assert current["device"]["name"] == "Grid meter grid"
    assert current["device"]["model"] == "abb-b23"
    assert current["availability_topic"] == "ev-gateway/bridge/state"
    house = configs["homeassistant/sensor/evgw_ev-gateway_meter_house_current_l1/config"]
    assert house["device"]["model"] == "mqtt"

    headroom = configs["homeassistant/sensor/evgw_ev-gateway_pool_garage_headroom_l3/config"]
    assert headroom["state_topic"] == "ev-gateway/pools/garage/grid"
    assert headroom["value_template"] == "{{ value_json.headroom_p3 }}"
    assert headroom["device"] == {"identifiers": ["evgw_ev-gateway_pool_garage"]}
    stale = configs["homeassistant/binary_sensor/evgw_ev-gateway_pool_garage_grid_stale/config"]
    assert stale["device_class"] == "problem" and "value_json.stale" in stale["value_template"]
    assert not any("yard" in topic for topic in configs)  # no grid, no headroom


def test_no_meters_no_entities() -> None:
    config = config_from_dict({"chargers": [{"id": "bay-1", "adapter": "simulated"}]})
    assert list(meter_discovery(config, Topics("x"))) == []
