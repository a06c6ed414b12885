"""The gateway against a real Home Assistant 2024.3.3 with its MQTT integration.

Home Assistant runs from its own venv (installed once, cached under
~/.cache/ev-gateway, see tests/clients/cache.py), headless on a free port, and is
set up through its REST API only: onboarding, a token, the MQTT integration added
by config flow. The tests then read entities from `/api/states` and drive the
"Power limit" number with the `number.set_value` service, as a person would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.daemon import Gateway
from tests.clients.cache import InstallError, home_assistant_venv
from tests.clients.homeassistant import HomeAssistant
from tests.conftest import Mosquitto, MqttProbe, free_port
from tests.harness import modbus_charger, running_gateway, simulators, site_config

# Each test gets 180 s; the install in the fixture is not counted (a cold one took up
# to 15 min on a loaded machine, with its own limit per step).
pytestmark = pytest.mark.timeout(180, func_only=True)

POOL = "garage"
PREFIX = "evgw_ev_gateway"
NUMBER = f"number.{PREFIX}_pool_{POOL}_power_limit"
BUTTON = f"button.{PREFIX}_pool_{POOL}_automatic"
MAX_PROPOSAL_AGE = 2.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the module: Home Assistant stays connected to it across tests."""
    path = tmp_path_factory.mktemp("broker")
    port = free_port()
    conf = path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    mosquitto = Mosquitto(port, conf, path / "mosquitto.log")
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture(scope="module")
def home_assistant(
    broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HomeAssistant]:
    try:
        venv = home_assistant_venv()
    except InstallError as exc:
        pytest.skip(f"Home Assistant cannot be installed here: {exc}")
    ha = HomeAssistant(venv.path, tmp_path_factory.mktemp("ha"), free_port())
    try:
        ha.start()
        ha.onboard()
        entry = ha.add_mqtt(broker.host, broker.port)
        assert entry["state"] == "loaded", entry
        yield ha
    finally:
        ha.stop()


@pytest.fixture
def mosquitto(broker: Mosquitto) -> Mosquitto:
    """The `probe` fixture listens on the module's broker."""
    return broker


def _config(broker: Mosquitto, sims: list[Any]) -> dict[str, Any]:
    config = site_config(
        broker,
        [modbus_charger("bay-1", sims[0]), modbus_charger("bay-2", sims[1], phases=[2, 3, 1])],
        pools=[{"name": POOL, "chargers": ["bay-1", "bay-2"]}],
        power={"max_proposal_age": MAX_PROPOSAL_AGE},
    )
    config["homeassistant"] = {"enabled": True, "priority": 50}
    return config


@contextlib.asynccontextmanager
async def _site(broker: Mosquitto) -> AsyncIterator[Gateway]:
    """Two plugged simulated chargers in pool `garage`, and the gateway running."""
    async with simulators(2, plugged=True) as sims, running_gateway(
        _config(broker, sims)
    ) as gateway:
        yield gateway


async def _target(probe: MqttProbe, watts: float) -> None:
    """Wait until the pool's retained target says `watts` (the chargers may still be
    starting, which holds the target at 0 W for a moment)."""
    await probe.wait_for(f"ev-gateway/pools/{POOL}/target",
                         lambda m: m.payload and m.json()["target_power"] == watts)


async def _wait(ha: HomeAssistant, entity: str, predicate: Any, timeout: float = 30) -> Any:
    return await asyncio.to_thread(ha.wait_for, entity, predicate, timeout)


async def _set_limit(ha: HomeAssistant, probe: MqttProbe, gateway: Gateway, watts: float) -> Any:
    """Set the Power limit as a person would; the gateway's power_status that follows."""
    # `online` goes out just before the gateway subscribes: wait for the subscriptions.
    await asyncio.wait_for(gateway.bridge.connected.wait(), 10)
    await _wait(ha, NUMBER, lambda s: s["state"] != "unavailable")
    start = len(probe.messages)
    await asyncio.to_thread(ha.call, "number", "set_value", {"entity_id": NUMBER, "value": watts})
    return await probe.wait_for(
        f"ev-gateway/pools/{POOL}/power_status/homeassistant",
        lambda m: m.payload and m.json().get("priority") == 50,
        after=start,
    )


