"""A charger reached over Modbus TCP, described by a register-map profile.

`ModbusTcpCharger` implements `gateway.adapters.base.Charger` with one pymodbus
`AsyncModbusTcpClient`:
- Connects lazily, and again whenever the connection is gone (chargers close idle
  connections: Alfen after 60 s).
- Every request carries the timeout (pymodbus' own, `retries=0`, no automatic
  reconnect): it never hangs, and retries and backoff stay with the poller.
- Any failure closes the socket, so the next call starts from a clean connection
  instead of reading a late answer to an old request.
- Errors name the charger, the registers and the reason: `ChargerUnreachable` for no
  answer, `ChargerProtocolError` for exception responses and values that make no sense.

The poll path is kept lean, because gateway CPU per poll is budgeted against a bare
pymodbus read: the profile's read plan and codecs are compiled at load, and a read is
the planned requests plus one struct unpack per value.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, NoReturn

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.adapters.base import ChargerError, ChargerProtocolError, ChargerUnreachable
from gateway.adapters.modbus.decoding import DecodeError, EncodeError, decode
from gateway.adapters.modbus.plan import ReadBlock
from gateway.adapters.modbus.profile import Profile, RegisterSpec, load_profile
from gateway.core.model import ChargerSample, Phases, charger_inclusion_bounds, phases_in_use

EXCEPTION_CODES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
"""Modbus exception codes (Modbus application protocol v1.1b3, section 7)."""

_EPSILON = 1e-9  # absorbs binary float error when dividing by a decimal step

# pymodbus logs every timeout at ERROR with a dump of the last 20 frames. The adapter
# raises a ChargerError naming charger, registers and reason, and the poller logs that,
# so by default only pymodbus' critical messages are kept. An application that sets
# the "pymodbus" logger level itself keeps its choice.
_pymodbus_log = logging.getLogger("pymodbus")
if _pymodbus_log.level == logging.NOTSET:
    _pymodbus_log.setLevel(logging.CRITICAL)


def quantize_current(amps: float, max_current: float, min_current: float, step: float) -> float:
    """The limit to write for a requested per-phase current.

    Below `min_current` (IEC 61851: 6 A) means pause, written as 0 rather than a value a
    charger would refuse or misread. Otherwise clamp to `max_current` and round DOWN to
    the charger's `step`, so the written limit never exceeds the request. A result that
    falls below `min_current` after clamping is also 0.
    """
    if not math.isfinite(amps) or amps < 0:
        raise ValueError(f"a current limit must be a finite number >= 0, got {amps}")
    if amps < min_current:
        return 0.0
    steps = math.floor(min(amps, max_current) / step + _EPSILON)
    value = round(steps * step, 6)
    return value if value >= min_current else 0.0


class ModbusTcpCharger:
    """One charger (one unit id) on Modbus TCP, read and written per its profile."""

    def __init__(
        self,
        charger_id: str,
        host: str,
        port: int,
        unit_id: int | None,
        profile: Profile | str,
        max_current: float,
        wired_phases: int,
        nominal_voltage: float = 230.0,
        timeout: float = 1.0,
    ) -> None:
        """Set up the adapter; nothing connects until the first call.

        `unit_id` None takes the profile's default. `max_current` (A) is the hardware or
        cable limit from the config; `wired_phases` how many charger phases are wired
        (for the inclusion bounds when the EV draws nothing yet). `timeout` (s) bounds
        the connect and every request.
        """
        if not max_current > 0 or not timeout > 0 or wired_phases not in (1, 2, 3):
            raise ValueError(
                f"charger {charger_id}: need max_current > 0, timeout > 0 and "
                f"1-3 wired phases (got {max_current}, {timeout}, {wired_phases})"
            )
        self._id = charger_id
        self.host = host
        self.port = port
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.unit_id = self.profile.unit_id if unit_id is None else unit_id
        self.max_current = max_current
        self.wired_phases = wired_phases
        self.nominal_voltage = nominal_voltage
        self.timeout = timeout
        self._client: AsyncModbusTcpClient | None = None
        # One operation at a time on the connection: a request never waits inside
        # pymodbus behind one that fails and closes the socket, and the operation after
        # a failure starts by reconnecting.
        self._lock = asyncio.Lock()
        self._limit: float | None = None  # last limit the charger accepted
        self._limit_at = 0.0  # monotonic time of that write
        self._heartbeat_at = -math.inf
        watchdog = self.profile.watchdog
        self._keepalive = watchdog.keepalive_interval if watchdog else None
        self._heartbeat = watchdog.heartbeat if watchdog else None
        self._where = f"charger {charger_id} ({host}:{port} unit {self.unit_id})"

    @property
    def charger_id(self) -> str:
        """The charger's id from the config."""
        return self._id

    @property
    def last_limit(self) -> float | None:
        """The last current limit the charger accepted (None before the first, or after a
        failed write: then the keepalive stops and the charger falls back to its safe
        current when its validity time runs out)."""
        return self._limit

    def __repr__(self) -> str:
        return f"ModbusTcpCharger({self._id!r}, {self.host}:{self.port}, {self.profile.name})"

    async def read(self) -> ChargerSample:
        """Read one sample with the profile's planned requests; rewrite the setpoint
        first when the profile's keepalive interval has passed."""
        values: dict[str, Any] = {}
        async with self._lock:
            client = await self._connected()
            await self._keep_alive(client)
            await self._read_planned(client, values)
        return self._sample(values)

    async def _read_planned(self, client: AsyncModbusTcpClient, values: dict[str, Any]) -> None:
        block: ReadBlock | None = None
        unit = self.unit_id
        try:
            for planned in self.profile.read_plan:
                block = planned.block
                if block.function_code == 3:
                    response = await client.read_holding_registers(
                        block.address, count=block.count, device_id=unit
                    )
                else:
                    response = await client.read_input_registers(
                        block.address, count=block.count, device_id=unit
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
        limit = get("current_limit", self._limit)
        phases = phases_in_use(current, self.wired_phases)
        return ChargerSample(
            timestamp=time.time(),
            active_power=values["active_power"],
            current=current,
            voltage=voltage,
            energy=get("energy"),
            cable_state=state[0],
            component_state=state[1],
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
            client = await self._connected()
            await self._write_setpoint(client, value)
        return value

    async def read_safe_current(self) -> float | None:
        """The charger's fail-safe current (A), where the profile names its register."""
        spec = self.profile.safe_current
        if spec is None:
            return None
        async with self._lock:
            client = await self._connected()
            return await self._read_one(client, spec)

    async def _read_one(self, client: AsyncModbusTcpClient, spec: RegisterSpec) -> float:
        block = ReadBlock(spec.function_code, spec.address, spec.count, (spec.name,))
        try:
            if spec.function_code == 3:
                response = await client.read_holding_registers(
                    spec.address, count=spec.count, device_id=self.unit_id
                )
            else:
                response = await client.read_input_registers(
                    spec.address, count=spec.count, device_id=self.unit_id
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
        """Close the connection; safe to call more than once."""
        self._drop()

    # -- internals ---------------------------------------------------------------

    async def _connected(self) -> AsyncModbusTcpClient:
        """The connected client, connecting now when there is none or it was lost.

        Called with `_lock` held.
        """
        client = self._client
        if client is not None and client.connected:
            return client
        self._drop()
        created: list[AsyncModbusTcpClient] = []

        def on_connection_change(connected: bool) -> None:
            if not connected and created:
                _fail_pending_request(created[0], "the charger closed the connection")

        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,  # reconnecting (with backoff) is the poller's job
            name=self._id,
            trace_connect=on_connection_change,
        )
        created.append(client)
        started = time.monotonic()
        try:
            ok = await client.connect()
        except BaseException:
            client.close()
            raise
        if not ok:
            client.close()
            waited = time.monotonic() - started
            reason = (
                f"no connection within {self.timeout:g} s"
                if waited >= self.timeout * 0.9
                else "connection refused or host unreachable"
            )
            raise ChargerUnreachable(f"{self._where}: cannot connect: {reason}")
        self._client = client
        return client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # pymodbus does not report a close it was asked for: a request in flight
            # (close() from another task, such as a shutdown) fails now, not at its timeout
            _fail_pending_request(client, "connection closed by the gateway")
            client.close()

    async def _keep_alive(self, client: AsyncModbusTcpClient) -> None:
        """Rewrite the setpoint / write the heartbeat when the watchdog wants it."""
        if self._limit is None:
            return
        now = time.monotonic()
        if self._keepalive is not None and now - self._limit_at >= self._keepalive:
            await self._write_setpoint(client, self._limit)
        heartbeat = self._heartbeat
        if heartbeat is not None and now - self._heartbeat_at >= heartbeat.interval:
            await self._write(
                client,
                heartbeat.address,
                [heartbeat.value],
                heartbeat.write_function_code,
                f"heartbeat register {heartbeat.address}",
            )
            self._heartbeat_at = now

    async def _write_setpoint(self, client: AsyncModbusTcpClient, amps: float) -> None:
        spec = self.profile.setpoint
        try:
            registers = spec.encode(amps)
        except EncodeError as exc:
            raise ChargerProtocolError(
                f"{self._where}: setpoint register {spec.address}: cannot encode {amps} A: {exc}"
            ) from exc
        try:
            await self._write(
                client,
                spec.address,
                registers,
                spec.write_function_code,
                f"setpoint register {spec.address} ({amps:g} A)",
            )
        except ChargerError:
            self._limit = None  # stop refreshing a limit the charger may not hold
            raise
        self._limit = amps
        self._limit_at = time.monotonic()

    async def _write(
        self, client: AsyncModbusTcpClient, address: int, registers: list[int], fc: int, what: str
    ) -> None:
        try:
            if fc == 6:
                response = await client.write_register(
                    address, registers[0], device_id=self.unit_id
                )
            else:
                response = await client.write_registers(address, registers, device_id=self.unit_id)
            if response.isError():
                raise self._refused(response, what)
        except BaseException as exc:
            self._fail(exc, f"writing {what}")

    def _refused(self, response: Any, what: str) -> ChargerProtocolError:
        code = int(getattr(response, "exception_code", 0))
        name = EXCEPTION_CODES.get(code, "unknown exception")
        return ChargerProtocolError(
            f"{self._where}: {what}: the charger answered exception code {code} ({name})"
        )

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        """Close the socket and raise the ChargerError for a failure while `doing`.

        Cancellation (the poller's own timeout) and errors already translated pass
        through unchanged; so do unexpected exceptions, which are bugs to see as such.
        """
        self._drop()
        error = self._translate(exc, doing) if isinstance(exc, Exception) else None
        if error is None:
            raise exc
        raise error from exc

    def _translate(self, exc: Exception, doing: str) -> ChargerError | None:
        if isinstance(exc, ChargerError):
            return None
        if isinstance(exc, DecodeError):
            return ChargerProtocolError(f"{self._where}: {doing}: {exc}")
        if isinstance(exc, ConnectionException | OSError):
            return ChargerUnreachable(
                f"{self._where}: {doing}: connection lost ({_first_line(exc)})"
            )
        if isinstance(exc, ModbusIOException | TimeoutError):
            return ChargerUnreachable(
                f"{self._where}: {doing}: no answer within {self.timeout:g} s"
            )
        if isinstance(exc, ModbusException):
            return ChargerProtocolError(f"{self._where}: {doing}: {_first_line(exc)}")
        return None


def _fail_pending_request(client: AsyncModbusTcpClient, reason: str) -> None:
    """Fail the request in flight on a connection that is going away.

    pymodbus 3.16 leaves it waiting for its full timeout; failing it at once turns a
    closed socket (charger reboot, idle close) into a prompt "connection lost". Uses the
    transaction manager's `response_future` (pymodbus is pinned to one minor version).
    """
    future = getattr(getattr(client, "ctx", None), "response_future", None)
    if isinstance(future, asyncio.Future) and not future.done():
        future.set_exception(ConnectionException(reason))
        future.exception()  # retrieved: when no request was in flight nobody awaits it


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"
