"""Home Assistant discovery: devices, entities and controls per pool and charger."""

from __future__ import annotations

import json
from typing import Any

from gateway.config import config_from_dict
from gateway.mqtt.homeassistant import discovery_messages, is_stale_discovery
from gateway.mqtt.topics import Topics
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config

CONFIG: dict[str, Any] = {
    "chargers": [
        {"id": "bay-1", "adapter": "simulated", "max_current": 16},
        {"id": "bay-2", "adapter": "simulated", "max_current": 32, "phases": [2]},
        {"id": "bay-3", "adapter": "simulated"},
    ],
    "pools": [
        {"name": "garage", "chargers": ["bay-1", "bay-2"]},
        {"name": "street", "chargers": ["bay-3"]},
    ],
    "homeassistant": {"priority": 42},
}


def _configs(config: dict[str, Any] = CONFIG) -> dict[str, dict[str, Any]]:
    messages = discovery_messages(config_from_dict(config), Topics("ev-gateway"))
    return {topic: json.loads(payload) for topic, payload in messages}


def _by_id(configs: dict[str, dict[str, Any]], suffix: str) -> dict[str, Any]:
    (found,) = [c for c in configs.values() if c["unique_id"].endswith(suffix)]
    return found


def test_every_pool_is_a_device_of_its_own_under_the_gateway() -> None:
    configs = _configs()
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))
    for topic, body in configs.items():
        assert topic == f"homeassistant/{topic.split('/')[1]}/{body['unique_id']}/config"
    gateway = _by_id(configs, "_bridge")
    assert gateway["device"]["identifiers"] == ["evgw_ev-gateway"]
    assert gateway["device_class"] == "connectivity"
    for pool in ("garage", "street"):
        power = _by_id(configs, f"pool_{pool}_power")
        assert power["device"]["name"] == f"EV pool {pool}"
        assert power["device"]["identifiers"] == [f"evgw_ev-gateway_pool_{pool}"]
        assert power["device"]["via_device"] == "evgw_ev-gateway"


def test_power_limit_number_sends_a_lasting_proposal_and_shows_the_sources_own() -> None:
    configs = _configs()
    number = _by_id(configs, "pool_garage_power_limit")
    assert number["command_topic"] == "ev-gateway/pools/garage/propose_power"
    assert number["state_topic"] == "ev-gateway/pools/garage/power_status/homeassistant"
    # 16 A x 3 phases + 32 A x 1 phase at 230 V
    config = config_from_dict(CONFIG)
    assert number["max"] == config.rated_power(config.effective_pools()[0]) == (16 * 3 + 32) * 230.0
    assert number["min"] == 0 and number["step"] > 0 and number["mode"] in ("box", "slider")
    assert number["unit_of_measurement"] == "W" and number["retain"] is False
    sent = json.loads(number["command_template"].replace("{{ value }}", "7400"))
    assert sent == {"source": "homeassistant", "priority": 42, "power": 7400, "expires_in": None}
    assert "value_json.proposed_power" in number["value_template"]
    button = _by_id(configs, "pool_garage_automatic")
    assert button["command_topic"] == number["command_topic"]
    assert json.loads(button["payload_press"]) == {"source": "homeassistant", "power": None}
    target = _by_id(configs, "pool_street_target_power")
    assert target["state_topic"] == "ev-gateway/pools/street/target"
    assert "value_json.target_power" in target["value_template"]


def test_charger_entities_classes_units_and_availability() -> None:
    configs = _configs()
    numeric = [c for c in configs.values() if "unit_of_measurement" in c and "min" not in c]
    assert all("suggested_display_precision" in c for c in numeric)
    assert not any("expire_after" in c for c in configs.values())
    energy = _by_id(configs, "bay-1_energy")
    assert (energy["device_class"], energy["unit_of_measurement"]) == ("energy", "Wh")
    assert energy["state_class"] == "total_increasing"
    plugged = _by_id(configs, "bay-1_plugged")
    assert plugged["device_class"] == "plug"
    assert "homeassistant/binary_sensor/evgw_ev-gateway_charger_bay-1_plugged/config" in configs
    status = _by_id(configs, "bay-1_status")
    assert set(status["options"]) == {"working", "not_working", "uncertain"}
    resume = _by_id(configs, "bay-1_ev_resume")
    assert resume["options"] == ["ok", "waking", "stalled"]
    assert resume["state_topic"] == "ev-gateway/chargers/bay-1/state"
    # bay-2 is wired to grid phase 2 only: one current sensor, for L2.
    assert [c["name"] for c in configs.values() if c["unique_id"].startswith(
        "evgw_ev-gateway_charger_bay-2_current_l") and "limit" not in c["name"]] == [
        "Current L2"
    ]
    power = _by_id(configs, "bay-1_power")
    topics = [a["topic"] for a in power["availability"]]
    assert topics == ["ev-gateway/bridge/state", "ev-gateway/chargers/bay-1/state"]
    assert power["availability_mode"] == "all"
    assert [a["topic"] for a in status["availability"]] == ["ev-gateway/bridge/state"]


def test_stale_discovery_is_only_this_gateways_removed_entities() -> None:
    config = config_from_dict(CONFIG)
    current = set(_configs())
    removed = "homeassistant/sensor/evgw_ev-gateway_charger_bay-9_power/config"
    assert is_stale_discovery(config, removed, current)
    assert is_stale_discovery(
        config, "homeassistant/number/evgw_ev-gateway_pool_old_power_limit/config", current
    )
    assert not any(is_stale_discovery(config, t, current) for t in current)
    for foreign in (
        "homeassistant/sensor/evgw_other_charger_bay-9_power/config",
        "homeassistant/sensor/zigbee_lamp/config",
        "homeassistant/light/evgw_ev-gateway_charger_x/config",
        "other/sensor/evgw_ev-gateway_charger_bay-9_power/config",
    ):
        assert not is_stale_discovery(config, foreign, current)


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
