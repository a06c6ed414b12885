"""End to end: a 20 A fuse shared by rotated 3-phase and 1-phase EVs, over MQTT."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config

BASE = "ev-gateway"
PHASE_LIMIT = 20.0
POLL = 0.5


async def test_fuse_shared_by_rotated_and_single_phase_evs(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(3) as sims:
        sims[0].plug(phases=3, ev_max_current=16.0)
        sims[1].plug(phases=3, ev_max_current=16.0)
        sims[2].plug(phases=1, ev_max_current=16.0)
        wiring = {"rot-a": [2, 3, 1], "rot-b": [3, 1, 2], "single": [1, 2, 3]}
        chargers = [
            modbus_charger(cid, sim, phases, poll_interval=POLL)
            for (cid, phases), sim in zip(wiring.items(), sims, strict=True)
        ]
        config = site_config(
            mosquitto,
            chargers,
            pools=[{"name": "site", "chargers": list(wiring), "phase_limit": PHASE_LIMIT}],
            distribution={"ramp_up_rate": 10.0},
        )
        async with running_gateway(config):
            await probe.wait_for(
                f"{BASE}/pools/site/system_power_bounds",
                lambda m: (m.json()["inclusion_bounds"] or {}).get("upper", 0) > 20000,
            )
            await probe.publish(
                f"{BASE}/pools/site/propose_power", {"source": "hems", "power": 22000}
            )

            def all_charging(_: object) -> bool:
                states = [probe.last(f"{BASE}/chargers/{cid}/state") for cid in wiring]
                return all(s is not None and s.json()["active_power"] > 1000 for s in states)

            await probe.wait_for(f"{BASE}/pools/site/current_per_phase", all_charging, 20)
            await probe.ticks(3 * round(POLL / 0.2) + 1)  # three polls' worth of ticks
            # no grid phase ever above the fuse, measured or commanded
            for message in probe.on(f"{BASE}/pools/site/current_per_phase"):
                body = message.json()
                assert max(body["value_p1"], body["value_p2"], body["value_p3"]) <= PHASE_LIMIT
            # what the EVs may physically draw under each commanded set of limits: the
            # 3-phase EVs on every grid phase, the 1-phase EV on its charger's L1 = grid L1
            for message in probe.on(f"{BASE}/pools/site/power_distribution_results"):
                limits = message.json()["current_limits"]
                for grid_phase in (1, 2, 3):
                    load = limits["rot-a"] + limits["rot-b"]
                    load += limits["single"] if grid_phase == 1 else 0.0
                    assert load <= PHASE_LIMIT + 1e-6, (grid_phase, limits)
            # every EV charges (L1 carries all three: 3 x 6.6 A fits 20 A)
            assert sims[2].current_limit is not None and sims[2].current_limit >= 6.0
            assert all(sim.current_limit is not None and sim.current_limit >= 6.0 for sim in sims)

            # a lower proposal is followed within two polling intervals
            target = 8000.0
            sent = time.monotonic()
            await probe.publish(
                f"{BASE}/pools/site/propose_power", {"source": "hems", "power": target}
            )
            phases_of = [3, 3, 1]

            def estimated() -> float:
                return sum(
                    (sim.current_limit or 0.0) * 230.0 * n
                    for sim, n in zip(sims, phases_of, strict=True)
                )

            while estimated() > target:
                assert time.monotonic() - sent < 2 * POLL, f"still {estimated():.0f} W"
                await asyncio.sleep(0.01)


async def test_one_ampere_steps_reach_the_target_within_one_step(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    """Vestel chargers take whole amperes: the pool is shared in 1 A, as written."""
    async with simulators(3, "vestel-evc04", plugged=True) as sims:
        chargers = [modbus_charger(f"v-{i}", sim) for i, sim in enumerate(sims)]
        config = site_config(
            mosquitto,
            chargers,
            distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
        )
        async with running_gateway(config):
            await probe.wait_for(
                f"{BASE}/pools/default/system_power_bounds",
                lambda m: (m.json()["inclusion_bounds"] or {}).get("upper", 0) > 3 * 6 * 690,
            )
            target = 15600.0  # 7.54 A each: 7 + 7 + 8 A fits, 8 + 8 + 8 A does not
            await probe.publish(
                f"{BASE}/pools/default/propose_power", {"source": "hems", "power": target}
            )
            result = await probe.wait_for(
                f"{BASE}/pools/default/power_distribution_results",
                lambda m: (
                    m.json()["request"]["power"] == target
                    and m.json()["result"] == "success"
                    and sorted(m.json()["current_limits"].values()) == [7.0, 7.0, 8.0]
                ),
                timeout=20,
            )
            body = result.json()
            assert sorted(sim.applied_current_limit for sim in sims) == [7.0, 7.0, 8.0]
            volts = 3 * 230.0  # W per A of a 3-phase EV at the simulators' voltage
            assert body["succeeded_power"] <= target
            assert target - body["succeeded_power"] < volts  # within one step of one EV
