"""End to end: simulated chargers (real Modbus TCP) -> daemon -> real mosquitto -> probe."""

from __future__ import annotations

import asyncio
import math

from gateway.clock import FakeClock
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.runtime_helpers import run_for
from tests.test_e2e_control import wait_until

BASE = "ev-gateway"


def _tick_groups(probe: MqttProbe, pool: str = "default") -> list[tuple[dict, dict[str, dict]]]:  # type: ignore[type-arg]
    """Per tick: the pool power payload and the charger states published right after it."""
    groups: list[tuple[dict, dict[str, dict]]] = []  # type: ignore[type-arg]
    for message in probe.messages:
        if message.topic == f"{BASE}/pools/{pool}/power":
            groups.append((message.json(), {}))
        elif message.topic.startswith(f"{BASE}/chargers/") and groups:
            groups[-1][1][message.topic.split("/")[2]] = message.json()
    return groups


async def test_retained_bridge_topics_and_info(mosquitto: Mosquitto, probe: MqttProbe) -> None:
    async with simulators(2) as sims:
        config = site_config(
            mosquitto,
            [modbus_charger("bay-1", sims[0]), modbus_charger("bay-2", sims[1], [2, 3, 1])],
        )
        async with running_gateway(config):
            state = await probe.wait_for(f"{BASE}/bridge/state")
            assert (
                state.payload == b"online" and state.retain is False
            ) or state.payload == b"online"
            info = (await probe.wait_for(f"{BASE}/bridge/info")).json()
            assert info["pools"] == {"default": ["bay-1", "bay-2"]}
            assert info["chargers"]["bay-1"] == {"adapter": "modbus", "profile": "generic"}
            ids = (await probe.wait_for(f"{BASE}/pools/default/component_ids")).json()
            assert ids == ["bay-1", "bay-2"]
        offline = await probe.wait_for(
            f"{BASE}/bridge/state", lambda m: m.payload == b"offline", timeout=5
        )
        assert offline.payload == b"offline"


