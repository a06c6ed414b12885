"""End to end: `expires_in` over MQTT; a lasting set-point outlives `max_proposal_age`."""

from __future__ import annotations

from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.test_e2e_control import BASE, propose, wait_until, working

STATUS = f"{BASE}/pools/default/power_status"


async def test_a_lasting_proposal_holds_while_a_default_one_expires(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims:
        sims[0].plug(phases=3, ev_max_current=16.0)
        config = site_config(
            mosquitto,
            [modbus_charger("bay-1", sims[0])],
            distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
            power={"max_proposal_age": 1.0},
        )
        async with running_gateway(config):
            await working(probe, 1)
            # 16 A on three phases, lasting; a higher-priority cap at 6 A with the default age
            cap = {"source": "cap", "priority": 5, "bounds": {"upper": 4140}}
            await propose(probe, cap)
            lasting = {"source": "slider", "power": 11040, "expires_in": None}
            assert (await propose(probe, lasting)).json()["status"] == "ok"
            await wait_until(lambda: sims[0].current_limit == 6.0, what="6 A under the cap")
            await probe.wait_for(f"{STATUS}/cap", lambda m: m.payload == b"", timeout=10)
            await wait_until(lambda: sims[0].current_limit == 16.0, timeout=10, what="16 A")
            status = probe.last(f"{STATUS}/slider")
            assert status is not None and status.json()["target_power"] == 11040.0
            assert not [m for m in probe.on(f"{STATUS}/slider") if m.payload == b""]


async def test_expires_in_out_of_range_gets_an_error_reply(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with simulators(1) as sims:
        config = site_config(
            mosquitto, [modbus_charger("bay-1", sims[0])], power={"max_expires_in": 600.0}
        )
        async with running_gateway(config) as gateway:
            await wait_until(gateway.bridge.connected.is_set, what="connected")
            reply = await propose(probe, {"source": "ha", "power": 1000, "expires_in": 601})
            body = reply.json()
            assert body["status"] == "error" and "at most 600 s" in body["error"]
            timed = await propose(probe, {"source": "ha", "power": 1000, "expires_in": 600})
            assert timed.json() == {"status": "ok", "source": "ha"}