async def test_entities_units_and_device_classes(
    home_assistant: HomeAssistant, probe: MqttProbe, broker: Mosquitto
) -> None:
    ha = home_assistant
    async with simulators(2, plugged=True) as sims, running_gateway(_config(broker, sims)):
        power = await _wait(ha, f"sensor.{PREFIX}_charger_bay_1_power",
                            lambda s: s["state"] not in ("unavailable", "unknown"))
        states = await asyncio.to_thread(ha.states)
        # bay-2 stops answering: its figures become unavailable, its status says so,
        # and bay-1 is unaffected.
        sims[1].silent = True
        await _wait(ha, f"sensor.{PREFIX}_charger_bay_2_power",
                    lambda s: s["state"] == "unavailable")
        await _wait(ha, f"sensor.{PREFIX}_charger_bay_2_status",
                    lambda s: s["state"] == "not_working")
        after = await asyncio.to_thread(ha.states)
        assert after[f"binary_sensor.{PREFIX}_charger_bay_2_plugged"]["state"] == "unavailable"
        assert after[f"sensor.{PREFIX}_charger_bay_1_power"]["state"] != "unavailable"
        sims[1].silent = False
        await _wait(ha, f"sensor.{PREFIX}_charger_bay_2_power",
                    lambda s: s["state"] not in ("unavailable", "unknown"))
    attrs = {eid: s["attributes"] for eid, s in states.items() if PREFIX in eid}
    assert power["attributes"]["device_class"] == "power"
    assert power["attributes"]["unit_of_measurement"] == "W"
    assert float(power["state"]) >= 0  # no proposal yet: the EV may draw nothing
    limit = states[f"sensor.{PREFIX}_charger_bay_1_current_limit"]
    assert limit["attributes"]["unit_of_measurement"] == "A" and float(limit["state"]) >= 0
    for n in (1, 2, 3):
        current = attrs[f"sensor.{PREFIX}_pool_{POOL}_current_l{n}"]
        assert (current["device_class"], current["unit_of_measurement"]) == ("current", "A")
    energy = attrs[f"sensor.{PREFIX}_charger_bay_2_energy"]
    assert (energy["device_class"], energy["unit_of_measurement"]) == ("energy", "Wh")
    assert energy["state_class"] == "total_increasing"
    plugged = states[f"binary_sensor.{PREFIX}_charger_bay_1_plugged"]
    assert plugged["attributes"]["device_class"] == "plug" and plugged["state"] == "on"
    status = states[f"sensor.{PREFIX}_charger_bay_1_status"]
    assert status["attributes"]["device_class"] == "enum" and status["state"] == "working"
    number = attrs[NUMBER]
    assert number["unit_of_measurement"] == "W"
    assert (number["min"], number["max"]) == (0, 2 * 16 * 3 * 230.0)
    assert BUTTON in states
    assert states[f"binary_sensor.{PREFIX}_bridge"]["state"] == "on"
    # Every pool figure lives on the pool's own device, named after it.
    assert states[f"sensor.{PREFIX}_pool_{POOL}_power"]["attributes"]["friendly_name"] == (
        f"EV pool {POOL} Power"
    )
    # The gateway stopped: everything it serves is unavailable, not a stale number.
    gone = await _wait(ha, f"sensor.{PREFIX}_charger_bay_1_power",
                       lambda s: s["state"] == "unavailable")
    assert gone["state"] == "unavailable"


async def test_power_limit_sets_the_target_and_holds_past_max_proposal_age(
    home_assistant: HomeAssistant, probe: MqttProbe, broker: Mosquitto
) -> None:
    ha = home_assistant
    async with _site(broker) as gateway:
        controller = gateway.controllers[POOL]
        await _set_limit(ha, probe, gateway, 7400)
        await _target(probe, 7400.0)
        assert controller.manager.target == 7400.0
        # A proposal of the ordinary kind, sent now, expires after max_proposal_age:
        # once it is gone, that age has passed for Home Assistant's too.
        start = len(probe.messages)
        await probe.publish(f"ev-gateway/pools/{POOL}/propose_power",
                            {"source": "probe", "priority": 1, "power": 3000})
        await probe.wait_for(f"ev-gateway/pools/{POOL}/power_status/probe",
                             lambda m: m.payload == b"", after=start, timeout=30)
        assert controller.manager.target == 7400.0
        assert "homeassistant" in controller.manager.sources()
        # "Automatic" withdraws it: the source is gone, the pool is back to the others.
        start = len(probe.messages)
        await asyncio.to_thread(ha.call, "button", "press", {"entity_id": BUTTON})
        await probe.wait_for(f"ev-gateway/pools/{POOL}/power_status/homeassistant",
                             lambda m: m.payload == b"", after=start)
        assert "homeassistant" not in controller.manager.sources()
        assert controller.manager.target != 7400.0


