"""Chargers on a Modbus RTU (RS-485) bus: several units, one serial line.

Every charger on one serial port shares one `SerialBus`: one pymodbus
`AsyncModbusSerialClient`, one lock (a unit's whole operation, such as keepalive write
plus planned reads, runs without another unit's frames in between: RS-485 is half
duplex and RTU has no transaction ids), and an optional pause between requests (evcc
uses 100 ms for Heidelberg; RS-485 converters need it to turn the line around).

`open_bus` / `SerialBus.release` keep a registry keyed by the serial device (symlinks
resolved), reference counted by the adapters using it: the port is opened with the
first request and closed when the last charger on it is closed. Two chargers on one
port must agree on the line settings (a bus has one baud rate).

The register-map logic is `ModbusCharger`'s, unchanged; failures are reported exactly
as on TCP (`ChargerUnreachable`: no answer within the timeout, port gone;
`ChargerProtocolError`: exception responses, implausible values). Like on TCP, any
failure closes the port so a late answer cannot be taken for the next request's; the
next request on the bus (any unit) reopens it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.framer import FramerType

from gateway.adapters.base import ChargerUnreachable
from gateway.adapters.modbus.charger import ModbusCharger
from gateway.adapters.modbus.profile import Profile, load_profile
from gateway.adapters.modbus.transport import Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """The line settings of one RS-485 bus."""

    port: str
    baudrate: int = 19200
    parity: str = "E"  # "N", "E" or "O"
    stopbits: int = 1
    bytesize: int = 8
    delay: float = 0.0  # s between the end of one request and the next

    def describe(self) -> str:
        """`/dev/ttyUSB0 19200 8E1`."""
        return f"{self.port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


class SerialBus(Transport):
    """One serial line shared by every charger on it (see `open_bus`)."""

    def __init__(self, settings: SerialSettings, timeout: float) -> None:
        super().__init__(settings.port, timeout, settings.delay)
        self.settings = settings
        self.key = _key(settings.port)
        self._users: set[int] = set()

    @property
    def sharers(self) -> int:
        """Units whose operations queue on this line's lock."""
        return max(1, len(self._users))

    @property
    def users(self) -> int:
        """How many adapters use the bus."""
        return len(self._users)

    def _new_client(self, on_connection_change: Callable[[bool], None]) -> ModbusBaseClient:
        s = self.settings
        return AsyncModbusSerialClient(
            s.port,
            framer=FramerType.RTU,
            baudrate=s.baudrate,
            parity=s.parity,
            stopbits=s.stopbits,
            bytesize=s.bytesize,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,  # reopening (with backoff) is the poller's job
            name=f"rtu {s.port}",
            trace_connect=on_connection_change,
        )

    def _refused_reason(self) -> str:
        return f"cannot open serial port {self.settings.describe()}"

    async def connect(self, where: str) -> None:
        """Open the port unless open; refused once every adapter on the bus is closed."""
        if not self._users:
            raise ChargerUnreachable(f"{where}: the adapter is closed")
        await super().connect(where)

    def acquire(self, user: object) -> None:
        """`user` (an adapter) uses the bus from now on."""
        self._users.add(id(user))

    async def release(self, user: object) -> None:
        """`user` is closed; the last one closes the port. Idempotent per user."""
        if self.forget(user):
            self.drop()

    def forget(self, user: object) -> bool:
        """Stop counting `user`; True when it was the last (the bus leaves the registry)."""
        self._users.discard(id(user))
        if self._users:
            return False
        if _BUSES.get(self.key) is self:
            del _BUSES[self.key]
        return True


_BUSES: dict[str, SerialBus] = {}


def _key(port: str) -> str:
    return os.path.realpath(port)


def open_bus(settings: SerialSettings, timeout: float, user: object) -> SerialBus:
    """The bus on `settings.port`, created on first use, with `user` counted on it.

    Raises `ValueError` when the port is already open with other line settings. The
    request timeout is the first charger's: a bus answers at one speed; a later charger
    asking for another timeout is logged and gets the bus' one.
    """
    key = _key(settings.port)
    bus = _BUSES.get(key)
    if bus is None:
        bus = _BUSES[key] = SerialBus(settings, timeout)
    else:
        if bus.settings != settings:
            raise ValueError(
                f"serial port {settings.port} is already used as {bus.settings.describe()} "
                f"(delay {bus.settings.delay:g} s); every charger on a bus needs the same "
                f"settings, got {settings.describe()} (delay {settings.delay:g} s)"
            )
        if timeout != bus.timeout:
            log.warning(
                "serial port %s: timeout %g s requested, the bus uses %g s",
                settings.port,
                timeout,
                bus.timeout,
            )
    bus.acquire(user)
    return bus


class ModbusRtuCharger(ModbusCharger):
    """One charger (one unit id) on a Modbus RTU bus shared with other units."""

    def __init__(
        self,
        charger_id: str,
        serial: SerialSettings,
        unit_id: int | None,
        profile: Profile | str,
        max_current: float,
        wired_phases: int,
        nominal_voltage: float = 230.0,
        timeout: float = 1.0,
        safe_current: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Set up the adapter on the bus of `serial.port` (nothing is opened until the
        first call). `timeout` (s) bounds every request; see `ModbusCharger`."""
        if not timeout > 0:
            raise ValueError(f"charger {charger_id}: need timeout > 0 (got {timeout})")
        loaded = load_profile(profile) if isinstance(profile, str) else profile
        unit = loaded.unit_id if unit_id is None else unit_id
        if not 1 <= unit <= 247:
            raise ValueError(f"charger {charger_id}: Modbus RTU unit id must be 1-247, got {unit}")
        bus = open_bus(serial, timeout, self)
        try:
            super().__init__(
                charger_id,
                bus,
                unit,
                loaded,
                max_current,
                wired_phases,
                nominal_voltage,
                safe_current,
                clock,
            )
        except BaseException:
            bus.forget(self)
            raise
        self.bus = bus
