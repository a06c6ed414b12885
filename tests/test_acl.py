"""The README's mosquitto ACL, on a real broker: only the named energy manager steers."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import Mosquitto, free_port
from tests.harness import modbus_charger, running_gateway, simulators, site_config

BASE = "ev-gateway"
PROPOSE = f"{BASE}/pools/default/propose_power"
ACL = Path(__file__).parent.parent / "docs" / "mosquitto-acl.conf"
USERS = {"ev-gateway": "gw-secret", "hems": "hems-secret"}


@pytest.fixture
def secured(tmp_path: Path) -> Any:
    """mosquitto with the shipped ACL and a password file made by mosquitto_passwd."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(tool).exists():
        pytest.fail("mosquitto_passwd is not installed: apt-get install -y mosquitto")
    passwd = tmp_path / "passwd"
    for n, (user, password) in enumerate(USERS.items()):
        args = [tool, "-b", *(["-c"] if n == 0 else []), str(passwd), user, password]
        subprocess.run(args, check=True, capture_output=True)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        # run as ourselves: as root mosquitto would switch to a user that cannot read tmp_path
        f"user {getpass.getuser()}\n"
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"password_file {passwd}\nacl_file {ACL}\nlog_dest stderr\nlog_type error\n"
    )
    broker = Mosquitto(port, conf, tmp_path / "mosquitto.log")
    broker.start()
    yield broker
    broker.stop()


async def collect(client: aiomqtt.Client, into: list[tuple[str, bytes]]) -> None:
    async for message in client.messages:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        into.append((str(message.topic), payload))


async def wait_for(seen: list[tuple[str, bytes]], topic: str, predicate: Any) -> bytes:
    async with asyncio.timeout(15):
        while True:
            for got_topic, payload in seen:
                if got_topic == topic and predicate(payload):
                    return payload
            await asyncio.sleep(0.05)


async def test_only_the_energy_manager_can_propose(secured: Mosquitto) -> None:
    async with simulators(1, plugged=True) as sims:
        config = site_config(
            secured,
            [modbus_charger("bay-1", sims[0])],
            distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
            mqtt={"username": "ev-gateway", "password": USERS["ev-gateway"], "protocol": "5"},
        )
        intruder = aiomqtt.Client(secured.host, port=secured.port, identifier="intruder")
        hems = aiomqtt.Client(
            secured.host,
            port=secured.port,
            username="hems",
            password=USERS["hems"],
            protocol=aiomqtt.ProtocolVersion.V5,
        )
        seen: list[tuple[str, bytes]] = []
        async with running_gateway(config) as gateway, intruder, hems:
            await intruder.subscribe(f"{BASE}/#", qos=1)
            await hems.subscribe(f"{BASE}/#", qos=1)
            await hems.subscribe("replies/hems/#", qos=1)
            readers = [
                asyncio.create_task(collect(intruder, seen)),
                asyncio.create_task(collect(hems, seen)),
            ]
            try:
                # everyone may read: the anonymous client sees the gateway's telemetry
                await wait_for(seen, f"{BASE}/pools/default/power", lambda p: True)
                await wait_for(
                    seen,
                    f"{BASE}/pools/default/system_power_bounds",
                    lambda p: (json.loads(p)["inclusion_bounds"] or {}).get("upper", 0) > 0,
                )
                # the intruder tries to steer the pool and to fake the gateway's state
                body = {"source": "intruder", "power": 11040, "transaction": "x"}
                await intruder.publish(PROPOSE, json.dumps(body), qos=1)
                await intruder.publish(f"{BASE}/bridge/state", "offline", qos=1, retain=True)
                # the energy manager proposes, with an MQTT 5 response topic of its own
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.ResponseTopic = "replies/hems/1"
                body = {"source": "hems", "power": 4140, "transaction": "h"}
                await hems.publish(PROPOSE, json.dumps(body), qos=1, properties=props)
                reply = await wait_for(seen, "replies/hems/1", lambda p: True)
                assert json.loads(reply) == {"status": "ok", "source": "hems", "transaction": "h"}
                await wait_for(
                    seen,
                    f"{BASE}/pools/default/power_status/hems",
                    lambda p: p and json.loads(p)["target_power"] == 4140.0,
                )
                await asyncio.sleep(0.5)  # a reply to the intruder would have come by now
            finally:
                for reader in readers:
                    reader.cancel()
            controller = gateway.controllers["default"]
            assert controller.manager.sources() == ["hems"]
            assert controller.manager.target == 4140.0
            assert not [t for t, p in seen if t.endswith("/power_status/intruder")]
            assert not [p for t, p in seen if b'"transaction":"x"' in p]
            states = [p for t, p in seen if t == f"{BASE}/bridge/state"]
            assert states and set(states) == {b"online"}
