"""A charger reached over Modbus, described by a register-map profile.

`ModbusCharger` implements `gateway.adapters.base.Charger` on a `Transport`
(transport.py): `tcp.ModbusTcpCharger` with its own `AsyncModbusTcpClient`, and
`rtu.ModbusRtuCharger` on a serial line shared with the other units of its bus.
- Connects lazily, and again whenever the connection is gone (chargers close idle
  connections: Alfen after 60 s).
- Every request carries the timeout (pymodbus' own, `retries=0`, no automatic
  reconnect): it never hangs, and retries and backoff stay with the poller.
- Any failure closes the connection, so the next call starts from a clean one
  instead of reading a late answer to an old request.
- Errors name the charger, the registers and the reason: `ChargerUnreachable` for no
  answer, `ChargerProtocolError` for exception responses and values that make no sense.
- The profile's startup writes (such as Heidelberg's "standby off") go out once
  connected and again after a failure; a watchdog timeout register, where the profile
  names one, is read then and shortens the keepalive interval to a quarter of it.
- A configured fail-safe current is written then too, where the profile marks the
  charger's safe-current register writable (a warning at start where it cannot).

The poll path is kept lean, because gateway CPU per poll is budgeted against a bare
pymodbus read: the profile's read plan and codecs are compiled at load, and a read is
the planned requests plus one struct unpack per value.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, NoReturn

from gateway.adapters.base import ChargerError, ChargerProtocolError
from gateway.adapters.modbus.decoding import DataType, EncodeError, decode
from gateway.adapters.modbus.errors import refused, translate
from gateway.adapters.modbus.plan import ReadBlock
from gateway.adapters.modbus.profile import Profile, RegisterSpec, SetpointSpec, load_profile
from gateway.adapters.modbus.transport import Transport
from gateway.adapters.setpoint import quantize_current
from gateway.core.model import (
    ChargerSample,
    Phases,
    charger_inclusion_bounds,
    phases_in_use,
)

MIN_KEEPALIVE = 1.0
"""s: the shortest keepalive interval derived from a charger's watchdog timeout."""

_log = logging.getLogger(__name__)

# pymodbus logs every timeout at ERROR with a dump of the last 20 frames. The adapter
# raises a ChargerError naming charger, registers and reason, and the poller logs that,
# so by default only pymodbus' critical messages are kept. An application that sets
# the "pymodbus" logger level itself keeps its choice.
_pymodbus_log = logging.getLogger("pymodbus")
if _pymodbus_log.level == logging.NOTSET:
    _pymodbus_log.setLevel(logging.CRITICAL)


