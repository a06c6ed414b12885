"""A fleet: two sites, each a gateway with its own local mosquitto, bridged to a central one.

The layout the README's "Fleets" section describes: one `base_topic` per site; each
local broker runs a mosquitto `connection` bridge that carries the site's topics both
ways (telemetry and the LWT out, proposals in, replies out); central consumers see
every site. When the central broker goes away, each site goes on polling, publishing
locally and taking proposals from local clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.clock import FakeClock
from tests.conftest import Mosquitto, MqttProbe, free_port
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.runtime_helpers import run_for

SITES = ("site-a", "site-b")


def _broker(tmp_path: Path, name: str, extra: str = "") -> Mosquitto:
    port = free_port()
    conf = tmp_path / f"{name}.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest stderr\nlog_type error\nlog_type warning\n" + extra
    )
    return Mosquitto(port, conf, tmp_path / f"{name}.log")


def bridge_config(site: str, central: Mosquitto) -> str:
    """The local broker's bridge: the site's topics both ways, reconnecting quickly."""
    return (
        f"connection {site}-to-central\n"
        f"address 127.0.0.1:{central.port}\n"
        f"topic {site}/# both 1\n"
        "cleansession true\n"
        "restart_timeout 1 2\n"
        "bridge_protocol_version mqttv50\n"
    )


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, Mosquitto]]]:
    """A central broker and one local broker per site, bridged to it."""
    central = _broker(tmp_path, "central")
    central.start()
    local = {site: _broker(tmp_path, site, bridge_config(site, central)) for site in SITES}
    for broker in local.values():
        broker.start()
    try:
        yield central, local
    finally:
        for broker in [*local.values(), central]:
            broker.stop()


@contextlib.asynccontextmanager
async def probe_on(broker: Mosquitto) -> AsyncIterator[MqttProbe]:
    """A recording client subscribed to everything on `broker`."""
    client = aiomqtt.Client(broker.host, port=broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client:
        await client.subscribe("#", qos=1)
        recorder = MqttProbe(client)
        task = asyncio.create_task(recorder._collect())
        try:
            yield recorder
        finally:
            task.cancel()


async def test_two_sites_through_a_central_broker(
    brokers: tuple[Mosquitto, dict[str, Mosquitto]],
) -> None:
    central, local = brokers
    clocks = {site: FakeClock() for site in SITES}
    async with (
        simulators(2, plugged=True) as sims_a,
        simulators(1, plugged=True) as sims_b,
        probe_on(central) as hub,
    ):
        sims = {"site-a": sims_a, "site-b": sims_b}
        configs = {
            site: site_config(
                local[site],
                [modbus_charger(f"{site}-{i}", sim) for i, sim in enumerate(sims[site])],
                mqtt={"base_topic": site},
                distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
            )
            for site in SITES
        }
        async with (
            running_gateway(configs["site-a"], clocks["site-a"]) as gateway_a,
            running_gateway(configs["site-b"], clocks["site-b"]) as gateway_b,
        ):
            gateways = {"site-a": gateway_a, "site-b": gateway_b}

            async def tick(seconds: float = 1.0) -> None:
                for site in SITES:
                    idle_tasks = len(gateways[site].chargers) + 1  # polls and the tick loop
                    await run_for(clocks[site], seconds, idle_tasks, step=0.2)

            # Telemetry of both sites arrives at the central broker.
            for site in SITES:
                state = await hub.wait_for(f"{site}/bridge/state", timeout=15)
                assert state.payload == b"online"
            await tick()
            for site in SITES:
                power = await hub.wait_for(f"{site}/pools/default/power", timeout=15)
                assert power.json()["missing"] == []
                await hub.wait_for(f"{site}/chargers/{site}-0/state", timeout=15)
            await hub.wait_for(
                "site-a/pools/default/system_power_bounds",
                lambda m: m.json()["inclusion_bounds"]["upper"] > 0,
                timeout=15,
            )

            # A proposal sent centrally to site A reaches its chargers; the reply returns.
            mark = len(hub.messages)
            request = Properties(PacketTypes.PUBLISH)
            request.CorrelationData = b"central-1"
            await hub.publish(
                "site-a/pools/default/propose_power",
                {"source": "fleet", "power": 2 * 6 * 230.0 * 3, "transaction": "f-1"},
                properties=request,
            )
            reply = await hub.wait_for(
                "site-a/pools/default/propose_power/response", timeout=15, after=mark
            )
            assert reply.json() == {"status": "ok", "source": "fleet", "transaction": "f-1"}
            assert reply.properties.CorrelationData == b"central-1"  # across the bridge and back
            for _ in range(20):
                if all(sim.current_limit == 6.0 for sim in sims_a):
                    break
                await tick(0.2)
            assert [sim.current_limit for sim in sims_a] == [6.0, 6.0]
            assert sims_b[0].current_limit != 6.0  # site B was not addressed
            assert hub.on("site-b/pools/default/propose_power/response") == []

            # The central broker goes down: each site carries on locally.
            central.stop()
            for site in SITES:
                async with probe_on(local[site]) as site_probe:
                    await tick()
                    power = await site_probe.wait_for(f"{site}/pools/default/power", timeout=15)
                    assert power.json()["missing"] == []
                    await site_probe.publish(
                        f"{site}/pools/default/propose_power",
                        {"source": "fleet", "power": 0.0, "transaction": "l-1"},
                    )
                    reply = await site_probe.wait_for(
                        f"{site}/pools/default/propose_power/response",
                        lambda m: m.json().get("transaction") == "l-1",
                        timeout=15,
                    )
                    assert reply.json()["status"] == "ok"
            for _ in range(20):
                if all(sim.current_limit == 0.0 for sim in [*sims_a, *sims_b]):
                    break
                await tick(0.2)
            assert [sim.current_limit for sim in [*sims_a, *sims_b]] == [0.0, 0.0, 0.0]
            assert gateway_a.bridge.connected.is_set() and gateway_b.bridge.connected.is_set()