async def test_entities_show_the_target_and_the_accepted_limit(
    home_assistant: HomeAssistant, probe: MqttProbe, broker: Mosquitto
) -> None:
    ha = home_assistant
    async with _site(broker) as gateway:
        status = await _set_limit(ha, probe, gateway, 6900)
        assert status.json()["proposed_power"] == 6900.0
        await _target(probe, 6900.0)
        await _wait(ha, f"sensor.{PREFIX}_pool_{POOL}_target_power",
                    lambda s: s["state"] == "6900.0")
        await _wait(ha, NUMBER, lambda s: s["state"] == "6900.0")
        await asyncio.to_thread(ha.call, "button", "press", {"entity_id": BUTTON})
        await _wait(ha, NUMBER, lambda s: s["state"] == "unknown")


async def test_templates_read_the_documented_target_and_status_payloads(
    home_assistant: HomeAssistant, probe: MqttProbe, broker: Mosquitto
) -> None:
    """The Target power sensor and the number's state, fed the payloads the gateway owes.

    Published here by hand (with discovery and `online`), so Home Assistant's own
    template engine is checked on every form: a value, null, and a cleared topic.
    """
    from gateway.config import config_from_dict
    from gateway.mqtt.homeassistant import discovery_messages
    from gateway.mqtt.topics import Topics

    ha = home_assistant
    config = config_from_dict(_config(broker, [_FakeSim(1), _FakeSim(2)]))
    for topic, payload in discovery_messages(config, Topics("ev-gateway")):
        await probe.publish(topic, payload, retain=True)
    await probe.publish("ev-gateway/bridge/state", "online", retain=True)
    status = f"ev-gateway/pools/{POOL}/power_status/homeassistant"
    target = f"ev-gateway/pools/{POOL}/target"
    await probe.publish(target, {"timestamp": "2026-01-01T00:00:00Z", "target_power": 4321.5},
                        retain=True)
    await probe.publish(status, {"source": "homeassistant", "priority": 50,
                                 "proposed_power": 4300.0, "target_power": 4321.5}, retain=True)
    shown = await _wait(ha, f"sensor.{PREFIX}_pool_{POOL}_target_power",
                        lambda s: s["state"] not in ("unknown", "unavailable"))
    assert float(shown["state"]) == 4321.5
    limit = await _wait(ha, NUMBER, lambda s: s["state"] not in ("unknown", "unavailable"))
    assert float(limit["state"]) == 4300.0
    await probe.publish(status, {"source": "homeassistant", "priority": 50,
                                 "proposed_power": None, "target_power": 0.0}, retain=True)
    await _wait(ha, NUMBER, lambda s: s["state"] == "unknown")
    await probe.publish(status, {"source": "homeassistant", "proposed_power": 1000}, retain=True)
    await _wait(ha, NUMBER, lambda s: s["state"] not in ("unknown", "unavailable"))
    await probe.publish(status, b"", retain=True)  # withdrawn: the topic is cleared
    await _wait(ha, NUMBER, lambda s: s["state"] == "unknown")
    await probe.publish("ev-gateway/bridge/state", "offline", retain=True)
    await _wait(ha, NUMBER, lambda s: s["state"] == "unavailable")
    await probe.publish(target, b"", retain=True)


class _FakeSim:
    """Only what `modbus_charger` reads, for building a config without servers."""

    profile_name = "generic"

    def __init__(self, port: int) -> None:
        self.port = port


async def test_power_limit_holds_after_a_gateway_restart(
    home_assistant: HomeAssistant, probe: MqttProbe, broker: Mosquitto, tmp_path: Path
) -> None:
    ha = home_assistant
    async with simulators(2, plugged=True) as sims:
        config = _config(broker, sims)
        config["state"] = {"directory": str(tmp_path / "state")}
        async with running_gateway(config) as gateway:
            await _set_limit(ha, probe, gateway, 5000)
            await _target(probe, 5000.0)
        start = len(probe.messages)
        async with running_gateway(config) as gateway:
            # The new run restores Home Assistant's lasting proposal from its state file.
            await probe.wait_for("ev-gateway/bridge/state", lambda m: m.payload == b"online",
                                 after=start)
            assert "homeassistant" in gateway.controllers[POOL].manager.sources()
            await probe.wait_for(f"ev-gateway/pools/{POOL}/target",
                                 lambda m: m.payload and m.json()["target_power"] == 5000.0,
                                 after=start)
            await _wait(ha, NUMBER, lambda s: s["state"] == "5000.0")
