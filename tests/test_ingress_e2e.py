"""Hardened MQTT ingress end to end: the in-process daemon against a real mosquitto."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.test_e2e_control import BASE, PROPOSE, RESPONSE, wait_until, working

STATUS = f"{BASE}/pools/default/power_status"


def config(mosquitto: Mosquitto, sims: list[Any], **mqtt: Any) -> dict[str, Any]:
    return site_config(
        mosquitto,
        [modbus_charger(f"bay-{i + 1}", sim) for i, sim in enumerate(sims)],
        distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
        mqtt=mqtt,
    )


async def replies_for(probe: MqttProbe, start: int, count: int, topic: str = RESPONSE) -> list[Any]:
    """Wait until `count` replies arrived on `topic` after index `start`; return their bodies."""
    await wait_until(
        lambda: len([m for m in probe.on(topic) if probe.messages.index(m) >= start]) >= count,
        what=f"{count} replies",
    )
    return [m.json() for m in probe.messages[start:] if m.topic == topic]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not bad, [r.getMessage() for r in bad]


HOSTILE = [
    b"[" * 1000 + b"]" * 1000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b'{"source": "x", "power": ' + b"9" * 309 + b"}",
    b'{"source": "x", "power": 1, "transaction": ' + b"9" * 309 + b"}",
    b'{"power": ' + b"9" * 6000 + b"}",
    b"\xff\xfe\x00garbage",
    b"\x00",
    b'{"\\n": 1}',
    b"1796169287237",
    b"NaN",
    b" " * 70_000,
]


async def test_hostile_payloads_each_get_one_error_reply_and_no_traceback(
    mosquitto: Mosquitto, probe: MqttProbe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with simulators(1, plugged=True) as sims, running_gateway(config(mosquitto, sims)):
        await working(probe, 1)
        start = len(probe.messages)
        for n, payload in enumerate(HOSTILE):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = str(n).encode()
            await probe.client.publish(PROPOSE, payload, qos=1, properties=props)
        await probe.publish(PROPOSE, {"source": "last", "power": 0, "transaction": "end"})
        bodies = await replies_for(probe, start, len(HOSTILE) + 1)
        assert len(bodies) == len(HOSTILE) + 1
        assert [b["status"] for b in bodies[:-1]] == ["error"] * len(HOSTILE)
        assert bodies[-1] == {"status": "ok", "source": "last", "transaction": "end"}
        correlations = [
            getattr(m.properties, "CorrelationData", m.payload[:100])
            for m in probe.messages[start:]
            if m.topic == RESPONSE
        ]
        assert correlations[: len(HOSTILE)] == [str(n).encode() for n in range(len(HOSTILE))]
        timestamp = bodies[HOSTILE.index(b"1796169287237")]["error"]
        assert "rated maximum of 11040 W" in timestamp
        no_tracebacks(caplog)
        # the implausible power set nothing: bay-1 never got a limit above 0 from it
        assert probe.last(f"{STATUS}/default") is None


async def test_retained_proposal_on_live_delivery_is_refused_and_a_cleared_one_ignored(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with (
        simulators(1, plugged=True) as sims,
        running_gateway(config(mosquitto, sims, protocol="5")),
    ):
        await working(probe, 1)
        start = len(probe.messages)
        await probe.publish(
            PROPOSE, {"source": "stale", "power": 11040, "transaction": 1}, retain=True
        )
        body = (await replies_for(probe, start, 1))[0]
        assert body["status"] == "error" and "retained" in body["error"]
        assert body["transaction"] == 1
        # clearing it the documented way gets no reply; the next proposal's reply is next
        await probe.client.publish(PROPOSE, b"", qos=1, retain=True)
        await probe.publish(PROPOSE, {"source": "fresh", "power": 0, "transaction": 2})
        bodies = await replies_for(probe, start, 2)
        assert bodies == [body, {"status": "ok", "source": "fresh", "transaction": 2}]
        assert probe.last(f"{STATUS}/stale") is None
        assert sims[0].current_limit != 16.0


async def test_a_response_topic_onto_the_gateways_own_topics_is_refused(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1, plugged=True) as sims, running_gateway(config(mosquitto, sims)):
        await working(probe, 1)
        start = len(probe.messages)
        for n, topic in enumerate([f"{BASE}/bridge/state", "$SYS/x", "replies/+"]):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = topic
            props.CorrelationData = b"c%d" % n
            body = json.dumps({"source": "evil", "power": 11040, "transaction": n})
            await probe.client.publish(PROPOSE, body, qos=1, properties=props)
        bodies = await replies_for(probe, start, 3)
        assert [b["transaction"] for b in bodies] == [0, 1, 2]
        assert "base topic" in bodies[0]["error"] and "bridge/state" in bodies[0]["error"]
        assert "starts with $" in bodies[1]["error"]
        assert "wildcard" in bodies[2]["error"]
        assert all(b["status"] == "error" for b in bodies)
        # nothing was written onto bridge/state, and the proposal was not applied
        states = [m.payload for m in probe.messages[start:] if m.topic == f"{BASE}/bridge/state"]
        assert states == []
        assert probe.last(f"{STATUS}/evil") is None
        # an allowed response topic still works
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "client-1/replies"
        await probe.client.publish(PROPOSE, b"0", qos=1, properties=props)
        reply = await probe.wait_for("client-1/replies", after=start)
        assert reply.json() == {"status": "ok", "source": "default"}


async def test_a_burst_is_coalesced_per_source_and_every_message_answered(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with (
        simulators(2, plugged=True) as sims,
        running_gateway(config(mosquitto, sims)) as gateway,
    ):
        await working(probe, 2)
        start = len(probe.messages)
        sent = 300
        # a client of its own publishing without waiting between messages
        async with aiomqtt.Client(mosquitto.host, port=mosquitto.port) as flood:
            for n in range(sent):
                source = "a" if n % 2 else "b"
                body = {"source": source, "power": 5000.0 + n, "transaction": n}
                await flood.publish(PROPOSE, json.dumps(body), qos=0)
        bodies = await replies_for(probe, start, sent)
        by_transaction: dict[int, list[str]] = {}
        for body in bodies:
            by_transaction.setdefault(body["transaction"], []).append(body["status"])
        assert sorted(by_transaction) == list(range(sent))
        assert all(len(statuses) == 1 for statuses in by_transaction.values())
        statuses = [s[0] for s in by_transaction.values()]
        assert set(statuses) <= {"ok", "superseded"}
        assert by_transaction[sent - 1] == ["ok"] and by_transaction[sent - 2] == ["ok"]
        # the newest proposal per source is in force: on equal priority the source
        # whose name sorts first ("a") decides, so the target is a's last power
        controller = gateway.controllers["default"]
        assert controller.manager.sources() == ["b", "a"]
        assert controller.manager.target == 5000.0 + sent - 1
        counts = controller._inbox.counts
        assert counts.applied + counts.superseded == sent
        assert counts.superseded == statuses.count("superseded")
