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


LAYOUTS: dict[str, type[Layout]] = {
    GenericLayout.name: GenericLayout,
    AlfenEveLayout.name: AlfenEveLayout,
}
"""Profiles the simulator can serve, by profile name."""
