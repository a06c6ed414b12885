"""go-e Charger over its local HTTP API v2, against the simulated box over real HTTP on
loopback, and end to end through the daemon in one pool with the new Modbus profiles."""

from __future__ import annotations

import contextlib

import pytest

from gateway.adapters.base import ChargerProtocolError, ChargerUnreachable
from gateway.adapters.goe import GoeCharger
from gateway.config import ConfigError, config_from_dict
from gateway.core.model import CableState, ComponentState, Phases
from gateway.simulator.goe_server import SimulatedGoe
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.modbus_helpers import ManualClock
from tests.test_e2e_control import propose, wait_until, working

VOLTS = (229.0, 231.0, 233.0)


def adapter(sim: SimulatedGoe, max_current: float = 32.0, timeout: float = 0.5) -> GoeCharger:
    return GoeCharger(
        "bay-9", sim.host, sim.port, max_current=max_current, wired_phases=3, timeout=timeout
    )


async def test_status_decodes_power_currents_voltages_energy_and_state() -> None:
    clock = ManualClock()
    async with SimulatedGoe(voltages=VOLTS, energy=12_000.0, clock=clock) as sim:
        charger = adapter(sim)
        empty = await charger.read()
        assert (empty.cable_state, empty.component_state) == (
            CableState.UNPLUGGED,
            ComponentState.READY,
        )
        assert sim.requests[-1] == "/api/status?filter=car,err,amp,ama,frc,eto,nrg"
        sim.plug(phases=3, ev_max_current=10.0)
        assert await charger.set_current_limit(16.0) == 16.0
        sample = await charger.read()
        assert sample.voltage == Phases(*VOLTS)
        assert sample.current == Phases(10.0, 10.0, 10.0)
        assert sample.active_power == pytest.approx(10.0 * sum(VOLTS), abs=0.1)
        assert (sample.cable_state, sample.component_state) == (
            CableState.EV_PLUGGED,
            ComponentState.CHARGING,
        )
        assert sample.current_limit == 16.0 and sample.energy == 12_000.0
        clock.advance(3600.0)
        assert (await charger.read()).energy == pytest.approx(12_000.0 + 6930.0, abs=1.0)
        assert await charger.set_current_limit(3.0) == 0.0  # pause: frc = 1 (off)
        paused = await charger.read()
        assert paused.current == Phases(0.0, 0.0, 0.0) and paused.current_limit == 0.0
        assert (paused.cable_state, paused.component_state) == (
            CableState.EV_PLUGGED,
            ComponentState.READY,
        )
        assert paused.usable
        await charger.close()


async def test_limits_are_whole_amperes_written_once_and_resumed_from_off() -> None:
    async with SimulatedGoe(voltages=VOLTS) as sim:
        sim.plug()
        charger = adapter(sim, max_current=16.0)
        assert await charger.set_current_limit(15.94) == 15.0
        assert sim.sets == [{"amp": 15, "frc": 0}]
        assert sim.requests[-1] == "/api/set?amp=15&frc=0"
        assert await charger.set_current_limit(15.5) == 15.0
        assert len(sim.sets) == 1  # unchanged: not written again
        assert await charger.set_current_limit(0.0) == 0.0
        assert sim.sets[-1] == {"frc": 1} and sim.offered == 0.0
        assert await charger.set_current_limit(40.0) == 16.0  # the configured maximum
        assert sim.sets[-1] == {"amp": 16, "frc": 0} and sim.offered == 16.0
        sim.amp = 32  # the box restarts with a saved value, or someone uses the app
        await charger.read()  # sees it and writes the gateway's limit again at once
        assert sim.sets[-1] == {"amp": 16, "frc": 0} and sim.amp == 16
        sets = len(sim.sets)
        await charger.read()
        assert len(sim.sets) == sets  # in agreement: nothing written
        await charger.set_current_limit(0.0)
        sim.frc = 0  # off undone on the box: off again
        await charger.read()
        assert sim.sets[-1] == {"frc": 1} and sim.offered == 0.0
        await charger.close()


async def test_no_watchdog_the_set_value_stays() -> None:
    clock = ManualClock()
    async with SimulatedGoe(voltages=VOLTS, clock=clock) as sim:
        sim.plug()
        charger = adapter(sim)
        await charger.set_current_limit(12.0)
        clock.advance(24 * 3600.0)
        assert (await charger.read()).current == Phases(12.0, 12.0, 12.0)
        assert len(sim.sets) == 1
        await charger.close()


