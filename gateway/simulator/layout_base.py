"""Building blocks of the simulator's register layouts: encoders, views and the base.

Encoders write the vendor's types with `struct` directly, deliberately independent of
`gateway.adapters.modbus` (see `layouts`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

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


def setpoint_ok(amps: float) -> bool:
    return math.isfinite(amps) and 0.0 <= amps <= 80.0
