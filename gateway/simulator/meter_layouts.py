"""Register layouts of simulated grid meters, written from the vendors' documents.

Like the charger layouts, deliberately independent of `gateway.meters` and
`gateway.adapters.modbus` (no profile files, no shared decoding): the simulator encodes
what the vendor document says with `struct`, the adapter decodes what its profile says,
so a wrong address, type, scale or word order on either side fails a test.

A layout turns a `MeterView` (what the meter measures at one instant) into register
values, says which reads the meter refuses (unknown registers, the wrong function code,
too many registers at once) and has no writable registers: a meter is only read.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pymodbus.constants import ExcCodes

from gateway.simulator.layout_base import Region, Registers, f32, i32, u32


@dataclass(frozen=True, slots=True)
class MeterView:
    """What a meter measures per phase (its own terminals L1..L3), import positive."""

    voltages: tuple[float, float, float]
    currents: tuple[float, float, float]  # signed: negative while exporting

    @property
    def powers(self) -> tuple[float, float, float]:
        """Active power per phase (W) at power factor 1, with the current's sign."""
        v, i = self.voltages, self.currents
        return (v[0] * i[0], v[1] * i[1], v[2] * i[2])


class MeterLayout:
    """A meter register map the simulator can serve."""

    name = ""
    unit_id = 1
    function_codes: tuple[int, ...] = (3, 4)  # read functions the meter answers
    regions: tuple[Region, ...] = ()
    max_read = 125  # registers per request

    def render(self, view: MeterView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        """(address, registers) pairs for every register the layout models."""
        raise NotImplementedError

    def check_read(self, function_code: int, address: int, count: int) -> ExcCodes | None:
        """The exception the meter answers to a read, or None to serve it."""
        if function_code not in self.function_codes:
            return ExcCodes.ILLEGAL_FUNCTION
        if count > self.max_read:
            return ExcCodes.ILLEGAL_VALUE
        end = address + count
        if any(r.address <= address and end <= r.address + r.count for r in self.regions):
            return None
        return ExcCodes.ILLEGAL_ADDRESS


def f32_garbage(index: int) -> float:
    """NaN, +inf, an absurd number: what a broken float meter sends, per phase."""
    return (math.nan, math.inf, 3.0e9)[index]


class EastronSdm630Layout(MeterLayout):
    """Eastron SDM630-Modbus v2, from its user manual's "Modbus Protocol" part: input
    registers (function code 04) of float32 values, high word first, in V / A / W; 30
    parameters per request at most; holding registers carry settings only."""

    name = "eastron-sdm630"
    function_codes = (4,)
    regions = (Region(0x00, 0x4C),)  # phase values ... import/export kWh (0x48, 0x4A)
    max_read = 80  # 40 parameters

    def render(self, view: MeterView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        powers = view.powers
        for i in range(3):
            yield 0x00 + 2 * i, f32(view.voltages[i])
            amps = f32_garbage(i) if garbage else abs(view.currents[i])  # a magnitude
            yield 0x06 + 2 * i, f32(amps)
            yield 0x0C + 2 * i, f32(powers[i])
        yield 0x34, f32(sum(powers))
        yield 0x46, f32(50.0)  # frequency


def i32_lsw(value: int) -> Registers:
    """INT32, least significant word first (Carlo Gavazzi)."""
    return list(struct.unpack(">2H", struct.pack(">i", value)))[::-1]


class CarloGavazziEm24Layout(MeterLayout):
    """Carlo Gavazzi EM24-DIN, from "EM24-DIN Communication Protocol" V4 R0: INT32
    values, least significant word first; V x10, A x1000, W x10; function codes 03 and
    04 read the same registers; at most 11 registers per request; an overflowing value
    reads 0x7FFF in its most significant word."""

    name = "carlo-gavazzi-em24"
    regions = (Region(0x00, 0x30),)  # instantaneous variables 0x00-0x2F
    max_read = 11
    OVERFLOW = (0xFFFF, 0x7FFF)  # LSW first: the high word (second register) is 0x7FFF

    def render(self, view: MeterView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        powers = view.powers
        for i in range(3):
            yield 0x00 + 2 * i, i32_lsw(round(view.voltages[i] * 10))
            amps = list(self.OVERFLOW) if garbage else i32_lsw(round(abs(view.currents[i]) * 1000))
            yield 0x0C + 2 * i, amps
            yield 0x12 + 2 * i, i32_lsw(round(powers[i] * 10))
        yield 0x28, i32_lsw(round(sum(powers) * 10))


class AbbB23Layout(MeterLayout):
    """ABB B23/B24, from the "B23/B24 User Manual" 2CMC485003M0201 Rev. A: holding
    registers only (function code 03), big-endian; voltage uint32 0.1 V, current uint32
    0.01 A, active power int32 0.01 W; a value the meter does not have reads all ones
    (0xFFFFFFFF unsigned, 0x7FFFFFFF signed)."""

    name = "abb-b23"
    function_codes = (3,)
    regions = (Region(0x5000, 0x10), Region(0x5B00, 0x30))  # energy; instantaneous values
    NOT_AVAILABLE = 0xFFFFFFFF

    def render(self, view: MeterView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        powers = view.powers
        for i in range(3):
            yield 0x5B00 + 2 * i, u32(round(view.voltages[i] * 10))
            centiamps = self.NOT_AVAILABLE if garbage else round(abs(view.currents[i]) * 100)
            yield 0x5B0C + 2 * i, u32(centiamps)
            yield 0x5B16 + 2 * i, i32(round(powers[i] * 100))
        yield 0x5B14, i32(round(sum(powers) * 100))


METER_LAYOUTS: dict[str, type[MeterLayout]] = {
    layout.name: layout for layout in (EastronSdm630Layout, CarloGavazziEm24Layout, AbbB23Layout)
}
"""Simulated meters by profile name."""
