"""End to end: a grid meter at the main fuse narrows the EVs' headroom.

Alfen chargers and an Eastron SDM630 meter are real Modbus TCP servers, the MQTT meter
a real topic on mosquitto; the daemon runs on a fake clock, so "within one resampling
period of the meter sample" is checked on the gateway's own time, not the machine's.
The meter measures the house plus the EVs, as a meter at the main fuse does.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from gateway.clock import FakeClock
from gateway.daemon import Gateway
from gateway.simulator.meter_server import SimulatedMeter
from gateway.simulator.modbus_server import SimulatedCharger
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.runtime_helpers import run_for
from tests.test_e2e_control import wait_until

BASE = "ev-gateway"
FUSE, MARGIN = 35.0, 1.0
USABLE = FUSE - MARGIN
IDLE = 3  # sleeping on the clock at least: the tick loop and the two chargers' pollers


def ev_draw(sims: list[SimulatedCharger]) -> tuple[float, float, float]:
    """What the EVs draw per grid phase now (the chargers are wired 1, 2, 3)."""
    totals = [0.0, 0.0, 0.0]
    for sim in sims:
        for phase, amps in enumerate(sim.view().currents):
            totals[phase] += amps
    return (totals[0], totals[1], totals[2])


def grid_config(
    mosquitto: Mosquitto, sims: list[SimulatedCharger], meter: dict[str, Any]
) -> dict[str, Any]:
    chargers = [modbus_charger(f"bay-{i}", sim, poll_interval=0.5) for i, sim in enumerate(sims)]
    return site_config(
        mosquitto,
        chargers,
        pools=[
            {
                "name": "site",
                "chargers": [c["id"] for c in chargers],
                "default_power": 22000.0,
                "grid": {"meter": "grid", "fuse": FUSE, "margin": MARGIN},
            }
        ],
        meters=[meter],
        power={"resampling_period": 1.0, "max_data_age": 3.0},
        distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
    )


def made_at(payload: dict[str, Any]) -> float:
    """A payload's RFC 3339 timestamp as Unix seconds."""
    return datetime.fromisoformat(payload["timestamp"]).timestamp()


def limits_on_l1(sims: list[SimulatedCharger]) -> float:
    return sum(sim.applied_current_limit for sim in sims)


async def test_a_house_load_step_cuts_the_evs_and_a_silent_meter_falls_back(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    clock = FakeClock()
    house = [5.0, 5.0, 5.0]
    meter_sim = SimulatedMeter("eastron-sdm630")
    await meter_sim.start()
    meter = {
        "id": "grid", "adapter": "modbus", "profile": "eastron-sdm630", "host": "127.0.0.1",
        "port": meter_sim.port, "poll_interval": 0.5, "timeout": 0.3, "max_age": 5.0,
    }  # fmt: skip
    try:
        async with simulators(2, "alfen-eve", plugged=True) as sims:

            def measure() -> None:  # the meter sees the house and the EVs
                draw = ev_draw(sims)
                meter_sim.set_load(*(h + d for h, d in zip(house, draw, strict=True)))

            measure()
            config = grid_config(mosquitto, sims, meter)
            async with running_gateway(config, clock) as gateway:
                await asyncio.wait_for(gateway.bridge.connected.wait(), 10)
                await run_for(clock, 6.0, IDLE, step=0.5, each=measure)
                before = limits_on_l1(sims)
                assert 2 * 6.0 <= before <= USABLE - house[0]  # both charge, under the fuse
                house[0] += 20.0  # the oven on L1: 25 A of house load
                measure()
                stepped, stepped_wall = clock.now(), clock.wall()
                # the meter's next poll shows it; the cut is written at that very moment
                await run_for(clock, 0.5, IDLE, step=0.5)
                await wait_until(lambda: limits_on_l1(sims) <= USABLE - house[0], what="cut")
                assert clock.now() - stepped <= 0.5 + config["power"]["resampling_period"]
                measure()
                assert meter_sim.load[0] <= USABLE  # the fuse holds on L1
                await run_for(clock, 1.0, IDLE, step=0.5, each=measure)  # the next tick
                # the first grid report made after the step (earlier ones may show 25 A
                # or more of house and EVs together; they arrive late on a fake clock)
                grid = await probe.wait_for(
                    f"{BASE}/pools/site/grid", lambda m: made_at(m.json()) > stepped_wall
                )
                assert grid.json()["meter_p1"] >= 25.0
                assert grid.json()["headroom_p1"] <= USABLE - 25.0 + 1e-6
                assert grid.json()["stale"] is False
                meter_sim.silent = True  # the meter stops answering
                await run_for(clock, 7.0, IDLE, step=0.5)
                fallback = gateway.controllers["site"].headroom(clock.now())
                assert fallback is not None and fallback.stale
                await wait_until(lambda: limits_on_l1(sims) <= 6.0, what="fallback to 6 A")
                await run_for(clock, 1.0, IDLE, step=0.5)
                power = await probe.wait_for(
                    f"{BASE}/pools/site/power", lambda m: "grid" in m.json()["missing"]
                )
                assert "grid" in power.json()["missing"]
                result = await probe.wait_for(
                    f"{BASE}/pools/site/power_distribution_results",
                    lambda m: "grid meter grid stale" in m.json()["message"],
                )
                assert "fallback 6 A" in result.json()["message"]
                meter_sim.silent = False
    finally:
        await meter_sim.stop()


async def test_an_mqtt_meter_steers_the_headroom(mosquitto: Mosquitto, probe: MqttProbe) -> None:
    clock = FakeClock()
    meter = {"id": "grid", "adapter": "mqtt", "topic": "site/grid-meter", "max_age": 5.0}
    async with simulators(2, "alfen-eve", plugged=True) as sims:
        gateway: Gateway
        async with running_gateway(grid_config(mosquitto, sims, meter), clock) as gateway:
            await asyncio.wait_for(gateway.bridge.connected.wait(), 10)
            house = 4.0

            async def publish_meter() -> None:
                draw = ev_draw(sims)
                reading = {f"value_p{i + 1}": house + d for i, d in enumerate(draw)}
                seen = gateway.meters["grid"].meter
                before = getattr(seen, "accepted", 0)
                await probe.client.publish("site/grid-meter", json.dumps(reading), qos=1)
                await wait_until(lambda: getattr(seen, "accepted", 0) > before, what="reading")

            for _ in range(8):
                await publish_meter()
                await run_for(clock, 0.5, IDLE, step=0.5)
            assert limits_on_l1(sims) >= 12.0
            house = 26.0  # a heat pump and the oven
            await publish_meter()  # the reading itself wakes the pool: no tick needed
            await wait_until(lambda: limits_on_l1(sims) <= USABLE - house, what="cut")
            assert limits_on_l1(sims) <= USABLE - house
            await run_for(clock, 1.0, IDLE, step=0.5)
            state = await probe.wait_for(
                f"{BASE}/meters/grid/state",
                lambda m: (m.json()["current_per_phase"] or {}).get("value_p1", 0) >= 26.0,
            )
            assert state.json()["stale"] is False
            await run_for(clock, 6.0, IDLE, step=0.5)  # no more readings: stale
            await wait_until(lambda: limits_on_l1(sims) <= 6.0, what="fallback")
