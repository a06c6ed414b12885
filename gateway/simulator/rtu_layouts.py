"""Register layouts of Modbus RTU chargers, written from the vendor facts (see layouts.py:
deliberately independent of the adapter's profiles and decoding code).

Served by `SimulatedCharger` like any layout (over TCP), and over a serial line by
`gateway.simulator.rtu_server.SimulatedRtuBus`, several units on one bus.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pymodbus.constants import ExcCodes

from gateway.simulator.layout_base import ChargerView, Layout, Region, Registers, Write, u16, u32

STANDBY_ENABLED = 0
STANDBY_DISABLED = 4


class HeidelbergEnergyControlLayout(Layout):
    """Heidelberg Wallbox Energy Control, unit 1, from the "ModBus register table"
    (2021-02-22): input registers 4-18 and 100-101 (FC4 only), holding registers
    257-262 (FC3 to read, FC6/FC16 to write), every value a uint16 unless noted.

    Keeps what the vendor's box keeps: the standby control (258, `standby`), the remote
    lock (259) and the watchdog timeout (257, ms; the simulator's validity time). 261
    takes 0 or 60-160 (0.1 A), anything else is exception 3; 262 is read-only here.
    """

    name = "heidelberg-energy-control"
    unit_id = 1
    INPUT = (
        Region(4, 15),  # layout version .. energy since installation (4-18)
        Region(100, 2),  # hardware max / min current (A)
    )
    HOLDING = (
        Region(257, 3, writable=True),  # watchdog timeout ms, standby control, remote lock
        Region(261, 1, writable=True),  # maximal current command, 0.1 A
        Region(262, 1),  # fail-safe current, 0.1 A
    )
    regions = INPUT + HOLDING
    STATE_CODES: ClassVar[dict[str, int]] = {
        "A": 2, "B1": 4, "B2": 5, "C1": 6, "C2": 7, "D1": 6, "D2": 7, "E": 9, "F": 10,
    }  # fmt: skip

    def __init__(self) -> None:
        self.standby = STANDBY_ENABLED  # the factory setting
        self.remote_lock = 1  # unlocked
        self.standby_writes = 0

    def check_read(self, function_code: int, address: int, count: int) -> ExcCodes | None:
        table = self.INPUT if function_code == 4 else self.HOLDING
        end = address + count
        # a read may span adjacent regions of its table (257-262 is one block)
        covered = sorted(
            (r.address, r.address + r.count)
            for r in table
            if r.address < end and address < r.address + r.count
        )
        at = address
        for start, stop in covered:
            if start > at:
                break
            at = max(at, stop)
        return None if at >= end else ExcCodes.ILLEGAL_ADDRESS

    def render(self, view: ChargerView, garbage: bool) -> Iterator[tuple[int, Registers]]:
        yield 4, u16(0x0108)  # layout version 1.0.8
        yield 5, u16(999 if garbage else self.STATE_CODES[view.mode3])
        for i in range(3):
            yield 6 + i, u16(round(view.currents[i] * 10))
            yield 10 + i, u16(65535 if garbage else round(view.voltages[i]))
        yield 9, u16(285)  # 28.5 degC
        yield 13, u16(1)  # external lock: unlocked
        yield 14, u16(min(65535, round(view.power)))
        energy = round(view.energy)
        yield 15, u32(energy)  # since power-on: the simulator's whole life
        yield 17, u32(energy)
        yield 100, u16(16)
        yield 101, u16(6)
        yield 257, u16(min(65535, view.validity_time * 1000))
        yield 258, u16(self.standby)
        yield 259, u16(self.remote_lock)
        yield 261, u16(round(view.setpoint * 10))
        yield 262, u16(round(view.safe_current * 10))

    def parse_write(self, address: int, values: Registers) -> Write | ExcCodes:
        def at(target: int) -> int | None:
            return values[target - address] if address <= target < address + len(values) else None

        standby, lock, raw = at(258), at(259), at(261)
        if standby is not None and standby not in (STANDBY_ENABLED, STANDBY_DISABLED):
            return ExcCodes.ILLEGAL_VALUE
        if lock is not None and lock not in (0, 1):
            return ExcCodes.ILLEGAL_VALUE
        if raw is not None and raw != 0 and not 60 <= raw <= 160:
            return ExcCodes.ILLEGAL_VALUE
        if standby is not None:
            self.standby = standby
            self.standby_writes += 1
        if lock is not None:
            self.remote_lock = lock
        timeout_ms = at(257)
        return Write(
            setpoint=None if raw is None else raw / 10,
            validity_time=None if timeout_ms is None else -(-timeout_ms // 1000),
        )


RTU_LAYOUTS: dict[str, type[Layout]] = {
    HeidelbergEnergyControlLayout.name: HeidelbergEnergyControlLayout,
}
"""RTU chargers the simulator can serve, by profile name."""
