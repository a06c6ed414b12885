"""A simulated charger: a register layout served by a real pymodbus Modbus TCP server.

Each request runs the SimDevice action (pymodbus 3.16 simulator API): a read advances
the EV model to the current time and renders the registers in place; a write is checked
and interpreted like the vendor's charger would (exception 3 for half a float or an
absurd current) before pymodbus stores it.

Test controls, all plain attributes or methods:
- `plug(phases, ev_max_current)` / `unplug()`: the EV behind the charger.
- `silent = True` (or `silence()`) / `resume()`: the charger stops answering; requests
  are still received and the TCP connection stays up (a hung firmware), so clients run
  into their timeout rather than a quick refusal.
- `refuse_writes = True`: every write is answered with exception `refuse_code`.
- `garbage = True`: measurements read NaN, infinities and absurd values.
- `current_limit`: the value last written to the setpoint register; `writes`: every
  accepted setpoint write as (wall time, amps); `request_count` / `recent_requests`.
- `write_log`: setpoint and phase-setting writes in order, as (simulator clock time,
  "setpoint" or "phases", value); `switches_under_load`: phase-setting changes made
  while the EV drew current (a contactor switched under load).
  The EV follows the phase setting: on 1 it draws on L1 only.
- `validity_time`, `safe_current`: the setpoint expires after `validity_time` s without
  a rewrite (or heartbeat) and the charger applies the safe current, as Alfen does.
  Where the layout's safe-current register is writable, a write sets `safe_current`
  (counted in `safe_current_writes`); elsewhere it is answered with an exception.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.simulator.ev_model import MIN_CHARGING_CURRENT, EvModel
from gateway.simulator.layout_base import ChargerView, Layout, Write
from gateway.simulator.layouts import LAYOUTS
from gateway.simulator.rtu_layouts import RTU_LAYOUTS
from gateway.simulator.served import ServedTcp

MAX_WRITES_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class Request:
    """One request the simulator received."""

    function_code: int
    address: int
    count: int


class SimulatedCharger(ServedTcp):
    """One simulated charger on its own TCP port (127.0.0.1 by default)."""

    def __init__(
        self,
        profile: str = "generic",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int | None = None,
        voltages: tuple[float, float, float] = (230.0, 230.0, 230.0),
        safe_current: float = 6.0,
        validity_time: float = 60.0,
        hardware_max_current: float = 32.0,
        energy: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A charger serving `profile`'s layout; `port` 0 picks a free port at start.

        `clock` drives the EV model and the setpoint validity (monotonic seconds); tests
        may pass a controllable one.
        """
        layout_type = LAYOUTS.get(profile) or RTU_LAYOUTS.get(profile)
        if layout_type is None:
            have = sorted([*LAYOUTS, *RTU_LAYOUTS])
            raise ValueError(f"no simulator layout for profile {profile!r}; have {have}")
        self.layout: Layout = layout_type()
        self.profile_name = profile
        self.host = host
        self._port = port
        self.unit_id = self.layout.unit_id if unit_id is None else unit_id
        self.voltages = voltages
        self.safe_current = safe_current
        self.validity_time = validity_time
        self.hardware_max_current = hardware_max_current
        self.charger_phases = 3
        self.ev = EvModel(energy=energy)
        self.refuse_writes = False
        self.refuse_code = ExcCodes.ILLEGAL_FUNCTION
        self.garbage = False
        self.writes: list[tuple[float, float]] = []
        self.write_log: list[tuple[float, str, float]] = []
        self.switches_under_load = 0
        self.safe_current_writes = 0
        self.request_count = 0
        self.recent_requests: deque[Request] = deque(maxlen=1000)
        self.last_view: ChargerView | None = None
        self._clock = clock
        self.silent = False  # True: requests are taken in, but no answer leaves
        self._setpoint: float | None = None
        self._setpoint_at = -math.inf

    # -- lifecycle ---------------------------------------------------------------


    # -- test controls -----------------------------------------------------------

    def plug(self, phases: int = 3, ev_max_current: float = 16.0) -> None:
        """Plug in an EV charging on `phases` phases at up to `ev_max_current` A."""
        self.ev.plug(phases, ev_max_current)

    def unplug(self) -> None:
        """Unplug the EV."""
        self.ev.unplug()

    def silence(self) -> None:
        """Stop answering (clients time out)."""
        self.silent = True

    def resume(self) -> None:
        """Answer again."""
        self.silent = False

    @property
    def current_limit(self) -> float | None:
        """The value last written to the setpoint register (None before any write).

        float32 cannot hold 15.9 exactly: the value is rounded to 1 mA, finer than any
        charger applies, so tests compare it with the amps that were meant.
        """
        return None if self._setpoint is None else round(self._setpoint, 3)

    @property
    def applied_current_limit(self) -> float:
        """The limit the charger applies now: a valid setpoint, else its safe current."""
        return self._applied(self._clock())

    # -- request handling --------------------------------------------------------

    def device(self) -> SimDevice:
        """The pymodbus device serving this charger's unit (a bus server has several)."""
        return SimDevice(id=self.unit_id, simdata=self._simdata(), action=self._action)

    def record_request(self, pdu: Any) -> None:
        """Count a request received for this charger."""
        self.request_count += 1
        self.recent_requests.append(
            Request(int(pdu.function_code), int(pdu.address), int(pdu.count))
        )

    def _simdata(self) -> list[SimData]:
        return [
            SimData(
                address=region.address,
                count=region.count,
                values=0,
                datatype=DataType.REGISTERS,
                readonly=not region.writable,
            )
            for region in self.layout.regions
        ]

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus SimDevice action: render on reads, interpret writes."""
        if set_values is None:
            refused = self.layout.check_read(function_code, address, count)
            if refused is not None:
                return refused
            self._render(registers, start_address)
            return None
        offset = address - start_address
        if self.silent:
            # a hung charger does not act on writes either: keep the registers as they are
            set_values[:] = registers[offset : offset + len(set_values)]  # type: ignore[assignment]
            return None
        if self.refuse_writes:
            return self.refuse_code
        write = self.layout.parse_write(address, [int(v) for v in set_values])
        if isinstance(write, ExcCodes):
            return write
        self._apply(write)
        return None

    def _apply(self, write: Write) -> None:
        now = self._clock()
        if write.setpoint is not None:
            self._setpoint = write.setpoint
            self._setpoint_at = now
            self.writes.append((time.time(), round(write.setpoint, 3)))
            if len(self.writes) > MAX_WRITES_KEPT:
                del self.writes[: MAX_WRITES_KEPT // 2]
        if write.heartbeat and self._setpoint is not None:
            self._setpoint_at = now
        if write.validity_time is not None:
            self.validity_time = float(write.validity_time)
        if write.setpoint is not None:
            self._log(now, "setpoint", round(write.setpoint, 3))
        if write.phases is not None:
            self._log(now, "phases", float(write.phases))
            drawn = self.ev.currents(self._applied(now), self.charger_phases)
            if write.phases != self.charger_phases and max(drawn) > 0:
                self.switches_under_load += 1
            self.charger_phases = write.phases
        if write.safe_current is not None:
            self.safe_current = write.safe_current
            self.safe_current_writes += 1

    def _log(self, now: float, what: str, value: float) -> None:
        self.write_log.append((now, what, value))
        if len(self.write_log) > MAX_WRITES_KEPT:
            del self.write_log[: MAX_WRITES_KEPT // 2]

    def _setpoint_valid(self, now: float) -> bool:
        if self._setpoint is None:
            return False
        return self.validity_time <= 0 or now - self._setpoint_at < self.validity_time

    def _applied(self, now: float) -> float:
        wanted = self._setpoint if self._setpoint_valid(now) else self.safe_current
        return min(wanted if wanted is not None else 0.0, self.hardware_max_current)

    def view(self) -> ChargerView:
        """Advance the EV to now and return what the charger shows."""
        now = self._clock()
        applied = self._applied(now)
        draw = self.ev.update(now, applied, self.voltages, self.charger_phases)
        if not self.ev.plugged:
            mode3 = "A"
        elif applied < MIN_CHARGING_CURRENT:
            mode3 = "B1"  # no PWM: paused by the charger
        else:
            mode3 = "C2" if draw.charging else "B2"
        valid = self._setpoint_valid(now)
        left = 0
        if valid and self.validity_time > 0:
            left = max(0, math.ceil(self.validity_time - (now - self._setpoint_at)))
        view = ChargerView(
            voltages=self.voltages,
            currents=draw.currents,
            power=draw.power,
            energy=draw.energy,
            mode3=mode3,
            applied_limit=applied,
            setpoint=self._setpoint or 0.0,
            setpoint_valid=valid,
            safe_current=self.safe_current,
            validity_left=left,
            validity_time=int(self.validity_time),
            phases=self.charger_phases,
        )
        self.last_view = view
        return view

    def _render(self, registers: list[int], start_address: int) -> None:
        for address, values in self.layout.render(self.view(), self.garbage):
            offset = address - start_address
            registers[offset : offset + len(values)] = values
