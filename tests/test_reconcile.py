"""Clearing retained topics that the config no longer backs, against a real mosquitto."""

from __future__ import annotations

import asyncio

import aiomqtt

from gateway.config import MqttConfig, config_from_dict
from gateway.mqtt.homeassistant import discovery_filters, discovery_messages, is_stale_discovery
from gateway.mqtt.reconcile import reconcile_retained
from gateway.mqtt.topics import Topics
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config


async def _retained(broker: Mosquitto, topic_filter: str) -> dict[str, bytes]:
    """What a new subscriber gets as retained under a filter (read with a marker)."""
    found: dict[str, bytes] = {}
    async with aiomqtt.Client(broker.host, port=broker.port) as client:
        await client.subscribe(topic_filter, qos=1)
        await client.subscribe("test/marker", qos=1)
        await client.publish("test/marker", b"x", qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                if str(message.topic) == "test/marker":
                    break
                if message.retain:
                    found[str(message.topic)] = bytes(message.payload)  # type: ignore[arg-type]
    return found


async def test_clears_only_rejected_retained_topics(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    for name in ("keep-a", "keep-b", "drop-a", "drop-b"):
        await probe.publish(f"site/x/{name}", b"1", retain=True)
    await probe.publish("other/drop-c", b"1", retain=True)  # outside the filters
    await probe.publish("site/x/live", b"1")  # not retained: never cleared
    mqtt = MqttConfig(host=mosquitto.host, port=mosquitto.port, base_topic="site")

    cleared = await reconcile_retained(mqtt, ["site/x/+"], lambda t: "keep" in t)

    assert cleared == ["site/x/drop-a", "site/x/drop-b"]
    left = await _retained(mosquitto, "#")
    assert set(left) == {"site/x/keep-a", "site/x/keep-b", "other/drop-c"}


async def test_many_retained_topics_all_arrive_before_the_marker(mosquitto: Mosquitto) -> None:
    async with aiomqtt.Client(mosquitto.host, port=mosquitto.port) as client:
        for n in range(500):
            await client.publish(f"bulk/{n}", b"v", qos=1, retain=True)
    mqtt = MqttConfig(host=mosquitto.host, port=mosquitto.port)

    cleared = await reconcile_retained(mqtt, ["bulk/#"], lambda t: int(t.split("/")[1]) % 2 == 0)

    assert len(cleared) == 250
    assert sorted(int(t.split("/")[1]) for t in await _retained(mosquitto, "bulk/#")) == list(
        range(0, 500, 2)
    )


async def test_nothing_retained_returns_at_once(mosquitto: Mosquitto) -> None:
    mqtt = MqttConfig(host=mosquitto.host, port=mosquitto.port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await reconcile_retained(mqtt, ["empty/#"], lambda t: False, settle=30) == []
    assert loop.time() - start < 10  # the marker, not the 30 s settle time, ended it


async def test_gateway_clears_discovery_of_a_removed_charger_at_start(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(2) as sims:
        both = site_config(
            mosquitto, [modbus_charger("bay-1", sims[0]), modbus_charger("bay-2", sims[1])]
        )
        both["homeassistant"] = {"enabled": True}
        old = dict(discovery_messages(config_from_dict(both), Topics("ev-gateway")))
        for topic, payload in old.items():
            await probe.publish(topic, payload, retain=True)
        # Another gateway's entities (other base topic) must survive.
        await probe.publish("homeassistant/sensor/evgw_site2_charger_x_power/config", "{}",
                            retain=True)
        one = site_config(mosquitto, [modbus_charger("bay-1", sims[0])])
        one["homeassistant"] = {"enabled": True}
        config = config_from_dict(one)
        current = dict(discovery_messages(config, Topics("ev-gateway")))
        async with running_gateway(one):
            gone = [t for t in old if "bay-2" in t]
            assert gone
            for topic in gone:
                await probe.wait_for(topic, lambda m: m.payload == b"" and m.retain is False)
        left = await _retained(mosquitto, "homeassistant/#")
        assert set(left) == {*current, "homeassistant/sensor/evgw_site2_charger_x_power/config"}
        assert not any(is_stale_discovery(config, t, set(current)) for t in left)
        assert all(f.endswith("/config") for f in discovery_filters(config))


async def test_disabling_home_assistant_removes_the_gateways_entities(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims:
        config = site_config(mosquitto, [modbus_charger("bay-1", sims[0])])
        config["homeassistant"] = {"enabled": True}
        announced = dict(discovery_messages(config_from_dict(config), Topics("ev-gateway")))
        for topic, payload in announced.items():
            await probe.publish(topic, payload, retain=True)
        config["homeassistant"] = {"enabled": False}
        async with running_gateway(config):
            for topic in announced:
                await probe.wait_for(topic, lambda m: m.payload == b"" and m.retain is False)
    assert await _retained(mosquitto, "homeassistant/#") == {}



def test_power_status_of_a_source_that_proposes_after_the_check_began_is_kept(
    mosquitto: Mosquitto,
) -> None:
    """Live sources are asked when a topic is judged, not when the check starts.

    A proposal can arrive while the retained burst is read; its status is then among
    the retained topics, and clearing it would blank the source's reply.
    """
    from gateway.mqtt.reconcile import backed_by

    charger = {"id": "bay-1", "adapter": "simulated"}
    config = config_from_dict(site_config(mosquitto, [charger]))
    live: list[str] = []
    keep = backed_by(config, Topics("ev-gateway"), set(), {"default": lambda: list(live)})
    status = "ev-gateway/pools/default/power_status/hems"
    assert not keep(status)
    live.append("hems")
    assert keep(status)
    assert not keep("ev-gateway/pools/default/power_status/other")
    assert not keep("ev-gateway/pools/gone/target")
    assert keep("ev-gateway/pools/default/target")
