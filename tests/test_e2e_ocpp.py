"""End to end: OCPP charge points (the `ocpp` library, 1.6J and 2.0.1) through the daemon."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.conftest import Mosquitto, MqttProbe, free_port
from tests.harness import running_gateway, site_config
from tests.ocpp201_helpers import V201, SimulatedStation, sampled
from tests.ocpp_helpers import connected_charge_point, wait_until

BASE = "ev-gateway"


async def test_ocpp_charge_point_reaches_the_pool_and_follows_proposals(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    port = free_port()
    charger = {
        "id": "bay-9",
        "adapter": "ocpp",
        "charge_point_id": "CP-9",
        "max_current": 16.0,
        "phases": [2, 3, 1],
        "poll_interval": 0.2,
    }
    config = site_config(
        mosquitto,
        [charger],
        ocpp={
            "host": "127.0.0.1",
            "port": port,
            "response_timeout": 2.0,
            "basic_auth": {"CP-9": "a-long-test-password"},
        },
        distribution={"ramp_up_rate": 80.0},
    )
    async with running_gateway(config):
        async with connected_charge_point(port, "CP-9", password="a-long-test-password") as cp:
            await cp.boot()
            await cp.status("Charging")
            await cp.meter_values(
                power=2300.0, current=(10.0, 0.0, 0.0), voltage=(230.0, 230.0, 230.0), energy=5.0,
                energy_unit="kWh",
            )  # fmt: skip
            # a single-phase draw on the charger's L1, wired to grid L2
            body = (
                await probe.wait_for(
                    f"{BASE}/pools/default/current_per_phase",
                    lambda m: m.json()["value_p2"] == 10.0,
                )
            ).json()
            assert body["value_p1"] == 0.0 and body["value_p3"] == 0.0 and body["missing"] == []
            state = await probe.wait_for(  # with the meter values (not a state before them)
                f"{BASE}/chargers/bay-9/state",
                lambda m: m.json()["status"] == "working" and bool(m.json()["active_power"]),
            )
            assert state.json()["energy"] == 5000.0
            assert state.json()["active_power"] == 2300.0
            # a proposal becomes a SetChargingProfile in amperes, rounded down to 0.1 A
            await probe.publish(
                f"{BASE}/pools/default/propose_power", {"source": "hems", "power": 3000.0}
            )

            def limited() -> bool:
                limits = [
                    p["charging_schedule"]["charging_schedule_period"][0]["limit"]
                    for p in cp.profiles()
                    if p["stack_level"] == 1
                ]
                return bool(limits) and limits[-1] > 0

            await wait_until(limited, timeout=5)
            profile = [p for p in cp.profiles() if p["stack_level"] == 1][-1]
            schedule = profile["charging_schedule"]
            assert schedule["charging_rate_unit"] == "A"
            limit = Decimal(str(schedule["charging_schedule_period"][0]["limit"]))
            assert limit == limit.quantize(Decimal("0.1"))
            # 3000 W on the EV's one detected phase at 230 V is 13.0 A, never more
            assert 6 <= float(limit) <= 13.05
            assert profile["charging_profile_purpose"] == "TxDefaultProfile"
            # the charge point goes away: not working after max_data_age
        await probe.wait_for(
            f"{BASE}/chargers/bay-9/state",
            lambda m: m.json()["status"] == "not_working",
            timeout=5,
            after=len(probe.messages),
        )
        await asyncio.sleep(0)


async def test_ocpp16_and_ocpp201_charge_points_share_one_pool(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    port = free_port()
    chargers = [
        {"id": "bay-16", "adapter": "ocpp", "charge_point_id": "CP-16", "poll_interval": 0.2},
        {"id": "bay-21", "adapter": "ocpp", "charge_point_id": "CP-21", "poll_interval": 0.2},
    ]
    passwords = {"CP-16": "password-of-cp-16", "CP-21": "password-of-cp-21"}
    config = site_config(
        mosquitto,
        chargers,
        ocpp={"host": "127.0.0.1", "port": port, "response_timeout": 2.0, "basic_auth": passwords},
        distribution={"ramp_up_rate": 80.0},
    )
    async with (
        running_gateway(config),
        connected_charge_point(port, "CP-16", password=passwords["CP-16"]) as old,
        connected_charge_point(
            port, "CP-21", password=passwords["CP-21"], cls=SimulatedStation, subprotocols=V201
        ) as new,
    ):
        await old.boot()
        await new.boot()
        await old.status("Charging")
        await old.meter_values(power=6900.0, current=(10.0, 10.0, 10.0), voltage=(230.0,) * 3)
        await new.status("Occupied")
        await new.transaction_event(
            "Started", charging_state="Charging",
            meter=sampled(power_kw=4.6, current=(6.7, 6.7, 6.7), voltage=230.0),
        )  # fmt: skip
        power = await probe.wait_for(
            f"{BASE}/pools/default/power",
            lambda m: m.json()["value"] == pytest.approx(11500.0) and m.json()["missing"] == [],
        )
        assert power.json()["value"] == pytest.approx(11500.0)
        await probe.publish(
            f"{BASE}/pools/default/propose_power", {"source": "hems", "power": 11040.0}
        )

        def old_limits() -> list[float]:
            return [
                float(p["charging_schedule"]["charging_schedule_period"][0]["limit"])
                for p in old.profiles()
                if p["stack_level"] == 1
            ]

        await wait_until(lambda: bool(old_limits()) and bool(new.limits()), timeout=5)
        await wait_until(lambda: old_limits()[-1] > 0 and new.limits()[-1] > 0, timeout=5)
        # 11040 W over two 3-phase EVs at 230 V: at most 16 A in total per phase
        assert min(old_limits()[-1], new.limits()[-1]) >= 6.0
        assert old_limits()[-1] + new.limits()[-1] <= 16.0 + 1e-9
        # the first state with the station's meter values (one may go out between its
        # status and its transaction event, working at 0 W)
        state = await probe.wait_for(
            f"{BASE}/chargers/bay-21/state",
            lambda m: m.json()["status"] == "working" and bool(m.json()["active_power"]),
        )
        assert state.json()["active_power"] == pytest.approx(4600.0)
