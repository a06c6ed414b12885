"""End to end over MQTT: proposals drive the simulated chargers' current-limit registers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import Mosquitto, MqttProbe, Received
from tests.harness import modbus_charger, running_gateway, simulators, site_config

BASE = "ev-gateway"
PROPOSE = f"{BASE}/pools/default/propose_power"
RESPONSE = f"{PROPOSE}/response"
RESULTS = f"{BASE}/pools/default/power_distribution_results"


def control_config(mosquitto: Mosquitto, sims: list[Any], **power: Any) -> dict[str, Any]:
    chargers = [modbus_charger(f"bay-{i + 1}", sim) for i, sim in enumerate(sims)]
    return site_config(
        mosquitto,
        chargers,
        distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
        power=power,
    )


async def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def propose(probe: MqttProbe, body: Any, **kwargs: Any) -> Received:
    start = len(probe.messages)
    await probe.publish(PROPOSE, body, **kwargs)
    return await probe.wait_for(RESPONSE, after=start)


async def working(probe: MqttProbe, count: int) -> None:
    await probe.wait_for(
        f"{BASE}/pools/default/system_power_bounds",
        lambda m: (m.json()["inclusion_bounds"] or {}).get("upper", 0) >= count * 6 * 230 * 3,
    )


async def test_proposal_sets_the_current_limit_registers(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with (
        simulators(2, plugged=True) as sims,
        running_gateway(control_config(mosquitto, sims)),
    ):
        await working(probe, 2)
        reply = await propose(probe, {"source": "hems", "priority": 10, "power": 11040.0})
        assert reply.json() == {"status": "ok", "source": "hems"}
        # 11040 W over two 3-phase EVs at 230 V: 8 A each
        await wait_until(lambda: all(s.current_limit == 8.0 for s in sims), what="8 A each")
        result = await probe.wait_for(
            RESULTS,
            lambda m: (
                m.json()["result"] == "success"
                and m.json()["request"]["power"] == 11040.0
                and m.json()["succeeded_power"] > 0
            ),
        )
        body = result.json()
        assert body["request"]["power"] == 11040.0
        assert body["succeeded_components"] == ["bay-1", "bay-2"]
        status = await probe.wait_for(
            f"{BASE}/pools/default/power_status/hems",
            lambda m: m.json()["distribution_result"] is not None,
        )
        assert status.retain or status.json()["target_power"] == 11040.0
        assert status.json()["target_power"] == 11040.0
        assert status.json()["priority"] == 10


async def test_two_priorities_interact_as_matryoshka(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims:
        sims[0].plug(phases=3, ev_max_current=32.0)
        async with running_gateway(control_config(mosquitto, sims)):
            await working(probe, 1)
            # the grid operator (high priority) caps at 6900 W; the HEMS wants 11000 W
            await propose(
                probe, {"source": "grid", "priority": 100, "bounds": {"lower": 0, "upper": 6900}}
            )
            await propose(probe, {"source": "hems", "priority": 1, "power": 11000})
            await wait_until(lambda: sims[0].current_limit == 10.0, what="10 A (6900 W cap)")
            hems = await probe.wait_for(
                f"{BASE}/pools/default/power_status/hems",
                lambda m: m.json()["target_power"] == 6900.0,
            )
            assert hems.json()["bounds"] == {"lower": 0.0, "upper": 6900.0}
            # the operator withdraws: the HEMS gets its 11000 W (15.9 A -> 15.9 on 0.1 A steps)
            await propose(probe, {"source": "grid", "priority": 100, "power": None})
            await wait_until(lambda: sims[0].current_limit == 15.9, what="15.9 A")
            cleared = await probe.wait_for(
                f"{BASE}/pools/default/power_status/grid", lambda m: m.payload == b""
            )
            assert cleared.retain is False or cleared.payload == b""


BAD_PAYLOADS: list[tuple[Any, str]] = [
    ("{nope", "not valid JSON"),
    ('["power", 1]', "JSON object"),
    ({"source": "hems", "power": 1000, "colour": "red"}, "unknown field"),
    ({"source": "hems", "power": "1000"}, "must be a number"),
    ('{"source": "hems", "power": NaN}', "finite"),
    ('{"source": "hems", "power": Infinity}', "finite"),
    ({"source": "hems", "power": -2000}, "discharging EVs is not supported"),
    ({"source": "hems", "bounds": {"lower": 5000, "upper": 1000}}, "above bounds.upper"),
    ({"source": "hems bad", "power": 1000}, "source must be"),
    ("x" * (64 * 1024 + 10), "limit is 65536 bytes"),
]


async def test_invalid_payloads_get_an_error_and_change_nothing(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims:
        sims[0].plug(phases=3, ev_max_current=16.0)
        async with running_gateway(control_config(mosquitto, sims)):
            await working(probe, 1)
            await propose(probe, {"source": "hems", "priority": 5, "power": 6900})
            await wait_until(lambda: sims[0].current_limit == 10.0, what="10 A")
            status = f"{BASE}/pools/default/power_status/hems"
            await probe.wait_for(status, lambda m: m.json()["distribution_result"] is not None)
            await probe.ticks(3)
            before = probe.last(status)
            assert before is not None
            writes_before = len(sims[0].writes)
            for payload, message in BAD_PAYLOADS:
                if isinstance(payload, dict):
                    payload = json.dumps(payload)
                reply = await propose(probe, payload)
                body = reply.json()
                assert body["status"] == "error", payload
                assert message in body["error"], (payload, body)
            await probe.ticks(3)
            assert probe.last(status) == before  # power_status unchanged
            assert sims[0].current_limit == 10.0
            assert all(amps == 10.0 for _, amps in sims[0].writes[writes_before:])


async def test_retained_proposal_is_stale_and_refused(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    # Left on the broker before the gateway starts: delivered with the retain flag.
    await probe.publish(PROPOSE, {"source": "old", "power": 11000}, retain=True)
    async with simulators(1) as sims:
        sims[0].plug(phases=3, ev_max_current=16.0)
        async with running_gateway(control_config(mosquitto, sims)) as gateway:
            reply = await probe.wait_for(RESPONSE)
            assert reply.json()["status"] == "error"
            assert reply.json()["source"] == "old"
            assert "retained" in reply.json()["error"]
            await probe.ticks(3)
            assert gateway.controllers["default"].manager.sources() == []
            assert gateway.controllers["default"].manager.target == 0.0
    await probe.publish(PROPOSE, b"", retain=True)


async def test_reply_goes_to_the_mqtt5_response_topic(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims, running_gateway(control_config(mosquitto, sims)):
        await probe.wait_for(f"{BASE}/bridge/state", lambda m: m.payload == b"online")
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "client-7/replies"
        props.CorrelationData = b"req-42"
        start = len(probe.messages)
        await probe.client.publish(
            PROPOSE,
            json.dumps({"source": "nodered", "power": 0, "transaction": 7}),
            qos=1,
            properties=props,
        )
        reply = await probe.wait_for("client-7/replies", after=start)
        assert reply.json() == {"status": "ok", "source": "nodered", "transaction": 7}
        assert reply.properties.CorrelationData == b"req-42"
        await probe.ticks(3)
        assert not [m for m in probe.messages[start:] if m.topic == RESPONSE]


async def test_expired_proposal_disappears_and_chargers_follow(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims:
        sims[0].plug(phases=3, ev_max_current=16.0)
        config = control_config(mosquitto, sims, max_proposal_age=1.5)
        config["pools"] = [{"name": "default", "chargers": ["bay-1"], "default_power": 4140.0}]
        async with running_gateway(config):
            await working(probe, 1)
            await propose(probe, {"source": "boost", "priority": 3, "power": 11040})
            await wait_until(lambda: sims[0].current_limit == 16.0, what="16 A")
            await probe.wait_for(
                f"{BASE}/pools/default/power_status/boost", lambda m: m.payload == b"", timeout=5
            )
            # back to the pool's default power: 4140 W = 6 A on three phases
            await wait_until(lambda: sims[0].current_limit == 6.0, timeout=5, what="6 A")


async def test_refused_writes_make_the_charger_uncertain(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with (
        simulators(2, plugged=True) as sims,
        running_gateway(control_config(mosquitto, sims)),
    ):
        await working(probe, 2)
        sims[1].refuse_writes = True
        await propose(probe, {"source": "hems", "power": 11040})
        failure = await probe.wait_for(RESULTS, lambda m: m.json()["result"] == "partial_failure")
        body = failure.json()
        assert body["failed_components"] == ["bay-2"]
        assert body["succeeded_components"] == ["bay-1"]
        assert body["failed_power"] > 0
        assert body["succeeded_power"] == sims[0].current_limit * 230 * 3
        await probe.wait_for(
            f"{BASE}/chargers/bay-2/state", lambda m: m.json()["status"] == "uncertain"
        )
        sims[1].refuse_writes = False
        await probe.wait_for(
            f"{BASE}/chargers/bay-2/state",
            lambda m: m.json()["status"] == "working",
            timeout=10,
            after=len(probe.messages),
        )


async def test_bounds_fall_to_zero_when_the_last_ev_leaves(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with (
        simulators(1, plugged=True) as sims,
        running_gateway(control_config(mosquitto, sims)),
    ):
        await working(probe, 1)
        sims[0].unplug()
        bounds = await probe.wait_for(
            f"{BASE}/pools/default/system_power_bounds",
            lambda m: m.json()["inclusion_bounds"] == {"lower": 0.0, "upper": 0.0},
            after=len(probe.messages),
        )
        assert bounds.json()["exclusion_bounds"] is None


async def test_wildcard_response_topic_falls_back_and_the_daemon_lives(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims, running_gateway(control_config(mosquitto, sims)):
        await probe.wait_for(f"{BASE}/bridge/state", lambda m: m.payload == b"online")
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "replies/#"
        start = len(probe.messages)
        await probe.client.publish(
            PROPOSE, json.dumps({"source": "odd", "power": 0}), qos=1, properties=props
        )
        reply = await probe.wait_for(RESPONSE, after=start)
        assert reply.json()["status"] == "error" and "wildcard" in reply.json()["error"]
        # still publishing telemetry afterwards
        await probe.wait_for(f"{BASE}/pools/default/power", after=len(probe.messages))
