"""Every vendor profile against its simulator twin over real Modbus TCP: what it reads,
the limit it writes (unit, step, function code), its watchdog (and the fail-safe when
the gateway falls silent) and its error codes. Profile-specific checks live beside
their profile's other tests (test_vendor_profiles.py, the particulars at the end here)."""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

import pytest
from pymodbus.constants import ExcCodes

from gateway.adapters.base import ChargerProtocolError
from gateway.adapters.modbus.decoding import DataType, WordOrder
from gateway.adapters.modbus.profile import (
    ProfileError,
    available_profiles,
    load_profile,
    parse_profile,
)
from gateway.core.model import CableState, ComponentState, Phases
from tests.modbus_helpers import ManualClock, adapter_for, bare_client, running_sim
from tests.test_profiles import generic_data

VOLTS = (229.0, 231.0, 233.0)
PLUGGED = CableState.EV_PLUGGED
CHARGING = ComponentState.CHARGING
READY = ComponentState.READY


@dataclass(frozen=True)
class Twin:
    """What each profile must show against its simulator for the same situation."""

    voltages: bool  # the charger reports voltages
    energy: bool  # the profile maps a lifetime energy register
    charging: tuple[CableState, ComponentState]
    paused: tuple[CableState, ComponentState]
    setpoint_fc: int
    setpoint_raw: list[int]  # the registers 15.94 A puts at the setpoint address
    written: float  # the amps that write means (after the profile's step)
    requests: int  # Modbus requests per read
    read_fcs: frozenset[int]
    missing: int  # an address the charger answers exception 2 for
    fail_safe: bool  # the charger falls back when the gateway goes silent
    max_amps: float = 32.0  # the most its setpoint register takes
    energy_step: float = 1.0  # Wh: the energy register's resolution


def _f32(value: float) -> list[int]:
    return list(struct.unpack(">2H", struct.pack(">f", value)))


TWINS: dict[str, Twin] = {
    "abb-terra-ac": Twin(
        voltages=True, energy=False, charging=(PLUGGED, CHARGING), paused=(PLUGGED, READY),
        setpoint_fc=16, setpoint_raw=[0, 15900], written=15.9, requests=1,
        read_fcs=frozenset({3}), missing=0x4030, fail_safe=True,
    ),
    "schneider-evlink": Twin(
        voltages=True, energy=True, charging=(PLUGGED, CHARGING), paused=(PLUGGED, READY),
        setpoint_fc=6, setpoint_raw=[15], written=15.0, requests=3,
        read_fcs=frozenset({3}), missing=3300, fail_safe=True,
    ),
    "phoenix-contact-charx": Twin(
        voltages=True, energy=True, charging=(PLUGGED, CHARGING), paused=(PLUGGED, READY),
        setpoint_fc=16, setpoint_raw=[15], written=15.0, requests=3,
        read_fcs=frozenset({3}), missing=1246, fail_safe=False,
    ),
    "vestel-evc04": Twin(
        # cable state 1004, turned into "charging" by the charging state 1001
        voltages=True, energy=True, charging=(CableState.EV_LOCKED, CHARGING),
        paused=(CableState.EV_LOCKED, READY),
        setpoint_fc=6, setpoint_raw=[15], written=15.0, requests=10,
        read_fcs=frozenset({4}), missing=1040, fail_safe=True, energy_step=100.0,
    ),
    "bender-cc": Twin(
        voltages=True, energy=True, charging=(PLUGGED, CHARGING), paused=(PLUGGED, READY),
        setpoint_fc=16, setpoint_raw=[15], written=15.0, requests=2,
        read_fcs=frozenset({3}), missing=300, fail_safe=False,
    ),
    "webasto-next": Twin(
        voltages=False, energy=True, charging=(PLUGGED, CHARGING), paused=(PLUGGED, READY),
        setpoint_fc=16, setpoint_raw=[15], written=15.0, requests=6,
        read_fcs=frozenset({3, 4}), missing=1040, fail_safe=True,
    ),
    "keba-p40": Twin(
        voltages=True, energy=True, charging=(CableState.EV_LOCKED, CHARGING),
        paused=(CableState.EV_LOCKED, READY),
        setpoint_fc=6, setpoint_raw=[15900], written=15.9, requests=10,
        read_fcs=frozenset({3}), missing=1046, fail_safe=True,
    ),
    "mennekes-amtron-compact": Twin(
        voltages=True, energy=True, charging=(PLUGGED, CHARGING), paused=(PLUGGED, READY),
        setpoint_fc=16, setpoint_raw=_f32(15.9), written=15.9, requests=4,
        read_fcs=frozenset({3}), missing=0x0600, fail_safe=True,
    ),
    "amperfied-connect": Twin(
        voltages=True, energy=True, charging=(PLUGGED, CHARGING), paused=(PLUGGED, READY),
        setpoint_fc=16, setpoint_raw=[159], written=15.9, requests=1,
        read_fcs=frozenset({4}), missing=40, fail_safe=True, max_amps=16.0,
    ),
}  # fmt: skip
PROFILES = tuple(TWINS)


