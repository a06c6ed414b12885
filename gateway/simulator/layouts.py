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
from collections.abc import Iterator
from typing import ClassVar

from pymodbus.constants import ExcCodes

from gateway.simulator.compact_layouts import AmperfiedConnectLayout, MennekesCompactLayout
from gateway.simulator.hems_layouts import BenderCcLayout, KebaP40Layout, WebastoNextLayout
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
    f32,
    f64,
    read_f32,
    setpoint_ok,
    u16,
    u32,
)
from gateway.simulator.vendor_layouts import (
    AbbTerraAcLayout,
    PhoenixCharxLayout,
    SchneiderEvlinkLayout,
    VestelEvc04Layout,
)


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
            if not setpoint_ok(amps):
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
            if not setpoint_ok(amps):
                return ExcCodes.ILLEGAL_VALUE
        return Write(setpoint=amps, phases=phases)


LAYOUTS: dict[str, type[Layout]] = {
    GenericLayout.name: GenericLayout,
    AlfenEveLayout.name: AlfenEveLayout,
    AbbTerraAcLayout.name: AbbTerraAcLayout,
    SchneiderEvlinkLayout.name: SchneiderEvlinkLayout,
    PhoenixCharxLayout.name: PhoenixCharxLayout,
    VestelEvc04Layout.name: VestelEvc04Layout,
    BenderCcLayout.name: BenderCcLayout,
    WebastoNextLayout.name: WebastoNextLayout,
    KebaP40Layout.name: KebaP40Layout,
    MennekesCompactLayout.name: MennekesCompactLayout,
    AmperfiedConnectLayout.name: AmperfiedConnectLayout,
}
"""Profiles the simulator can serve, by profile name."""
