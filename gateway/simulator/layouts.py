"""Register layouts the simulator serves, written from the vendor facts with `struct`.

Deliberately independent of `gateway.adapters.modbus` (no profile files, no shared
decoding code): the simulator encodes what the vendor document says and the adapter
decodes what its profile says, so a wrong address, type or word order on either side
shows up as a failing test instead of cancelling out.

A layout turns a `ChargerView` (what the charger shows at one instant) into register
values, declares which registers exist and which are writable (anything else answers
exception 2, as a real charger does), and interprets writes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from pymodbus.constants import ExcCodes

Registers = list[int]
NAN_REGISTER = 0xFFFF
"""What Alfen answers for a reserved or unavailable register (document section 1.2)."""


def f32(value: float) -> Registers:
    """float32, high word first."""
    return list(struct.unpack(">2H", struct.pack(">f", value)))


def f64(value: float) -> Registers:
    """float64, high word first."""
    return list(struct.unpack(">4H", struct.pack(">d", value)))


def u16(value: int) -> Registers:
    """One unsigned register."""
    return [value & 0xFFFF]


def u32(value: int) -> Registers:
    """uint32, high word first."""
    return list(struct.unpack(">2H", struct.pack(">I", value)))


def ascii_text(text: str, count: int) -> Registers:
    """A NUL-terminated ASCII string in `count` registers, two characters each."""
    data = text.encode("ascii")[: 2 * count - 1].ljust(2 * count, b"\0")
    return list(struct.unpack(f">{count}H", data))


def i32(value: int) -> Registers:
    """int32, high word first."""
    return list(struct.unpack(">2H", struct.pack(">i", value)))


def i64(value: int) -> Registers:
    """int64, high word first."""
    return list(struct.unpack(">4H", struct.pack(">q", value)))


def f32_lsw(value: float) -> Registers:
    """float32, LOW word first (CDAB)."""
    return f32(value)[::-1]


def u64_lsw(value: int) -> Registers:
    """uint64, LOW word first."""
    return list(struct.unpack(">4H", struct.pack(">Q", value)))[::-1]


def read_f32(registers: Registers) -> float:
    """A float32 written high word first."""
    return float(struct.unpack(">f", struct.pack(">2H", *registers))[0])


@dataclass(frozen=True, slots=True)
class ChargerView:
    """What a simulated charger shows at one instant."""

    voltages: tuple[float, float, float]
    currents: tuple[float, float, float]
    power: float  # W
    energy: float  # Wh
    mode3: str  # IEC 61851 state: "A", "B1", "B2", "C2", ...
    applied_limit: float  # A the charger applies (setpoint, or safe current)
    setpoint: float  # A held in the setpoint register (0 before the first write)
    setpoint_valid: bool
    safe_current: float
    validity_left: int  # s until the setpoint expires
    validity_time: int  # s
    phases: int  # 1 or 3, the charger's phase setting


@dataclass(frozen=True, slots=True)
class Region:
    """Registers that exist: `count` from `address`; `writable` or read-only."""

    address: int
    count: int
    writable: bool = False


@dataclass(frozen=True, slots=True)
class Write:
    """What a write request means: one of the fields is set."""

    setpoint: float | None = None
    phases: int | None = None
    validity_time: int | None = None
    heartbeat: bool = False
    safe_current: float | None = None


GARBAGE_VOLTAGES = (math.nan, 1.0e9, -1.0e9)
GARBAGE_CURRENTS = (1.0e9, math.nan, math.inf)


class Layout:
    """A register map the simulator can serve."""

    name = ""
    unit_id = 1
    regions: tuple[Region, ...] = ()

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        """(address, registers) pairs for every register the layout models."""
        raise NotImplementedError

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        """The meaning of a write of `values` at `address`, or the exception to answer."""
        raise NotImplementedError

    def check_read(self, function_code: int, address: int, count: int) -> ExcCodes | None:
        """The exception for a read the charger refuses (by default none: holding and
        input registers are the same registers, as on most chargers)."""
        return None

    @staticmethod
    def _covers(address: int, count: int, target: int, width: int) -> bool | None:
        """True: the write covers the whole target; None: only part of it; False: none."""
        end, target_end = address + count, target + width
        if end <= target or address >= target_end:
            return False
        return True if address <= target and end >= target_end else None


def _setpoint_ok(amps: float) -> bool:
    return math.isfinite(amps) and 0.0 <= amps <= 80.0


class GenericLayout(Layout):
    """The reference map (see gateway/profiles/generic.toml for the table)."""

    name = "generic"
    unit_id = 1
    regions = (
        Region(0, 22),
        Region(100, 2, writable=True),  # setpoint, float32 A
        Region(102, 2),  # safe current
        Region(104, 2, writable=True),  # validity time s, heartbeat
    )
    STATE_CODES: ClassVar[dict[str, int]] = {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6}

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        voltages = GARBAGE_VOLTAGES if garbage else view.voltages
        currents = GARBAGE_CURRENTS if garbage else view.currents
        for i in range(3):
            yield 2 * i, f32(voltages[i])
            yield 6 + 2 * i, f32(currents[i])
        yield 12, f32(math.nan if garbage else view.power)
        yield 14, f64(-1.0 if garbage else view.energy)
        yield 18, f32(-5.0 if garbage else view.applied_limit)
        yield 20, u16(999 if garbage else self.STATE_CODES[view.mode3[0]])
        yield 21, u16(view.validity_left)
        yield 100, f32(view.setpoint)
        yield 102, f32(view.safe_current)
        yield 104, u16(view.validity_time)
        yield 105, u16(0)

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        setpoint = self._covers(address, count, 100, 2)
        if setpoint is None:
            return ExcCodes.ILLEGAL_VALUE  # half a float is not a value
        if setpoint:
            amps = read_f32(values[100 - address : 102 - address])
            if not _setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
            return Write(setpoint=amps)
        validity = values[104 - address] if address <= 104 < address + count else None
        heartbeat = address <= 105 < address + count
        return Write(validity_time=validity, heartbeat=heartbeat)


class AlfenEveLayout(Layout):
    """Alfen NG9xx socket 1 (unit 1), from "Implementation of Modbus Slave TCP/IP for
    Alfen NG9xx platform" v2.3: section 3.4 registers, 1.2 NaN for unavailable
    registers, 1.3 whole-value writes, 3.4.1 mode 3 states."""

    name = "alfen-eve"
    unit_id = 1
    regions = (
        Region(300, 126),  # socket measurement registers 300-425
        Region(1200, 10),  # availability, mode 3 state, applied max, validity left
        Region(1210, 2, writable=True),  # Modbus slave max current, float32 A
        Region(1212, 3),  # safe current, setpoint accounted for
        Region(1215, 1, writable=True),  # charge using 1 or 3 phases
    )

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        # registers not modelled below read as NaN, as on the station
        yield 300, [NAN_REGISTER] * 126
        yield 300, u16(0x03)  # meter state: initialised | updated
        yield 305, u16(0)  # meter type: RTU
        voltages = GARBAGE_VOLTAGES if garbage else view.voltages
        currents = GARBAGE_CURRENTS if garbage else view.currents
        for i in range(3):
            yield 306 + 2 * i, f32(voltages[i])
            yield 320 + 2 * i, f32(currents[i])
            yield 338 + 2 * i, f32(view.currents[i] * view.voltages[i])
            # line-to-line voltage of two phases 120 degrees apart
            a, b = view.voltages[i], view.voltages[(i + 1) % 3]
            yield 312 + 2 * i, f32(math.sqrt(a * a + b * b + a * b))
        yield 326, f32(sum(view.currents))
        yield 336, f32(50.0)
        yield 344, f32(math.nan if garbage else view.power)
        yield 374, f64(-1.0 if garbage else view.energy)
        yield 1200, u16(1)  # operative
        yield 1201, ascii_text("Z9" if garbage else view.mode3, 5)
        yield 1206, f32(-5.0 if garbage else view.applied_limit)
        yield 1208, u32(view.validity_left)
        yield 1210, f32(view.setpoint)
        yield 1212, f32(view.safe_current)
        yield 1214, u16(1 if view.setpoint_valid else 0)
        yield 1215, u16(view.phases)

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        setpoint = self._covers(address, count, 1210, 2)
        if setpoint is None:
            return ExcCodes.ILLEGAL_VALUE  # section 1.3: all registers of a value at once
        phases = values[1215 - address] if address <= 1215 < address + count else None
        if phases is not None and phases not in (1, 3):
            return ExcCodes.ILLEGAL_VALUE
        amps = None
        if setpoint:
            amps = read_f32(values[1210 - address : 1212 - address])
            if not _setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        return Write(setpoint=amps, phases=phases)


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
            if not _setpoint_ok(amps):
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
            if not _setpoint_ok(amps):
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
            if not _setpoint_ok(amps):
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
        yield 2000, u16(round(view.safe_current))
        yield 2002, u16(view.validity_time)
        yield 5004, u16(round(view.setpoint))
        yield 6000, u16(0)

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        amps = None
        if address <= 5004 < address + count:
            amps = float(values[5004 - address])
            if not _setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        safe = None
        if address <= 2000 < address + count:
            safe = float(values[2000 - address])
            if not _setpoint_ok(safe):
                return ExcCodes.ILLEGAL_VALUE
        timeout = values[2002 - address] if address <= 2002 < address + count else None
        alive = address <= 6000 < address + count and values[6000 - address] == 1
        return Write(setpoint=amps, validity_time=timeout, heartbeat=alive, safe_current=safe)


LAYOUTS: dict[str, type[Layout]] = {
    GenericLayout.name: GenericLayout,
    AlfenEveLayout.name: AlfenEveLayout,
    AbbTerraAcLayout.name: AbbTerraAcLayout,
    SchneiderEvlinkLayout.name: SchneiderEvlinkLayout,
    PhoenixCharxLayout.name: PhoenixCharxLayout,
    VestelEvc04Layout.name: VestelEvc04Layout,
}
"""Profiles the simulator can serve, by profile name."""
