"""Simulator layouts of chargers with an energy-manager (HEMS) Modbus TCP interface:
the Bender CC612/CC613 controller, the Webasto NEXT and the KEBA KeContact P40.

Each is written from the vendor facts (register, type, unit), independently of the
profile files (see `layouts` for why).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pymodbus.constants import ExcCodes

from gateway.simulator.layout_base import (
    ChargerView,
    Layout,
    Region,
    Registers,
    Write,
    ascii_text,
    setpoint_ok,
    u16,
    u32,
)

NOT_AVAILABLE_32 = 0xFFFFFFFF
"""What a Bender controller answers for a 32-bit meter value it does not have."""


def written_at(address: int, values: Registers, target: int) -> int | None:
    """The value a write puts at `target`, or None when the write does not cover it."""
    return values[target - address] if address <= target < address + len(values) else None


class BenderCcLayout(Layout):
    """Bender CC612 / CC613 ("ebee" HEMS register set), unit 255: all holding
    registers; 32-bit meter values high word first; 1000 the HEMS current limit (A).

    This twin is a controller without the optional 0.1 A (1001) and power (1002) limit
    registers: reading or writing them answers exception 2.
    """

    name = "bender-cc"
    unit_id = 255
    regions = (
        Region(100, 2),  # firmware
        Region(104, 1),  # OCPP charge point status
        Region(111, 2),  # error flags
        Region(120, 1),  # Modbus server protocol version
        Region(122, 1),  # IEC 61851 vehicle state
        Region(131, 1),  # fail-safe current, A
        Region(140, 1),  # relay state
        Region(142, 10),  # model name, ASCII
        Region(200, 28),  # energy per phase, power per phase, currents, total, power, voltages
        Region(1000, 1, writable=True),  # HEMS current limit, A
    )
    VEHICLE: ClassVar[dict[str, int]] = {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 5}
    OCPP: ClassVar[dict[str, int]] = {"A": 0, "B": 7, "C": 6, "D": 6, "E": 4, "F": 4}

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        letter = view.mode3[0]
        yield 100, u32(0x050C0000)  # 5.12
        yield 104, u16(self.OCPP[letter])
        yield 111, [0, 0]
        yield 120, u16(0x0100)
        yield 122, u16(self.VEHICLE[letter])
        yield 131, u16(round(view.safe_current))
        charging = any(view.currents)
        yield 140, u16((1 if view.phases == 3 else 5) if charging else 0)
        yield 142, ascii_text("CC612_2S0R_CC", 10)
        third = round(view.energy / 3)
        for i in range(3):
            yield 200 + 2 * i, u32(third)
            yield 206 + 2 * i, u32(round(view.currents[i] * view.voltages[i]))
            yield 212 + 2 * i, u32(round(view.currents[i] * 1000))
            yield 222 + 2 * i, u32(round(view.voltages[i]))
        yield 218, u32(round(view.energy))
        yield 220, u32(NOT_AVAILABLE_32 if garbage else round(view.power))
        yield 1000, u16(round(view.setpoint))

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        raw = written_at(address, values, 1000)
        if raw is None:
            return Write()
        if not setpoint_ok(float(raw)):
            return ExcCodes.ILLEGAL_VALUE
        return Write(setpoint=float(raw))


class WebastoNextLayout(Layout):
    """Webasto NEXT in HEMS mode, unit 255: state, meter and settings as holding
    registers (uint16, 32-bit values high word first); the currents also as input
    registers. The life bit (6000) keeps the setpoint valid within the communication
    timeout (2002, s; the simulator's validity time)."""

    name = "webasto-next"
    unit_id = 255
    regions = (
        Region(1000, 3),  # charge point state, charging state, EVSE state
        Region(1004, 1),  # cable state
        Region(1006, 1),  # error code
        Region(1008, 1), Region(1010, 1), Region(1012, 1),  # currents, mA
        Region(1020, 2),  # total active power, W
        Region(1024, 2), Region(1028, 2), Region(1032, 2),  # power per phase, W
        Region(1036, 2),  # meter reading, Wh
        Region(1100, 1), Region(1102, 1), Region(1104, 1), Region(1106, 1), Region(1108, 1),
        Region(2000, 1, writable=True),  # fail-safe current, A
        Region(2002, 1, writable=True),  # communication timeout, s
        Region(5004, 1, writable=True),  # charging current, A
        Region(6000, 1, writable=True),  # life bit
    )  # fmt: skip
    STATE: ClassVar[dict[str, int]] = {
        "A": 0, "B1": 4, "B2": 1, "C1": 4, "C2": 3, "D1": 4, "D2": 3, "E": 7, "F": 7,
    }  # fmt: skip

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        state = 5 if garbage else self.STATE[view.mode3]  # 5 is not a documented state
        charging = view.mode3[0] in "CD"
        yield 1000, u16(state) + u16(1 if charging else 0) + u16(0)
        yield 1004, u16(0 if view.mode3 == "A" else 3)
        yield 1006, u16(0)
        for i in range(3):
            yield 1008 + 2 * i, u16(round(view.currents[i] * 1000))
            yield 1024 + 4 * i, u32(round(view.currents[i] * view.voltages[i]))
        yield 1020, u32(round(view.power))
        yield 1036, u32(round(view.energy))
        yield 1100, u16(32)
        yield 1102, u16(6)
        yield 1104, u16(32)
        yield 1106, u16(0 if view.mode3 == "A" else 32)
        yield 1108, u16(0)
        yield 2000, u16(round(view.safe_current))
        yield 2002, u16(view.validity_time)
        yield 5004, u16(round(view.setpoint))
        yield 6000, u16(0)  # the box resets the life bit

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        amps, safe = written_at(address, values, 5004), written_at(address, values, 2000)
        for raw in (amps, safe):
            if raw is not None and not setpoint_ok(float(raw)):
                return ExcCodes.ILLEGAL_VALUE
        life = written_at(address, values, 6000)
        if life is not None and life not in (0, 1):
            return ExcCodes.ILLEGAL_VALUE
        return Write(
            setpoint=None if amps is None else float(amps),
            safe_current=None if safe is None else float(safe),
            validity_time=written_at(address, values, 2002),
            heartbeat=life == 1,
        )


class KebaP40Layout(Layout):
    """KEBA KeContact P40, unit 255: every value a uint32 holding register (high word
    first) that must be read on its own, exactly its two registers (a wider or
    misaligned read, or FC4, is refused); writes are single uint16 registers (FC6).

    The fail-safe timeout written to 5018 is the simulator's validity time, and each
    write of it restarts that time (the keep-alive).
    """

    name = "keba-p40"
    unit_id = 255
    VALUES = (
        1000, 1004, 1008, 1010, 1012, 1014, 1016, 1018, 1020, 1036, 1040, 1042, 1044,
        1100, 1500, 1502, 1550, 1552, 1600, 1602,
    )  # fmt: skip
    WRITES = (5004, 5014, 5018, 5050, 5052)
    regions = (
        *(Region(address, 2) for address in VALUES),
        *(Region(address, 1, writable=True) for address in WRITES),
    )
    CHARGING: ClassVar[dict[str, int]] = {
        "A": 1, "B1": 5, "B2": 2, "C1": 5, "C2": 3, "D1": 5, "D2": 3, "E": 4, "F": 4,
    }  # fmt: skip

    def check_read(self, function_code: int, address: int, count: int) -> ExcCodes | None:
        if function_code == 4:
            return ExcCodes.ILLEGAL_FUNCTION
        if function_code != 3:  # pymodbus asks before a write too
            return None
        if (address in self.VALUES and count == 2) or (address in self.WRITES and count == 1):
            return None
        return ExcCodes.ILLEGAL_ADDRESS

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        yield 1000, u32(self.CHARGING[view.mode3])
        yield 1004, u32(1 if view.mode3 == "A" else 7)  # fixed cable; plugged and locked
        yield 1014, u32(22_123_456)  # serial number
        yield 1016, u32(4_122_111)  # product code: 7 digits, a P40 with meter and RFID
        yield 1018, u32(0x01030000)  # firmware 1.3.0
        for i in range(3):
            yield 1008 + 2 * i, u32(round(view.currents[i] * 1000))
            volts = NOT_AVAILABLE_32 if garbage else round(view.voltages[i])
            yield 1040 + 2 * i, u32(volts)
        yield 1020, u32(round(view.power * 1000))  # mW
        yield 1036, u32(round(view.energy * 10))  # 0.1 Wh
        yield 1100, u32(round(view.applied_limit * 1000))
        yield 1502, u32(round(view.energy * 10))
        yield 1550, u32(3)  # phase switch source: Modbus
        yield 1552, u32(1 if view.phases == 3 else 0)
        yield 1600, u32(round(view.safe_current * 1000))
        yield 1602, u32(view.validity_time)
        yield 5004, u16(round(view.setpoint * 1000))
        yield 5018, u16(view.validity_time)

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        milliamps, timeout = written_at(address, values, 5004), written_at(address, values, 5018)
        phases = written_at(address, values, 5052)
        if milliamps is not None and milliamps != 0 and not 6000 <= milliamps <= 63000:
            return ExcCodes.ILLEGAL_VALUE
        if timeout is not None and timeout != 0 and not 10 <= timeout <= 600:
            return ExcCodes.ILLEGAL_VALUE
        if phases is not None and phases not in (0, 1):
            return ExcCodes.ILLEGAL_VALUE
        return Write(
            setpoint=None if milliamps is None else milliamps / 1000,
            validity_time=timeout,
            heartbeat=timeout is not None,
            phases=None if phases is None else (3 if phases else 1),
        )