def _amps(phases: Phases) -> tuple[float, float, float]:
    return (phases.p1, phases.p2, phases.p3)


# -- profile facts (pure) -------------------------------------------------------------


def test_profiles_carry_their_documented_registers() -> None:
    bender = load_profile("bender-cc")
    assert (bender.unit_id, bender.state.address, bender.setpoint.address) == (255, 122, 1000)
    assert bender.registers["current_l1"].scale == 0.001 and bender.watchdog is not None
    assert [p.block.address for p in bender.read_plan] == [122, 212]
    assert "Mennekes AMTRON Professional / ChargeControl / AMEDIO" in bender.covers

    webasto = load_profile("webasto-next")
    assert {n: s.function_code for n, s in webasto.registers.items()} == {
        "current_l1": 4, "current_l2": 4, "current_l3": 4, "active_power": 3, "energy": 3,
    }  # fmt: skip
    assert webasto.watchdog is not None and webasto.watchdog.timeout_register == 2002
    assert webasto.watchdog.heartbeat is not None and webasto.watchdog.heartbeat.address == 6000

    keba = load_profile("keba-p40")
    assert keba.read_separately and all(p.block.count == 2 for p in keba.read_plan)
    assert keba.registers["active_power"].scale == 0.001  # mW
    assert keba.registers["energy"].scale == 0.1  # 0.1 Wh
    assert keba.setpoint.encode(16.0) == [16000]
    assert keba.phase_switch is not None and keba.phase_switch.value(1) == 0

    compact = load_profile("mennekes-amtron-compact")
    assert (compact.protocol, compact.unit_id) == ("modbus-rtu", 50)
    assert compact.registers["energy"].scale == 1000.0  # kWh
    assert compact.startup_writes[0].address == 0x0D05
    assert compact.watchdog is not None and compact.watchdog.heartbeat is not None
    assert compact.watchdog.heartbeat.value == 0x55AA
    assert compact.setpoint.data_type is DataType.FLOAT32
    assert compact.setpoint.word_order is WordOrder.BIG

    amperfied = load_profile("amperfied-connect")
    assert amperfied.phase_switch is not None and amperfied.phase_switch.value(3) == 3
    for name in PROFILES:
        profile = load_profile(name)
        assert profile.source.title and profile.source.notes
        assert len(profile.read_plan) == TWINS[name].requests
    assert set(PROFILES) == {p.name for p in available_profiles()} - {
        "generic", "alfen-eve", "heidelberg-energy-control",
    }  # fmt: skip  # those two have their own end-to-end tests (adapter, RTU bus)


def test_charging_states_and_separate_reads_in_a_profile_file() -> None:
    data = generic_data()
    data["registers"]["charging"] = {"address": 22, "type": "uint16"}
    data["charging_states"] = {"3": "charging", "4": "error"}
    profile = parse_profile(data)
    assert profile.component_state(READY, 3) is CHARGING
    assert profile.component_state(READY, 4) is ComponentState.ERROR
    assert profile.component_state(READY, 2) is READY  # not listed: unchanged
    assert profile.component_state(ComponentState.ERROR, 3) is ComponentState.ERROR
    data["charging_states"] = {"x": "charging"}
    with pytest.raises(ProfileError, match="charging_states: each code must be an integer"):
        parse_profile(data, "<test>")
    data["charging_states"] = {"3": "flying"}
    with pytest.raises(ProfileError, match=r"charging_states\.3"):
        parse_profile(data, "<test>")
    del data["registers"]["charging"]
    data["charging_states"] = {"3": "charging"}
    with pytest.raises(ProfileError, match=r"charging_states needs a registers\.charging"):
        parse_profile(data, "<test>")
    plain = generic_data()
    plain["read"] = {"separate": True}
    assert len(parse_profile(plain).read_plan) == 10  # one request per value
    assert len(parse_profile(generic_data()).read_plan) == 1


