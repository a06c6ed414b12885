"""Vendor profiles (ABB Terra AC, Schneider EVlink Pro AC, Phoenix CHARX SEC, Vestel
EVC04) against their simulator twins over real Modbus TCP, and the register bit-field
option (`shift` / `mask`) they brought."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import pytest

from gateway.adapters.base import ChargerProtocolError
from gateway.adapters.modbus.decoding import DataType, FieldCodec, WordOrder
from gateway.adapters.modbus.profile import (
    HeartbeatSpec,
    ProfileError,
    WatchdogSpec,
    load_profile,
    parse_profile,
)
from gateway.core.model import CableState, ComponentState, Phases
from tests.modbus_helpers import ManualClock, adapter_for, bare_client, running_sim
from tests.test_profiles import generic_data

VOLTS = (229.0, 231.0, 233.0)  # whole volts: Vestel reports V in a uint16
PLUGGED_CHARGING = (CableState.EV_PLUGGED, ComponentState.CHARGING)
PLUGGED_READY = (CableState.EV_PLUGGED, ComponentState.READY)


VENDORS = ("abb-terra-ac", "schneider-evlink", "phoenix-contact-charx", "vestel-evc04")


def _amps(phases: Phases) -> tuple[float, float, float]:
    return (phases.p1, phases.p2, phases.p3)


# -- shift / mask (pure) ------------------------------------------------------------


def test_field_codec_shift_and_mask_select_a_bit_field() -> None:
    block = struct.pack(">I", 0x0184_0501)  # byte 2 = 0x05 with bit 7 set elsewhere
    codec = FieldCodec("state", 0x400C, 0, DataType.UINT32, count=2, shift=8, mask=0x7F)
    assert codec.decode_code(block) == 0x05
    assert codec.decode_number(block) == 5.0
    scaled = dataclasses.replace(codec, scale=0.5, name="x")
    assert scaled.decode_number(block) == 2.5
    only_shift = FieldCodec("x", 0, 0, DataType.UINT32, count=2, shift=24)
    assert only_shift.decode_code(block) == 0x01
    swapped = FieldCodec("x", 0, 0, DataType.UINT32, WordOrder.LITTLE, count=2, mask=0xFF)
    assert swapped.decode_code(block) == 0x84  # low word first: raw 0x05010184
    with pytest.raises(ValueError, match="integer type"):
        FieldCodec("x", 0, 0, DataType.FLOAT32, count=2, mask=0xFF)


def test_shift_and_mask_in_a_profile_file() -> None:
    data = generic_data()
    data["registers"]["state"] = {"address": 20, "type": "uint16", "shift": 4, "mask": 0xF}
    state = parse_profile(data).state
    assert (state.shift, state.mask) == (4, 0xF)
    assert state.codec().decode_code(struct.pack(">H", 0x0135)) == 3
    data["registers"]["state"] = {"address": 20, "type": "float32", "mask": 1}
    with pytest.raises(ProfileError, match=r"registers.state: .*only for integer registers"):
        parse_profile(data, "<test>")
    data = generic_data()  # register_defaults make voltage_l1 a float32
    data["registers"]["voltage_l1"] = {"address": 0, "shift": 2}
    with pytest.raises(ProfileError, match=r"registers.voltage_l1: mask and shift"):
        parse_profile(data, "<test>")
    data = generic_data()
    data["safe_current"] = {"address": 102, "type": "uint16", "mask": 0xFF}
    with pytest.raises(ProfileError, match=r"safe_current: mask and shift are not supported"):
        parse_profile(data, "<test>")
    data = generic_data()
    data["registers"]["state"] = {"address": 20, "type": "uint16", "shift": 64}
    with pytest.raises(ProfileError, match=r"registers.state.shift"):
        parse_profile(data, "<test>")


# -- profile facts (pure) -----------------------------------------------------------


def test_vendor_profiles_match_their_documents() -> None:
    abb = load_profile("abb-terra-ac")
    assert abb.registers["current_l1"].address == 0x4010
    assert abb.registers["voltage_l3"].address == 0x401A
    assert (abb.state.address, abb.state.shift, abb.state.mask) == (0x400C, 8, 0x7F)
    assert abb.setpoint.encode(16.0) == [0, 16000] and abb.keepalive_interval == 30.0
    assert "energy" not in abb.registers  # 401EH is per session, not a meter total

    schneider = load_profile("schneider-evlink")
    assert schneider.unit_id == 255
    assert schneider.registers["current_l1"].word_order is WordOrder.LITTLE
    energy = schneider.registers["energy"]
    assert (energy.address, energy.data_type, energy.word_order) == (
        3203, DataType.UINT64, WordOrder.LITTLE,
    )  # fmt: skip
    assert schneider.registers["active_power"].scale == 1000.0
    assert schneider.watchdog == WatchdogSpec(heartbeat=HeartbeatSpec(4000, 1, 2.0, 6))

    charx = load_profile("phoenix-contact-charx")
    assert charx.registers["voltage_l1"].data_type is DataType.INT32
    assert (charx.state.address, charx.state.data_type) == (1299, DataType.ASCII)
    assert charx.state_codes["C2"] == PLUGGED_CHARGING and charx.watchdog is None

    vestel = load_profile("vestel-evc04")
    assert {s.function_code for s in vestel.registers.values()} == {4}
    assert vestel.registers["energy"].scale == 100.0 and vestel.read_max_gap == 0
    assert vestel.watchdog == WatchdogSpec(heartbeat=HeartbeatSpec(6000, 1, 5.0, 6))
    for name in VENDORS:
        profile = load_profile(name)
        assert profile.source.title and profile.source.version


# -- against the simulator ----------------------------------------------------------


async def test_vestel_reads_input_registers_one_by_one() -> None:
    """The documented gaps (1009, 1011, ...) and FC3 on input registers are refused, so
    a profile that bridged them or used the wrong function code would fail."""
    vestel = load_profile("vestel-evc04")
    async with running_sim("vestel-evc04", voltages=VOLTS) as sim:
        bridged = adapter_for(sim, dataclasses.replace(vestel, read_max_gap=8))
        with pytest.raises(ChargerProtocolError, match=r"input registers 1001-.*exception code 2"):
            await bridged.read()
        await bridged.close()
        holding = {n: dataclasses.replace(s, function_code=3) for n, s in vestel.registers.items()}
        wrong_fc = adapter_for(sim, dataclasses.replace(vestel, registers=holding))
        with pytest.raises(
            ChargerProtocolError, match=r"holding registers 1001 .*exception code 2"
        ):
            await wrong_fc.read()
        await wrong_fc.close()


async def test_simulators_serve_the_documented_encodings() -> None:
    """Raw registers with a bare client: the word order and units each document gives."""
    clock = ManualClock()
    kwargs: dict[str, Any] = {"clock": clock, "voltages": VOLTS, "energy": 70_000.0}
    async with running_sim("schneider-evlink", **kwargs) as sim, bare_client(sim) as client:
        sim.plug(phases=3, ev_max_current=16.0)
        await client.write_register(4004, 10, device_id=255)
        currents = (await client.read_holding_registers(2999, count=2, device_id=255)).registers
        assert struct.unpack(">f", struct.pack(">2H", currents[1], currents[0]))[0] == 10.0
        energy = (await client.read_holding_registers(3203, count=4, device_id=255)).registers
        assert energy == [70_000 & 0xFFFF, 70_000 >> 16, 0, 0]  # low word first
        assert (await client.read_holding_registers(1, count=1, device_id=255)).registers == [8]
    async with running_sim("abb-terra-ac", **kwargs) as sim, bare_client(sim) as client:
        sim.plug(phases=3, ev_max_current=16.0)
        await client.write_registers(0x4100, [0, 10_000], device_id=1)
        status = (await client.read_holding_registers(0x400C, count=2, device_id=1)).registers
        assert status == [0, 0x8400]  # C2, charging at the rated current, available
        volts = (await client.read_holding_registers(0x4016, count=2, device_id=1)).registers
        assert volts == [0, 2290]  # 0.1 V
    async with running_sim("phoenix-contact-charx", **kwargs) as sim, bare_client(sim) as client:
        state = (await client.read_holding_registers(1299, count=1, device_id=1)).registers
        assert state == [ord("A") << 8]
        volts = (await client.read_holding_registers(1232, count=2, device_id=1)).registers
        assert volts == [229_000 >> 16, 229_000 & 0xFFFF]  # mV, high word first


def test_a_writable_safe_current_register() -> None:
    data = generic_data()
    data["safe_current"] = {"address": 102, "writable": True}
    write = parse_profile(data).safe_current_write
    assert write is not None and (write.address, write.write_function_code) == (102, 16)
    assert write.encode(10.0) == [0x4120, 0]
    assert parse_profile(generic_data()).safe_current_write is None  # read-only by default
    data["safe_current"] = {"address": 102, "writable": True, "write_function_code": 6}
    with pytest.raises(ProfileError, match=r"safe_current: function code 6 writes one register"):
        parse_profile(data, "<test>")
    data["safe_current"] = {"address": 102, "function_code": 4, "writable": True}
    with pytest.raises(ProfileError, match=r"safe_current: .*input register"):
        parse_profile(data, "<test>")
    data["safe_current"] = {"address": 102, "write_function_code": 16}
    with pytest.raises(ProfileError, match=r"safe_current: .*needs writable = true"):
        parse_profile(data, "<test>")
    for name in ("alfen-eve", "vestel-evc04", "heidelberg-energy-control"):
        # not confirmed R/W in the vendor documents: never written
        assert load_profile(name).safe_current_write is None


def test_phase_switch_registers_are_declared_where_the_charger_has_one() -> None:
    alfen = load_profile("alfen-eve").phase_switch
    assert alfen is not None
    assert (alfen.address, alfen.data_type, alfen.write_function_code) == (
        1215,
        DataType.UINT16,
        16,
    )
    assert (alfen.value(1), alfen.value(3)) == (1, 3)
    vestel = load_profile("vestel-evc04").phase_switch
    assert vestel is not None
    assert (vestel.address, vestel.write_function_code, vestel.value(1), vestel.value(3)) == (
        405,
        6,
        0,
        1,
    )
    with pytest.raises(ValueError, match="1 or 3"):
        vestel.value(2)
    for name in ("abb-terra-ac", "generic", "heidelberg-energy-control"):
        assert load_profile(name).phase_switch is None  # ABB: 4102H "not supported"
    data = generic_data()
    data["phase_switch"] = {"address": 110, "one_phase": 1, "three_phase": 1}
    with pytest.raises(ProfileError, match=r"phase_switch: .*must be different"):
        parse_profile(data, "<test>")
    data["phase_switch"] = {"address": 110, "type": "float32", "one_phase": 1, "three_phase": 3}
    with pytest.raises(ProfileError, match=r"phase_switch.type"):
        parse_profile(data, "<test>")
    data["phase_switch"] = {"address": 110, "one_phase": 1, "three_phase": 3, "phases": 2}
    with pytest.raises(ProfileError, match=r"phase_switch.phases"):
        parse_profile(data, "<test>")


def test_a_charging_register_turns_ready_into_charging_only() -> None:
    data = generic_data()
    data["registers"]["charging"] = {"address": 22, "type": "uint16"}
    profile = parse_profile(data)
    assert profile.registers["charging"].address == 22
    assert any("charging" in planned.block.names for planned in profile.read_plan)
    data["registers"]["charging"] = {"address": 22, "type": "float32"}
    with pytest.raises(ProfileError, match=r"registers.charging: must be an integer register"):
        parse_profile(data, "<test>")


async def test_vestel_charging_state_follows_register_1001() -> None:
    async with running_sim("vestel-evc04", voltages=VOLTS) as sim:
        charger = adapter_for(sim)
        unplugged = await charger.read()
        assert (unplugged.cable_state, unplugged.component_state) == (
            CableState.UNPLUGGED,
            ComponentState.READY,
        )
        sim.plug(phases=3, ev_max_current=10.0)
        await charger.set_current_limit(16.0)
        assert (await charger.read()).component_state is ComponentState.CHARGING
        async with bare_client(sim) as client:
            raw = await client.read_input_registers(1001, count=1, device_id=255)
            assert raw.registers == [1]
        await charger.set_current_limit(0.0)  # paused: plugged, not charging
        assert (await charger.read()).component_state is ComponentState.READY
        await charger.close()


async def test_vestel_phase_switch_register_405_against_its_twin() -> None:
    """The profile's [phase_switch] (holding 405, 0 = one phase, 1 = three) written by
    the adapter; the twin's EV follows the setting, and a value other than 0/1 is
    refused as the register map says."""
    async with running_sim("vestel-evc04") as sim:
        sim.plug(phases=3, ev_max_current=16.0)
        adapter = adapter_for(sim)
        try:
            await adapter.switch_phases(1)
            assert sim.charger_phases == 1
            assert [entry[1:] for entry in sim.write_log] == [("phases", 1.0)]
            await adapter.set_current_limit(10.0)
            assert sim.view().currents == (10.0, 0.0, 0.0)  # on L1 only
            await adapter.switch_phases(3)
            assert sim.charger_phases == 3
            async with bare_client(sim) as client:
                refused = await client.write_register(405, 2, device_id=255)
                assert refused.isError() and sim.charger_phases == 3
        finally:
            await adapter.close()