async def test_pool_power_is_the_sum_and_currents_follow_rotation(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(3) as sims:
        sims[0].plug(phases=3, ev_max_current=10.0)
        sims[1].plug(phases=1, ev_max_current=13.0)  # single-phase EV on a rotated charger
        sims[2].unplug()
        config = site_config(
            mosquitto,
            [
                modbus_charger("three", sims[0], [1, 2, 3]),
                modbus_charger("single", sims[1], [2, 3, 1]),
                modbus_charger("empty", sims[2], [3, 1, 2]),
            ],
            pools=[
                {
                    "name": "default",
                    "chargers": ["three", "single", "empty"],
                    "default_power": 22000.0,
                }
            ],
            distribution={"ramp_up_rate": 80.0},
        )
        async with running_gateway(config):

            def charging(message: object) -> bool:
                body = message.json()  # type: ignore[attr-defined]
                return body["value_p2"] > 12.0 and body["value_p1"] > 9.0

            await probe.wait_for(f"{BASE}/pools/default/current_per_phase", charging, 15)
            await probe.ticks(3)
        groups = [g for g in _tick_groups(probe) if len(g[1]) == 3 and g[0]["value"] > 0]
        assert groups, "no tick with all three chargers"
        pool, states = groups[-1]
        assert pool["missing"] == []
        total = sum(s["active_power"] for s in states.values())
        assert math.isclose(pool["value"], total, rel_tol=1e-9)
        # the single-phase EV draws on its charger's L1, wired to grid L2
        single = states["single"]["current_per_phase"]
        assert single["value_p2"] > 12.0 and single["value_p1"] == 0 and single["value_p3"] == 0
        current = next(
            m.json()
            for m in probe.on(f"{BASE}/pools/default/current_per_phase")
            if m.json()["timestamp"] == pool["timestamp"]
        )
        three = states["three"]["current_per_phase"]
        assert math.isclose(current["value_p1"], three["value_p1"], abs_tol=1e-6)
        assert math.isclose(
            current["value_p2"], three["value_p2"] + single["value_p2"], abs_tol=1e-6
        )
        assert math.isclose(current["value_p3"], three["value_p3"], abs_tol=1e-6)
        assert states["empty"]["status"] == "not_working"
        assert states["three"]["status"] == "working"


async def test_silent_charger_goes_missing_and_comes_back(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    clock = FakeClock()
    async with simulators(2, plugged=True) as sims:
        config = site_config(
            mosquitto,
            [modbus_charger("good", sims[0]), modbus_charger("flaky", sims[1])],
            pools=[{"name": "default", "chargers": ["good", "flaky"], "default_power": 8000.0}],
        )
        async with running_gateway(config, clock) as gateway:
            await asyncio.wait_for(gateway.bridge.connected.wait(), 10)
            idle_tasks = 3  # sleeping on the clock at least: the tick loop, 2 pollers
            await run_for(clock, 1.0, idle_tasks, step=0.2)
            assert all(c.fresh(clock.now()) for c in gateway.chargers.values())
            sims[1].silent = True
            silenced = clock.now()
            max_age = gateway.config.power.max_data_age
            period = gateway.config.power.resampling_period
            poll = gateway.config.charger("flaky").poll_interval
            ticks: list[float] = []
            missing_at: list[float] = []

            def watch() -> None:
                ticks.append(clock.now())
                if "flaky" in gateway.latest() and not gateway.chargers["flaky"].fresh(clock.now()):
                    missing_at.append(clock.now())

            await run_for(clock, max_age + period + poll, 3, step=period / 2, each=watch)
            # missing within max_data_age + one tick (+ one poll interval of sample age)
            assert missing_at and missing_at[0] - silenced <= max_age + period + poll
            went_missing = await probe.wait_for(
                f"{BASE}/pools/default/power", lambda m: m.json()["missing"] == ["flaky"]
            )
            assert went_missing.json()["missing"] == ["flaky"]
            assert gateway.ticks >= (max_age + poll) / period  # the good one kept ticking
            await wait_until(lambda: gateway.chargers["flaky"].failures > 0, what="a timeout")
            await run_for(clock, period, 3)  # one more tick reports the error
            state = await probe.wait_for(
                f"{BASE}/chargers/flaky/state",
                lambda m: m.json()["status"] == "not_working" and m.json()["error"],
            )
            assert "no answer" in state.json()["error"]
            sims[1].silent = False
            back = len(probe.messages)
            flaky = gateway.chargers["flaky"]
            async with asyncio.timeout(60):  # a read may still be timing out (real time)
                while not flaky.fresh(clock.now()):
                    await run_for(clock, 0.5, idle_tasks, step=0.5)  # past the backoff
            await run_for(clock, 0.5, idle_tasks, step=0.5)  # a tick to publish it
            await probe.wait_for(
                f"{BASE}/pools/default/power",
                lambda m: m.json()["missing"] == [],
                timeout=15,
                after=back,
            )


async def test_broker_restart(mosquitto: Mosquitto) -> None:
    import aiomqtt

    clock = FakeClock()
    async with simulators(1) as sims:
        config = site_config(mosquitto, [modbus_charger("bay-1", sims[0])])
        async with running_gateway(config, clock) as gateway:
            await asyncio.wait_for(gateway.bridge.connected.wait(), 10)
            mosquitto.stop()
            charger = gateway.chargers["bay-1"]
            polls_at_stop, ticks_at_stop = charger.polls, gateway.ticks
            await run_for(clock, 1.5, 2, step=0.1)  # the tick loop and the poller
            assert not gateway.bridge.connected.is_set()
            # the daemon kept polling and ticking while the broker was away
            assert charger.polls >= polls_at_stop + 4
            assert gateway.ticks >= ticks_at_stop + 4
            mosquitto.start()
            await asyncio.wait_for(gateway.bridge.connected.wait(), 20)
            async with aiomqtt.Client(mosquitto.host, port=mosquitto.port) as client:
                await client.subscribe(f"{BASE}/#")
                await run_for(clock, 0.6, 2, step=0.2)  # ticks publish telemetry again
                seen: dict[str, bytes] = {}
                async with asyncio.timeout(10):
                    async for message in client.messages:
                        seen[str(message.topic)] = bytes(message.payload)  # type: ignore[arg-type]
                        if (
                            f"{BASE}/bridge/state" in seen
                            and f"{BASE}/pools/default/power" in seen
                            and f"{BASE}/bridge/info" in seen
                        ):
                            break
                assert seen[f"{BASE}/bridge/state"] == b"online"
                assert seen[f"{BASE}/pools/default/component_ids"] == b'["bay-1"]'