# -- against the simulator ------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_sample_decodes_to_the_simulated_values(profile: str) -> None:
    twin = TWINS[profile]
    clock = ManualClock()
    async with running_sim(profile, clock=clock, voltages=VOLTS, energy=52_000.0) as sim:
        charger = adapter_for(sim)
        empty = await charger.read()
        assert not empty.ev_connected and empty.component_state is READY
        sim.plug(phases=3, ev_max_current=10.0)
        await charger.set_current_limit(16.0)
        before = sim.request_count
        sample = await charger.read()
        reads = [r for r in list(sim.recent_requests)[before:] if r.function_code in (3, 4)]
        assert len(reads) == twin.requests and {r.function_code for r in reads} == twin.read_fcs
        assert sample.voltage == (Phases(*VOLTS) if twin.voltages else Phases(0.0, 0.0, 0.0))
        assert _amps(sample.current) == pytest.approx((10.0, 10.0, 10.0))
        assert sample.active_power == pytest.approx(10.0 * sum(VOLTS), rel=1e-6)
        assert sample.energy == (
            pytest.approx(52_000.0, abs=twin.energy_step) if twin.energy else None
        )
        assert (sample.cable_state, sample.component_state) == twin.charging
        assert sample.usable
        clock.advance(3600.0)  # one hour at 6930 W
        assert (await charger.read()).energy == (
            pytest.approx(52_000.0 + 6930.0, abs=twin.energy_step) if twin.energy else None
        )
        await charger.set_current_limit(0.0)
        paused = await charger.read()
        assert paused.current == Phases(0.0, 0.0, 0.0) and paused.active_power == 0.0
        assert (paused.cable_state, paused.component_state) == twin.paused and paused.usable
        sim.plug(phases=1, ev_max_current=13.0)
        await charger.set_current_limit(20.0)
        assert _amps((await charger.read()).current) == pytest.approx((13.0, 0.0, 0.0))
        await charger.close()


@pytest.mark.parametrize("profile", PROFILES)
async def test_limit_lands_with_the_documented_unit_and_step(profile: str) -> None:
    twin = TWINS[profile]
    spec = load_profile(profile).setpoint
    async with running_sim(profile, voltages=VOLTS) as sim:
        charger = adapter_for(sim, max_current=twin.max_amps)
        assert await charger.set_current_limit(15.94) == twin.written
        assert sim.current_limit == twin.written
        assert sim.applied_current_limit == pytest.approx(twin.written)  # float32: 15.8999996
        write = sim.recent_requests[-1]
        assert (write.function_code, write.address) == (twin.setpoint_fc, spec.address)
        async with bare_client(sim) as client:
            raw = await client.read_holding_registers(
                spec.address, count=len(twin.setpoint_raw), device_id=sim.unit_id
            )
            assert raw.registers == twin.setpoint_raw
        assert await charger.set_current_limit(5.0) == 0.0  # below 6 A: pause, never 1-5 A
        assert await charger.set_current_limit(40.0) == twin.max_amps
        assert [amps for _, amps in sim.writes] == [twin.written, 0.0, twin.max_amps]
        await charger.close()


@pytest.mark.parametrize("profile", PROFILES)
async def test_watchdog_keeps_the_limit_and_the_charger_falls_back_without_it(
    profile: str,
) -> None:
    """The documented watchdog, on one clock for the adapter and the charger: the limit
    holds for minutes while the gateway keeps it alive, and lapses to the fail-safe
    current once the gateway is gone."""
    twin = TWINS[profile]
    base = load_profile(profile)
    clock = ManualClock()
    validity = 40.0 if twin.fail_safe else 0.0  # no documented expiry (Bender, CHARX)
    async with running_sim(
        profile, clock=clock, voltages=VOLTS, validity_time=validity, safe_current=0.0
    ) as sim:
        sim.plug(phases=3, ev_max_current=16.0)
        charger = adapter_for(sim, clock=clock)
        await charger.read()
        startup = {w.address for w in base.startup_writes}
        early = [r for r in sim.recent_requests if r.function_code in (6, 16)]
        assert [r for r in early if r.address not in startup] == []  # nothing to keep alive
        await charger.set_current_limit(12.0)
        start = clock.now
        while clock.now < start + 150.0:  # several validity times
            due = charger.next_keepalive_due()
            if due is None:
                break  # no watchdog (CHARX)
            clock.now = max(due, clock.now)
            await charger.keep_alive()
            assert _amps((await charger.read()).current) == pytest.approx((12.0,) * 3)
        watchdog = base.watchdog
        if watchdog is None:
            assert len(sim.writes) == 1  # none documented: nothing is rewritten
        elif watchdog.heartbeat is not None:
            hb = watchdog.heartbeat
            beats = [r for r in sim.recent_requests if r.address == hb.address]
            assert beats and {r.function_code for r in beats} == {hb.write_function_code}
        else:
            assert len(sim.writes) >= 4  # the limit itself is rewritten
        await charger.close()
        # the gateway is gone: the charger applies its fail-safe current (0 A here)
        clock.advance(61.0)  # beyond any validity (KEBA: the 60 s the gateway wrote)
        assert sim.applied_current_limit == (0.0 if twin.fail_safe else 12.0)


