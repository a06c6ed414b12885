"""Simulator layouts of the Mennekes AMTRON Compact 2.0s / Kostal ENECTOR (Modbus RTU)
and the Amperfied connect series (Heidelberg's register table on Modbus TCP).

Written from the vendor facts, independently of the profile files (see `layouts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pymodbus.constants import ExcCodes

from gateway.simulator.hems_layouts import written_at
from gateway.simulator.layout_base import (
    ChargerView,
    Layout,
    Region,
    Registers,
    Write,
    f32,
    read_f32,
    setpoint_ok,
    u16,
)
from gateway.simulator.rtu_layouts import HeidelbergEnergyControlLayout

HEARTBEAT_TOKEN = 0x55AA
"""The value the AMTRON Compact expects in its heartbeat register."""


class MennekesCompactLayout(Layout):
    """Mennekes AMTRON Compact 2.0s (= Kostal ENECTOR), unit 50: holding registers,
    float32 high word first. The heartbeat token (0x55AA to 0x0D00) keeps the EMS
    current valid; the release (0x0D05) and requested phases (0x0D04) are kept."""

    name = "mennekes-amtron-compact"
    unit_id = 50
    regions = (
        Region(0x0000, 1),  # Modbus register set version
        Region(0x0001, 8),  # firmware, ASCII
        Region(0x0013, 8),  # serial number, ASCII
        Region(0x0100, 2),  # EVSE state, authorisation status
        Region(0x0108, 1),  # CP state
        Region(0x0302, 2, writable=True),  # EMS charging current, float32 A
        Region(0x030C, 1),  # hardware phase options
        Region(0x0311, 1),  # grid phases connected
        Region(0x0500, 12),  # currents, voltages, float32
        Region(0x0512, 2),  # active power W, float32
        Region(0x0B02, 4),  # session energy, session duration
        Region(0x0D00, 1, writable=True),  # heartbeat
        Region(0x0D04, 2, writable=True),  # requested phases, charging release
        Region(0x1000, 2),  # total energy kWh, float32
    )
    EVSE: ClassVar[dict[str, int]] = {
        "A": 1, "B1": 2, "B2": 2, "C1": 2, "C2": 5, "D1": 2, "D2": 5, "E": 6, "F": 6,
    }  # fmt: skip

    def __init__(self) -> None:
        self.release = 0  # charging release from the EMS, off at power-on
        self.release_writes = 0

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        yield 0x0000, u16(0x0103)
        yield 0x0100, u16(self.EVSE[view.mode3]) + u16(1)
        yield 0x0108, u16(ord(view.mode3[0]))
        yield 0x0302, f32(view.setpoint)
        yield 0x030C, u16(2)  # 1/3-phase switchable
        yield 0x0311, u16(3)
        for i in range(3):
            yield 0x0500 + 2 * i, f32(view.currents[i])
            yield 0x0506 + 2 * i, f32(float("nan") if garbage else view.voltages[i])
        yield 0x0512, f32(view.power)
        yield 0x0D04, u16(1 if view.phases == 1 else 0) + u16(self.release)
        yield 0x1000, f32(view.energy / 1000)  # kWh

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        count = len(values)
        setpoint = self._covers(address, count, 0x0302, 2)
        if setpoint is None:
            return ExcCodes.ILLEGAL_VALUE  # half a float
        amps = None
        if setpoint:
            amps = read_f32(values[0x0302 - address : 0x0304 - address])
            if not setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        release, phases = written_at(address, values, 0x0D05), written_at(address, values, 0x0D04)
        if release not in (None, 0, 1) or phases not in (None, 0, 1):
            return ExcCodes.ILLEGAL_VALUE
        if release is not None:
            self.release = release
            self.release_writes += 1
        return Write(
            setpoint=amps,
            heartbeat=written_at(address, values, 0x0D00) == HEARTBEAT_TOKEN,
            phases=None if phases is None else (1 if phases else 3),
        )


class AmperfiedConnectLayout(HeidelbergEnergyControlLayout):
    """Amperfied connect series, unit 255 on Modbus TCP: the Energy Control table plus
    the phase switch (holding 501: 1 or 3 phases, read back as input 5001)."""

    name = "amperfied-connect"
    unit_id = 255
    # longer tuples than the base class's (mypy types those by their length)
    INPUT = (*HeidelbergEnergyControlLayout.INPUT, Region(5001, 1))  # type: ignore[assignment]
    HOLDING = (*HeidelbergEnergyControlLayout.HOLDING, Region(501, 1, writable=True))  # type: ignore[assignment]
    regions = INPUT + HOLDING  # type: ignore[assignment]

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        yield from super().render(view, garbage)
        yield 501, u16(view.phases)
        yield 5001, u16(view.phases)

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        phases = written_at(address, values, 501)
        if phases not in (None, 1, 3):
            return ExcCodes.ILLEGAL_VALUE
        write = super().parse_write(address, values)
        if isinstance(write, ExcCodes) or phases is None:
            return write
        return Write(
            setpoint=write.setpoint,
            validity_time=write.validity_time,
            phases=phases,
        )