class ModbusCharger:
    """One charger (one unit id) reached through a `Transport`, read and written per its
    profile. `ModbusTcpCharger` and `rtu.ModbusRtuCharger` only choose the transport."""

    def __init__(
        self,
        charger_id: str,
        transport: Transport,
        unit_id: int | None,
        profile: Profile | str,
        max_current: float,
        wired_phases: int,
        nominal_voltage: float = 230.0,
        safe_current: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Set up the adapter; nothing is sent until the first call.

        `unit_id` None takes the profile's default. `max_current` (A) is the hardware or
        cable limit from the config; `wired_phases` how many charger phases are wired
        (for the inclusion bounds when the EV draws nothing yet). The transport's
        timeout bounds the connect and every request. `safe_current` (A), where set, is
        written to the charger's fail-safe current register at each (re)connection,
        where the profile marks it writable; otherwise one warning is logged. `clock`
        (monotonic seconds) stamps samples and schedules the keepalive.
        """
        if not max_current > 0 or wired_phases not in (1, 2, 3):
            raise ValueError(
                f"charger {charger_id}: need max_current > 0 and "
                f"1-3 wired phases (got {max_current}, {wired_phases})"
            )
        self._id = charger_id
        self._clock = clock
        self._transport = transport
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.unit_id = self.profile.unit_id if unit_id is None else unit_id
        self.max_current = max_current
        self.wired_phases = wired_phases
        self.nominal_voltage = nominal_voltage
        self.timeout = transport.timeout
        # One operation at a time on the connection (the transport's lock, shared by
        # every unit on an RS-485 bus): a request never waits inside pymodbus behind one
        # that fails and closes the connection, and the operation after a failure
        # starts by reconnecting.
        self._lock = transport.lock
        self._limit: float | None = None  # last limit the charger accepted
        self._limit_at = 0.0  # monotonic time of that write
        self._heartbeat_at = -math.inf
        self._prepared = False  # startup writes done, watchdog timeout read
        watchdog = self.profile.watchdog
        self._keepalive = watchdog.keepalive_interval if watchdog else None
        self._heartbeat = watchdog.heartbeat if watchdog else None
        self._where = f"charger {charger_id} ({transport.label} unit {self.unit_id})"
        self.safe_current = safe_current
        if safe_current is not None and self.profile.safe_current_write is None:
            _log.warning(
                "%s: safe_current = %g A is configured, but the profile %r has no writable "
                "fail-safe current register; set it on the charger itself",
                self._where,
                safe_current,
                self.profile.name,
            )

    @property
    def charger_id(self) -> str:
        """The charger's id from the config."""
        return self._id

    @property
    def transport(self) -> Transport:
        """The connection the adapter uses (shared with other units on an RTU bus)."""
        return self._transport

    @property
    def keepalive_interval(self) -> float | None:
        """Seconds after which the last setpoint is rewritten (None: never); from the
        profile, shortened to a quarter of the timeout the charger reports, if any."""
        return self._keepalive

    @property
    def last_limit(self) -> float | None:
        """The last current limit the charger accepted (None before the first, or after a
        failed write: then the keepalive stops and the charger falls back to its safe
        current when its validity time runs out)."""
        return self._limit

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}({self._id!r}, {self._transport.label}, {self.profile.name})"

    def deadline(self, requests: int) -> float:
        """Seconds an operation of `requests` requests may take in all: each request
        has the timeout, plus a reconnect and the startup writes, times the units that
        may hold the line's lock first (one on TCP). A safety net only: every request
        already times out by itself."""
        return (
            self.timeout
            * (requests + 2 + len(self.profile.startup_writes))
            * (self._transport.sharers)
        )

    @property
    def read_deadline(self) -> float:
        """Seconds a whole `read()` may take (see `deadline`)."""
        return self.deadline(len(self.profile.read_plan))

    @property
    def write_deadline(self) -> float:
        """Seconds a `set_current_limit` or `keep_alive` may take (see `deadline`)."""
        return self.deadline(2)

    async def read(self) -> ChargerSample:
        """Read one sample with the profile's planned requests."""
        values: dict[str, Any] = {}
        async with self._lock:
            await self._connected()
            await self._read_planned(values)
        return self._sample(values)

    def next_keepalive_due(self) -> float | None:
        """When (on the adapter's clock) the watchdog next wants a write; None when
        nothing is to be kept alive (no limit held, or no watchdog)."""
        if self._limit is None:
            return None
        due: list[float] = []
        if self._keepalive is not None:
            due.append(self._limit_at + self._keepalive)
        if self._heartbeat is not None:
            due.append(self._heartbeat_at + self._heartbeat.interval)
        return min(due) if due else None

    async def keep_alive(self) -> None:
        """Rewrite the setpoint and write the heartbeat where they are due."""
        if self.next_keepalive_due() is None:
            return
        async with self._lock:
            await self._connected()
            await self._keep_alive()

    async def _read_planned(self, values: dict[str, Any]) -> None:
        block: ReadBlock | None = None
        unit = self.unit_id
        transport = self._transport
        try:
            for planned in self.profile.read_plan:
                block = planned.block
                response = await transport.read(
                    block.function_code, block.address, block.count, unit
                )
                if response.isError():
                    raise self._refused(response, block.describe())
                planned.decode_into(response.registers, values)
        except BaseException as exc:
            self._fail(exc, f"reading {block.describe() if block else 'registers'}")

    def _sample(self, values: dict[str, Any]) -> ChargerSample:
        get = values.get
        current = Phases(get("current_l1", 0.0), get("current_l2", 0.0), get("current_l3", 0.0))
        voltage = Phases(get("voltage_l1", 0.0), get("voltage_l2", 0.0), get("voltage_l3", 0.0))
        code = values["state"]
        state = self.profile.state_codes.get(code)
        if state is None:
            self._drop()
            raise ChargerProtocolError(
                f"{self._where}: register {self.profile.state.address} (state): "
                f"unknown state code {code!r}; the profile {self.profile.name!r} "
                f"knows {sorted(map(str, self.profile.state_codes))}"
            )
        # the profile's separate charging register, where it has one, refines "ready"
        component = self.profile.component_state(state[1], get("charging"))
        limit = get("current_limit", self._limit)
        phases = phases_in_use(current, self.wired_phases)
        return ChargerSample(
            timestamp=self._clock(),
            active_power=values["active_power"],
            current=current,
            voltage=voltage,
            energy=get("energy"),
            cable_state=state[0],
            component_state=component,
            current_limit=limit,
            inclusion_bounds=charger_inclusion_bounds(
                self.max_current, voltage, self.nominal_voltage, phases
            ),
        )

    async def set_current_limit(self, amps: float) -> float:
        """Write the per-phase limit; returns the value written (see `quantize_current`)."""
        profile = self.profile
        value = quantize_current(amps, self.max_current, profile.min_current, profile.current_step)
        async with self._lock:
            await self._connected()
            await self._write_setpoint(value)
        return value

    async def switch_phases(self, phases: int) -> None:
        """Write the profile's phase switch register for `phases` (1 or 3). Never under
        load: the caller pauses the charger at 0 A first (gateway.chargers.phase_switch)."""
        spec = self.profile.phase_switch
        if spec is None:
            raise ChargerProtocolError(f"{self._where}: its profile cannot switch phases")
        value = spec.value(phases)
        what = f"phase switch register {spec.address} (= {value}: {phases} phases)"
        async with self._lock:
            await self._connected()
            await self._write(spec.address, [value], spec.write_function_code, what)

    async def read_safe_current(self) -> float | None:
        """The charger's fail-safe current (A), where the profile names its register."""
        spec = self.profile.safe_current
        if spec is None:
            return None
        async with self._lock:
            await self._connected()
            return await self._read_one(spec)

    async def _read_one(self, spec: RegisterSpec) -> float:
        block = ReadBlock(spec.function_code, spec.address, spec.count, (spec.name,))
        try:
            response = await self._transport.read(
                spec.function_code, spec.address, spec.count, self.unit_id
            )
            if response.isError():
                raise self._refused(response, block.describe())
            value = decode(
                response.registers,
                spec.data_type,
                spec.word_order,
                spec.scale,
                valid=(spec.minimum, spec.maximum),
                where=f"register {spec.address} ({spec.name}): ",
            )
        except BaseException as exc:
            self._fail(exc, f"reading {block.describe()}")
        return float(value)

    async def close(self) -> None:
        """Close the connection (on a bus: leave it); safe to call more than once."""
        self._prepared = False
        await self._transport.release(self)

    # -- internals ---------------------------------------------------------------

    async def _connected(self) -> None:
        """Connect when there is no connection or it was lost, then do the profile's
        startup writes once. Called with `_lock` held."""
        await self._transport.connect(self._where)
        if not self._prepared:
            await self._prepare()

    async def _prepare(self) -> None:
        """The profile's startup writes (such as "standby off"), and the watchdog timeout
        the charger is configured with, which may shorten the keepalive interval."""
        profile = self.profile
        for startup in profile.startup_writes:
            await self._write(
                startup.address,
                [startup.value],
                startup.write_function_code,
                f"startup register {startup.address} (= {startup.value})",
            )
        safe_write = profile.safe_current_write
        if safe_write is not None and self.safe_current is not None:
            await self._write(
                safe_write.address,
                self._encode(safe_write, self.safe_current, "safe current"),
                safe_write.write_function_code,
                f"safe current register {safe_write.address} ({self.safe_current:g} A)",
            )
        watchdog = profile.watchdog
        if watchdog is not None and watchdog.timeout_register is not None:
            spec = RegisterSpec(
                "watchdog_timeout", watchdog.timeout_register, 3, DataType.UINT16, minimum=0
            )
            timeout = await self._read_one(spec) * watchdog.timeout_scale
            if timeout > 0:
                quarter = max(timeout / 4, MIN_KEEPALIVE)
                configured = watchdog.keepalive_interval
                self._keepalive = quarter if configured is None else min(configured, quarter)
        self._prepared = True

    def _drop(self) -> None:
        self._prepared = False  # the charger may have restarted: prepare it again
        self._transport.drop()

    async def _keep_alive(self) -> None:
        """Rewrite the setpoint / write the heartbeat when the watchdog wants it."""
        if self._limit is None:
            return
        now = self._clock()
        if self._keepalive is not None and now - self._limit_at >= self._keepalive:
            await self._write_setpoint(self._limit)
        heartbeat = self._heartbeat
        if heartbeat is not None and now - self._heartbeat_at >= heartbeat.interval:
            await self._write(
                heartbeat.address,
                [heartbeat.value],
                heartbeat.write_function_code,
                f"heartbeat register {heartbeat.address}",
            )
            self._heartbeat_at = now

    async def _write_setpoint(self, amps: float) -> None:
        spec = self.profile.setpoint
        registers = self._encode(spec, amps, "setpoint")
        try:
            await self._write(
                spec.address,
                registers,
                spec.write_function_code,
                f"setpoint register {spec.address} ({amps:g} A)",
            )
        except ChargerError:
            self._limit = None  # stop refreshing a limit the charger may not hold
            raise
        self._limit = amps
        self._limit_at = self._clock()

    def _encode(self, spec: SetpointSpec, amps: float, what: str) -> list[int]:
        try:
            return spec.encode(amps)
        except EncodeError as exc:
            raise ChargerProtocolError(
                f"{self._where}: {what} register {spec.address}: cannot encode {amps} A: {exc}"
            ) from exc

    async def _write(self, address: int, registers: list[int], fc: int, what: str) -> None:
        try:
            response = await self._transport.write(fc, address, registers, self.unit_id)
            if response.isError():
                raise self._refused(response, what)
        except BaseException as exc:
            self._fail(exc, f"writing {what}")

    def _refused(self, response: Any, what: str) -> ChargerProtocolError:
        return refused(response, f"{self._where}: {what}")

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        """Close the connection and raise the ChargerError for a failure while `doing`.

        Cancellation (the poller's own timeout) and errors already translated pass
        through unchanged; so do unexpected exceptions, which are bugs to see as such.
        """
        self._drop()
        error = (
            translate(exc, f"{self._where}: {doing}", self.timeout)
            if isinstance(exc, Exception)
            else None
        )
        if error is None:
            raise exc
        raise error from exc