@pytest.mark.parametrize("profile", PROFILES)
async def test_an_unsupported_register_names_exception_2(profile: str) -> None:
    base = load_profile(profile)
    missing = TWINS[profile].missing
    power = dataclasses.replace(base.registers["active_power"], address=missing)
    broken = dataclasses.replace(base, registers={**base.registers, "active_power": power})
    async with running_sim(profile, voltages=VOLTS) as sim:
        charger = adapter_for(sim, broken)
        with pytest.raises(ChargerProtocolError) as caught:
            await charger.read()
        message = str(caught.value)
        span = f"{missing}" if power.count == 1 else f"{missing}-{missing + power.count - 1}"
        assert "bay-7 " in message and f"registers {span} (active_power)" in message
        assert "exception code 2 (illegal data address)" in message
        assert (await adapter_for(sim).read()).current == Phases(0.0, 0.0, 0.0)
        await charger.close()


@pytest.mark.parametrize("profile", PROFILES)
async def test_refused_writes_and_garbage_are_protocol_errors(profile: str) -> None:
    address = load_profile(profile).setpoint.address
    async with running_sim(profile, voltages=VOLTS) as sim:
        charger = adapter_for(sim)
        await charger.read()  # connected: startup writes done
        sim.refuse_writes, sim.refuse_code = True, ExcCodes.DEVICE_FAILURE
        with pytest.raises(ChargerProtocolError) as caught:
            await charger.set_current_limit(10.0)
        assert f"setpoint register {address} (10 A)" in str(caught.value)
        assert "exception code 4 (server device failure)" in str(caught.value)
        assert charger.last_limit is None and sim.current_limit is None
        sim.refuse_writes = False
        sim.garbage = True
        with pytest.raises(ChargerProtocolError, match=r"bay-7 .*(register \d+ \(|state code)"):
            await charger.read()
        sim.garbage = False
        assert (await charger.read()).cable_state is not CableState.UNSPECIFIED
        await charger.close()


@pytest.mark.parametrize("profile", ["bender-cc", "webasto-next", "amperfied-connect"])
async def test_fail_safe_current_reads_back(profile: str) -> None:
    async with running_sim(profile, voltages=VOLTS, safe_current=8.0) as sim:
        charger = adapter_for(sim)
        assert await charger.read_safe_current() == 8.0
        await charger.close()


# -- vendor particulars ---------------------------------------------------------------


async def test_keba_refuses_reads_across_values_and_input_registers() -> None:
    keba = load_profile("keba-p40")
    async with running_sim("keba-p40", voltages=VOLTS) as sim:
        merged = adapter_for(sim, dataclasses.replace(keba, read_separately=False))
        with pytest.raises(ChargerProtocolError, match=r"registers 1000-1045 .*exception code 2"):
            await merged.read()
        await merged.close()
        async with bare_client(sim) as client:
            wrong_fc = await client.read_input_registers(1020, count=2, device_id=255)
            assert wrong_fc.isError() and wrong_fc.exception_code == 1
            too_small = await client.write_register(5004, 5000, device_id=255)
            assert too_small.isError() and too_small.exception_code == 3


async def test_keba_charging_state_refines_the_cable_state() -> None:
    async with running_sim("keba-p40", voltages=VOLTS) as sim:
        charger = adapter_for(sim)
        sim.plug(phases=3, ev_max_current=16.0)
        await charger.set_current_limit(10.0)
        assert (await charger.read()).component_state is CHARGING
        async with bare_client(sim) as client:
            state = await client.read_holding_registers(1000, count=2, device_id=255)
            cable = await client.read_holding_registers(1004, count=2, device_id=255)
            assert (state.registers, cable.registers) == ([0, 3], [0, 7])
        sim.unplug()
        sim.plug(phases=3, ev_max_current=0.0)  # plugged, takes nothing: ready (2)
        assert (await charger.read()).component_state is READY
        await charger.close()


async def test_mennekes_compact_release_is_written_once_connected() -> None:
    async with running_sim("mennekes-amtron-compact", voltages=VOLTS) as sim:
        layout = sim.layout
        assert getattr(layout, "release", None) == 0
        charger = adapter_for(sim)
        await charger.read()
        assert getattr(layout, "release", None) == 1
        assert getattr(layout, "release_writes", None) == 1
        await charger.read()
        assert getattr(layout, "release_writes", None) == 1  # once per connection
        await charger.close()


async def test_webasto_watchdog_interval_follows_the_communication_timeout() -> None:
    async with running_sim("webasto-next", voltages=VOLTS, validity_time=20.0) as sim:
        charger = adapter_for(sim)
        await charger.read()
        assert charger.keepalive_interval == 5.0  # a quarter of 2002 = 20 s
        await charger.close()
