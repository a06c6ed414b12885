"""A grid meter reached over Modbus (TCP, or RTU on a bus shared with chargers),
described by a meter profile.

It rides on the charger adapters' `Transport` (one TCP connection, or the shared
RS-485 `SerialBus` with its lock and pause between requests), the profile's compiled
read plan and the same codecs, so a meter is read exactly as carefully as a charger:
- connects lazily and again after a failure; every request carries the timeout;
- any failure closes the connection, so a late answer is never taken for the next one;
- errors name the meter, the registers and the reason: `MeterUnreachable` for no
  answer, `MeterProtocolError` for exception responses and implausible values.

Currents are placed on the grid phases through the meter's `phases` wiring. Most meters
give the current as a magnitude; where the profile maps the per-phase active power, a
phase whose power is negative (export) gets a negative current (the rule evcc and
openWB use). Without powers, currents stay positive: the cautious direction.
"""

from __future__ import annotations

from typing import Any

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.adapters.base import ChargerUnreachable
from gateway.adapters.modbus.decoding import DecodeError
from gateway.adapters.modbus.errors import EXCEPTION_CODES
from gateway.adapters.modbus.plan import ReadBlock
from gateway.adapters.modbus.transport import TcpTransport, Transport
from gateway.clock import Clock, SystemClock
from gateway.core.model import Phases
from gateway.meters.model import (
    MeterError,
    MeterProtocolError,
    MeterSample,
    MeterUnreachable,
    to_grid,
)
from gateway.meters.profile import MeterProfile, load_meter_profile


def signed_currents(current: Phases, power: Phases | None) -> Phases:
    """Currents with the sign of their phase's active power (export negative).

    A current already negative stays so; without powers the currents are unchanged.
    """
    if power is None:
        return current
    return Phases(
        *(
            -amps if amps > 0 and watts < 0 else amps
            for amps, watts in zip(current.as_tuple(), power.as_tuple(), strict=True)
        )
    )


class ModbusMeter:
    """One meter (one unit id) on a `Transport`, read per its profile."""

    def __init__(
        self,
        meter_id: str,
        transport: Transport,
        unit_id: int | None,
        profile: MeterProfile | str,
        phases: tuple[int, ...] = (1, 2, 3),
        *,
        clock: Clock | None = None,
    ) -> None:
        """Set up the adapter; nothing is sent until the first read. `unit_id` None takes
        the profile's. `phases` is the grid phase wired to the meter's L1, L2, L3.
        `clock` times the samples (default: the system clock)."""
        if sorted(phases) != [1, 2, 3]:
            raise ValueError(f"meter {meter_id}: phases must order 1, 2, 3, got {phases}")
        self._id = meter_id
        self._transport = transport
        self.profile = load_meter_profile(profile) if isinstance(profile, str) else profile
        self.unit_id = self.profile.unit_id if unit_id is None else unit_id
        self.phases = phases
        self._clock = clock or SystemClock()
        self._where = f"meter {meter_id} ({transport.label} unit {self.unit_id})"

    @property
    def meter_id(self) -> str:
        """The meter's id from the config."""
        return self._id

    @property
    def transport(self) -> Transport:
        """The connection the adapter uses (shared with other units on an RTU bus)."""
        return self._transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._id!r}, {self._transport.label}, {self.profile.name})"

    async def read(self) -> MeterSample:
        """Read one sample with the profile's planned requests."""
        values: dict[str, Any] = {}
        async with self._transport.lock:
            try:
                await self._transport.connect(self._where)
            except ChargerUnreachable as exc:  # the transport's words, about this meter
                raise MeterUnreachable(str(exc)) from None
            measured = self._clock.now(), self._clock.wall()
            await self._read_planned(values)
        return self._sample(values, *measured)

    async def _read_planned(self, values: dict[str, Any]) -> None:
        block: ReadBlock | None = None
        try:
            for planned in self.profile.read_plan:
                block = planned.block
                response = await self._transport.read(
                    block.function_code, block.address, block.count, self.unit_id
                )
                if response.isError():
                    code = int(getattr(response, "exception_code", 0))
                    raise MeterProtocolError(
                        f"{self._where}: reading {block.describe()}: the meter answered "
                        f"exception code {code} ({EXCEPTION_CODES.get(code, 'unknown')})"
                    )
                planned.decode_into(response.registers, values)
        except BaseException as exc:
            self._transport.drop()
            doing = f"reading {block.describe() if block else 'registers'}"
            error = self._error(exc, doing) if isinstance(exc, Exception) else None
            if error is None:
                raise
            raise error from exc

    def _error(self, exc: Exception, doing: str) -> MeterError | None:
        """The `MeterError` for a failure while `doing`; None to let it pass as it is
        (already translated, or an unexpected bug that should be seen as one)."""
        if isinstance(exc, MeterError):
            return None
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if isinstance(exc, DecodeError):
            return MeterProtocolError(f"{self._where}: {doing}: {reason}")
        if isinstance(exc, ConnectionException | OSError):
            return MeterUnreachable(f"{self._where}: {doing}: connection lost ({reason})")
        if isinstance(exc, ModbusIOException | TimeoutError):
            timeout = self._transport.timeout
            return MeterUnreachable(f"{self._where}: {doing}: no answer within {timeout:g} s")
        if isinstance(exc, ModbusException):
            return MeterProtocolError(f"{self._where}: {doing}: {reason}")
        return None

    def _sample(self, values: dict[str, Any], monotonic: float, wall: float) -> MeterSample:
        def triple(quantity: str) -> Phases | None:
            if not self.profile.has(quantity):
                return None
            return Phases(*(float(values[f"{quantity}_l{n}"]) for n in (1, 2, 3)))

        def on_grid(meter_phases: Phases | None) -> Phases | None:
            return None if meter_phases is None else to_grid(meter_phases, self.phases)

        power = triple("power")
        current = triple("current")
        assert current is not None  # every meter profile maps the currents
        return MeterSample(
            monotonic=monotonic,
            timestamp=wall,
            current=to_grid(signed_currents(current, power), self.phases),
            power=on_grid(power),
            voltage=on_grid(triple("voltage")),
        )

    async def close(self) -> None:
        """Close the connection (on a bus: leave it); safe to call more than once."""
        await self._transport.release(self)


class ModbusTcpMeter(ModbusMeter):
    """One meter on Modbus TCP (directly, or behind an RS-485 gateway), on its own
    connection. `timeout` (s) bounds the connect and every request."""

    def __init__(
        self,
        meter_id: str,
        host: str,
        port: int,
        unit_id: int | None,
        profile: MeterProfile | str,
        phases: tuple[int, ...] = (1, 2, 3),
        *,
        timeout: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"meter {meter_id}: need timeout > 0 (got {timeout})")
        transport = TcpTransport(host, port, timeout, name=meter_id)
        super().__init__(meter_id, transport, unit_id, profile, phases, clock=clock)
        self.host = host
        self.port = port