async def test_refusals_and_errors_are_clear_one_line_errors() -> None:
    async with SimulatedGoe(voltages=VOLTS, ampere_max=16) as sim:
        charger = adapter(sim, max_current=32.0)
        with pytest.raises(ChargerProtocolError) as refused:
            await charger.set_current_limit(20.0)
        assert str(refused.value) == (
            f"charger bay-9 (go-e 127.0.0.1:{sim.port}): the charger refused "
            "amp=20: 'value out of range (6-16)'"
        )
        assert await charger.set_current_limit(16.0) == 16.0  # not cached as written
        await charger.read()  # now the adapter knows the box's maximum (ama = 16)
        assert await charger.set_current_limit(20.0) == 16.0 and sim.amp == 16
        sim.error_code = 5
        errored = await charger.read()
        assert errored.component_state is ComponentState.ERROR and not errored.usable
        sim.error_code = 0
        sim.garbage = True
        with pytest.raises(ChargerProtocolError, match=r"bay-9 .*nrg value .* plausible range"):
            await charger.read()
        sim.garbage = False
        sim.api_enabled = False
        with pytest.raises(ChargerProtocolError, match="HTTP 404: is the HTTP API v2 enabled"):
            await charger.read()
        sim.api_enabled = True
        sim.silent = True
        quick = adapter(sim, timeout=0.2)
        with pytest.raises(ChargerUnreachable, match=r"bay-9 .*no answer within 0.2 s"):
            await quick.read()
        sim.silent = False
        assert (await charger.read()).voltage == Phases(*VOLTS)
        port = sim.port
    gone = GoeCharger("bay-9", "127.0.0.1", port, max_current=16.0, wired_phases=3, timeout=0.5)
    with pytest.raises(ChargerUnreachable, match=r"bay-9 .*cannot connect"):
        await gone.read()


def test_config_needs_a_host_and_defaults_to_port_80() -> None:
    base = {"mqtt": {"host": "127.0.0.1"}}
    with pytest.raises(ConfigError, match='adapter "go-e" needs host'):
        config_from_dict({**base, "chargers": [{"id": "g", "adapter": "go-e"}]}, "<test>")
    config = config_from_dict(
        {**base, "chargers": [{"id": "g", "adapter": "go-e", "host": "10.0.0.9"}]}, "<test>"
    )
    charger = config.chargers[0]
    assert (charger.adapter, charger.port) == ("go-e", 80)
    modbus = config_from_dict(
        {**base, "chargers": [{"id": "m", "adapter": "modbus", "profile": "generic", "host": "h"}]},
        "<test>",
    )
    assert modbus.chargers[0].port == 502


NEW_MODBUS = ("bender-cc", "webasto-next", "keba-p40", "amperfied-connect")


async def test_daemon_limits_a_goe_next_to_the_new_modbus_chargers(
    mosquitto: Mosquitto, probe: MqttProbe
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        sims = [
            await stack.enter_async_context(simulators(1, profile, plugged=True))
            for profile in NEW_MODBUS
        ]
        goe = await stack.enter_async_context(SimulatedGoe())
        goe.plug(phases=3, ev_max_current=16.0)
        chargers = [
            # a generous timeout: a poll timing out while the daemon stops can swallow
            # the stop on Python 3.11 (asyncio.wait_for in the poller)
            *(
                modbus_charger(f"{p}-1", group[0], timeout=2.0, poll_interval=0.5)
                for p, group in zip(NEW_MODBUS, sims, strict=True)
            ),
            {
                "id": "goe-1",
                "adapter": "go-e",
                "host": "127.0.0.1",
                "port": goe.port,
                "poll_interval": 0.5,
                "timeout": 2.0,
                "max_current": 16.0,
            },
        ]
        config = site_config(
            mosquitto,
            chargers,
            distribution={"ramp_up_rate": 80.0, "min_on_time": 0.0, "min_off_time": 0.0},
        )
        async with running_gateway(config):
            await working(probe, 5)
            # 27600 W over five 3-phase EVs at 230 V: 8 A each
            reply = await propose(probe, {"source": "hems", "priority": 10, "power": 27600.0})
            assert reply.json() == {"status": "ok", "source": "hems"}
            modbus = [group[0] for group in sims]
            await wait_until(
                lambda: goe.amp == 8 and goe.frc == 0
                and all(sim.current_limit == 8.0 for sim in modbus),
                what="8 A on all five",
            )  # fmt: skip
            await probe.wait_for(
                "ev-gateway/chargers/goe-1/state",
                lambda m: (
                    (m.json().get("active_power") or 0) > 5000 and m.json()["current_limit"] == 8.0
                ),
            )
