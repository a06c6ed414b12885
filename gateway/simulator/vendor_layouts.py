"""Simulator layouts of vendor wallboxes (ABB, Schneider, Phoenix Contact, Vestel).

Each is written from the vendor's Modbus document, independently of the profile file
(see `layouts` for why).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import ClassVar

from pymodbus.constants import ExcCodes

from gateway.simulator.layout_base import (
    GARBAGE_CURRENTS,
    GARBAGE_VOLTAGES,
    NAN_REGISTER,
    ChargerView,
    Layout,
    Region,
    Registers,
    Write,
    ascii_text,
    f32_lsw,
    i32,
    i64,
    setpoint_ok,
    u16,
    u32,
    u64_lsw,
)


class AbbTerraAcLayout(Layout):
    """ABB Terra AC (firmware >= 1.6.5), unit 1, from "TACWB Modbus Communication"
    10M1003 rev. A-01, section 4: holding registers 4000H-4020H (32-bit values high word
    first), writes at 4100H-4106H."""

    name = "abb-terra-ac"
    unit_id = 1
    regions = (
        Region(0x4000, 0x21),  # serial number ... communication timeout (read)
        Region(0x4100, 2, writable=True),  # set charging current limit, uint32 mA
        Region(0x4103, 1, writable=True),  # lock / unlock socket cable
        Region(0x4105, 2, writable=True),  # start / stop session, communication timeout
    )
    STATE_CODES: ClassVar[dict[str, int]] = {
        "A": 0, "B1": 1, "B2": 2, "C1": 3, "C2": 4, "D1": 3, "D2": 4, "E": 5, "F": 5,
    }  # fmt: skip

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        plugged = view.mode3 != "A"
        yield 0x4000, ascii_text("TACW2240123", 4)
        yield 0x4004, u32(0x01060500)  # firmware 1.6.5
        yield 0x4006, u32(32000)  # max rated current, mA
        yield 0x4008, u32(0)  # error code
        yield 0x400A, u32(0x0101 if plugged else 0)  # socket lock state
        code = 0x7F if garbage else self.STATE_CODES[view.mode3]
        # bytes on the wire: two reserved, charging state (bits 0-6; bit 7 "charging at
        # the rated current", set here while charging, so an unmasked read fails), and
        # availability (0 available)
        rated = 0x80 if view.mode3 == "C2" else 0
        yield 0x400C, u32((rated | code) << 8)
        yield 0x400E, u32(round(view.applied_limit * 1000))
        for i in range(3):
            amps = 4.0e6 if garbage else view.currents[i]
            yield 0x4010 + 2 * i, u32(round(amps * 1000))
            yield 0x4016 + 2 * i, u32(round(view.voltages[i] * 10))
        yield 0x401C, u32(round(view.power))
        yield 0x401E, u32(round(view.energy))  # session energy (Wh); here since start
        yield 0x4020, u16(view.validity_time)
        yield 0x4100, u32(round(view.setpoint * 1000))

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        setpoint = self._covers(address, count, 0x4100, 2)
        if setpoint is None:
            return ExcCodes.ILLEGAL_VALUE
        amps = None
        if setpoint:
            high, low = values[0x4100 - address], values[0x4101 - address]
            amps = ((high << 16) | low) / 1000.0
            if not setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        timeout = values[0x4106 - address] if address <= 0x4106 < address + count else None
        return Write(setpoint=amps, validity_time=timeout)


class SchneiderEvlinkLayout(Layout):
    """Schneider EVlink Pro AC, unit 255, from "EVlink Pro AC - Modbus Connectivity
    Guide" GEX1969300-04: EV state 1, meter block 2999-3222 (float32 / uint64 LOW word
    first; unmapped registers inside read 0xFFFF), control block 4000-4079."""

    name = "schneider-evlink"
    unit_id = 255
    regions = (
        Region(1, 1),  # EV state
        Region(150, 1),  # OCPP status
        Region(1150, 1),  # EV presence
        Region(2999, 224),  # meter registers 2999-3222
        Region(4000, 2, writable=True),  # life bit, command
        Region(4002, 2),  # command status
        Region(4004, 1, writable=True),  # set point, A
        Region(4005, 75),  # degraded set points, times, stop cause, errors
    )
    STATE_CODES: ClassVar[dict[str, int]] = {
        "A": 6, "B1": 3, "B2": 7, "C1": 4, "C2": 8, "D1": 5, "D2": 9, "E": 10, "F": 11,
    }  # fmt: skip

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        yield 2999, [NAN_REGISTER] * 224
        yield 4005, [NAN_REGISTER] * 75
        yield 1, u16(self.STATE_CODES[view.mode3])
        yield 150, u16(3 if view.mode3.startswith("C") else 1)
        yield 1150, u16(0 if view.mode3 == "A" else 1)
        voltages = GARBAGE_VOLTAGES if garbage else view.voltages
        currents = GARBAGE_CURRENTS if garbage else view.currents
        for i in range(3):
            yield 2999 + 2 * i, f32_lsw(currents[i])
            yield 3027 + 2 * i, f32_lsw(voltages[i])
            yield 3053 + 2 * i, f32_lsw(view.currents[i] * view.voltages[i] / 1000.0)
        yield 3059, f32_lsw(view.power / 1000.0)  # kW
        yield 3203, u64_lsw(round(view.energy))
        yield 4000, u16(0)  # the station resets the life bit once it has seen it
        yield 4002, u32(0)
        yield 4004, u16(round(view.setpoint))

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        heartbeat = False
        if address <= 4000 < address + count:
            life = values[4000 - address]
            if life not in (0, 1, 2):
                return ExcCodes.ILLEGAL_VALUE
            heartbeat = life == 1
        amps = None
        if address <= 4004 < address + count:
            amps = float(values[4004 - address])
            if not setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        return Write(setpoint=amps, heartbeat=heartbeat)


class PhoenixCharxLayout(Layout):
    """Phoenix Contact CHARX SEC charging point 1 (unit 1), from "UM EN CHARX SEC"
    109999_en_04, Modbus/TCP server: point n at n x 1000 + offset, 32/64-bit signed
    values high word first."""

    name = "phoenix-contact-charx"
    unit_id = 1
    regions = (
        Region(1232, 14),  # voltages mV, currents mA, power mW (int32)
        Region(1250, 4),  # energy Wh (int64)
        Region(1264, 36),  # SoC, EVID, RFID, times, charged energy, IEC 61851 state
        Region(1300, 2, writable=True),  # charging release, maximum current A
    )

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        for i in range(3):
            volts = -230.0 if garbage else view.voltages[i]
            yield 1232 + 2 * i, i32(round(volts * 1000))
            yield 1238 + 2 * i, i32(round(view.currents[i] * 1000))
        yield 1244, i32(round(view.power * 1000))
        yield 1250, i64(round(view.energy))
        # letter in the high byte, PWM digit (if any) in the low byte
        state = "Z9" if garbage else view.mode3
        yield 1299, list(struct.unpack(">H", state.encode("ascii")[:2].ljust(2, b"\0")))
        yield 1300, u16(1)
        yield 1301, u16(round(view.setpoint))

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        if address <= 1300 < address + count and values[1300 - address] not in (0, 1):
            return ExcCodes.ILLEGAL_VALUE
        amps = None
        if address <= 1301 < address + count:
            amps = float(values[1301 - address])
            if not setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        return Write(setpoint=amps)


class VestelEvc04Layout(Layout):
    """Vestel EVC04 (Webasto / Ampure Unite), unit 255, from the "EVC04 Modbus TCP
    Register Map" V1.8: measurements and states are INPUT registers (FC4 only), each
    uint16 register documented on its own (the registers between are not defined);
    settings and control are holding registers."""

    name = "vestel-evc04"
    unit_id = 255
    INPUT = (
        Region(1000, 3),  # charge point state, charging state, equipment state
        Region(1004, 1),  # cable state
        Region(1006, 2),  # EVSE fault code
        *(Region(address, 1) for address in (1008, 1010, 1012, 1014, 1016, 1018)),
        Region(1020, 2),  # total active power W
        Region(1024, 2), Region(1028, 2), Region(1032, 2),  # power per phase W
        Region(1036, 2),  # meter reading 0.1 kWh
        Region(1502, 2),  # session energy Wh
    )  # fmt: skip
    HOLDING = (
        Region(405, 1, writable=True),  # phases: 0 = one, 1 = three (firmware >= 3.187)
        Region(2000, 1, writable=True),  # fail-safe current A
        Region(2002, 1, writable=True),  # fail-safe timeout s
        Region(5004, 1, writable=True),  # charging current A
        Region(6000, 1, writable=True),  # alive register
    )
    regions = INPUT + HOLDING
    CABLE: ClassVar[dict[str, int]] = {"A": 0}  # any other state: at the vehicle, locked

    def check_read(self, function_code: int, address: int, count: int) -> ExcCodes | None:
        table = self.INPUT if function_code == 4 else self.HOLDING
        if any(r.address <= address and address + count <= r.address + r.count for r in table):
            return None
        return ExcCodes.ILLEGAL_ADDRESS

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        charging = view.mode3.startswith("C")
        yield 1000, u16(3 if charging else 0) + u16(1 if charging else 0) + u16(0)
        yield 1004, u16(self.CABLE.get(view.mode3, 3))
        yield 1006, u32(0)
        for i in range(3):
            volts = 65535.0 if garbage else view.voltages[i]
            yield 1008 + 2 * i, u16(round(view.currents[i] * 1000))
            yield 1014 + 2 * i, u16(round(volts))
            yield 1024 + 4 * i, u32(round(view.currents[i] * view.voltages[i]))
        yield 1020, u32(round(view.power))
        yield 1036, u32(int(view.energy // 100))  # 0.1 kWh
        yield 1502, u32(round(view.energy))
        yield 405, u16(0 if view.phases == 1 else 1)
        yield 2000, u16(round(view.safe_current))
        yield 2002, u16(view.validity_time)
        yield 5004, u16(round(view.setpoint))
        yield 6000, u16(0)

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        amps = None
        if address <= 5004 < address + count:
            amps = float(values[5004 - address])
            if not setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        safe = None
        if address <= 2000 < address + count:
            safe = float(values[2000 - address])
            if not setpoint_ok(safe):
                return ExcCodes.ILLEGAL_VALUE
        phases = None
        if address <= 405 < address + count:
            setting = values[405 - address]
            if setting not in (0, 1):
                return ExcCodes.ILLEGAL_VALUE
            phases = 1 if setting == 0 else 3
        timeout = values[2002 - address] if address <= 2002 < address + count else None
        alive = address <= 6000 < address + count and values[6000 - address] == 1
        return Write(
            setpoint=amps, validity_time=timeout, heartbeat=alive, safe_current=safe, phases=phases
        )
