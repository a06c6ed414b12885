"""Home Assistant discovery: configs per pool and charger, and re-sent when HA restarts."""

from __future__ import annotations

import json

from gateway.config import config_from_dict
from gateway.mqtt.homeassistant import discovery_messages
from gateway.mqtt.topics import Topics
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config

CONFIG = {
    "chargers": [
        {"id": "bay-1", "adapter": "simulated"},
        {"id": "bay-2", "adapter": "simulated"},
    ],
    "pools": [{"name": "garage", "chargers": ["bay-1", "bay-2"]}],
}


def test_discovery_configs_describe_pool_and_chargers() -> None:
    messages = dict(discovery_messages(config_from_dict(CONFIG), Topics("ev-gateway")))
    configs = {topic: json.loads(payload) for topic, payload in messages.items()}
    assert all(topic.startswith("homeassistant/sensor/") for topic in configs)
    assert all(topic.endswith("/config") for topic in configs)
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids)) == 5 + 2 * 3
    power = next(c for c in configs.values() if c["unique_id"].endswith("pool_garage_power"))
    assert power["state_topic"] == "ev-gateway/pools/garage/power"
    assert power["device_class"] == "power" and power["unit_of_measurement"] == "W"
    assert power["state_class"] == "measurement"
    assert power["availability_topic"] == "ev-gateway/bridge/state"
    l2 = next(c for c in configs.values() if c["unique_id"].endswith("current_l2"))
    assert l2["value_template"] == "{{ value_json.value_p2 }}" and l2["unit_of_measurement"] == "A"
    status = next(c for c in configs.values() if c["unique_id"].endswith("bay-2_status"))
    assert status["state_topic"] == "ev-gateway/chargers/bay-2/state"
    assert status["device"]["via_device"] == "evgw_ev-gateway"
    assert set(status["options"]) == {"working", "not_working", "uncertain"}


async def test_discovery_is_sent_again_when_home_assistant_comes_online(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims:
        config = site_config(mosquitto, [modbus_charger("bay-1", sims[0])])
        config["homeassistant"] = {"enabled": True}
        async with running_gateway(config):
            topic = "homeassistant/sensor/+/config"
            first = await probe.wait_for(topic)
            assert first.json()["device"]["identifiers"]
            start = len(probe.messages)
            await probe.publish("homeassistant/status", "online")
            again = await probe.wait_for(topic, after=start)
            assert again.topic.startswith("homeassistant/sensor/")
