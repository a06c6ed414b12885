"""go-e Charger (V3/V4, HOME+, Gemini, CORE) over its local HTTP API v2.

Facts from go-e's public API description (goecharger/go-eCharger-API-v2: `http-en.md`,
`apikeys-en.md`):
- Enable "HTTP API v2" in the go-e app. Read with `GET /api/status?filter=<keys>`
  (comma list, firmware 051.4 and later; the unfiltered status is heavy). Write with
  `GET /api/set?<key>=<JSON value>&...`; the reply maps each key to `true` or an error
  string.
- `car`: 0 unknown/error, 1 idle (no car), 2 charging, 3 waiting for the car, 4 charge
  complete, 5 error. `err`: error code, 0 none. `amp`: requested current (A, whole
  amperes, R/W); `ama`: the box's own maximum for `amp`. `frc`: force state 0 neutral,
  1 off, 2 on. `eto`: total energy (Wh). `nrg`: 16 numbers: voltage L1, L2, L3, N (V);
  current L1, L2, L3 (A); power L1, L2, L3, N, total (W); power factor L1, L2, L3, N.
- There is no watchdog: a value set stays until changed. Whether `amp` set over HTTP
  is kept across a restart is not documented (Modbus has a volatile and an EEPROM
  register), so the adapter writes only when the value changes, and again whenever a
  read shows the box holding another value than the gateway set.

Control: a limit of 6 A or more writes `amp` and `frc=0` (neutral: the box's own access
control still applies; the gateway never forces charging on); below 6 A writes `frc=1`
(off). A box left at `frc=1` charges again once the gateway sets a limit.

One HTTP request per call over a fresh TCP connection (`Connection: close`), bounded by
the timeout; errors name the charger and the reason.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from gateway.adapters.base import ChargerProtocolError, ChargerUnreachable
from gateway.adapters.setpoint import quantize_current
from gateway.core.model import (
    CableState,
    ChargerSample,
    ComponentState,
    Phases,
    charger_inclusion_bounds,
    phases_in_use,
)

STATUS_KEYS = ("car", "err", "amp", "ama", "frc", "eto", "nrg")
"""The keys one poll asks for."""

CAR_STATES: dict[int, tuple[CableState, ComponentState]] = {
    1: (CableState.UNPLUGGED, ComponentState.READY),
    2: (CableState.EV_PLUGGED, ComponentState.CHARGING),
    3: (CableState.EV_PLUGGED, ComponentState.READY),
    4: (CableState.EV_PLUGGED, ComponentState.READY),
    5: (CableState.UNSPECIFIED, ComponentState.ERROR),
}
"""`car` codes; 0 (unknown / internal error) and null are errors too."""

GOE_PORT = 80
FORCE_NEUTRAL = 0
FORCE_OFF = 1
MIN_CURRENT = 6.0
CURRENT_STEP = 1.0  # `amp` is whole amperes
MAX_RESPONSE = 64 * 1024  # bytes; a filtered status is well under 2 kB


class GoeCharger:
    """One go-e Charger reached over HTTP; implements `gateway.adapters.base.Charger`."""

    def __init__(
        self,
        charger_id: str,
        host: str,
        port: int = GOE_PORT,
        *,
        max_current: float,
        wired_phases: int,
        nominal_voltage: float = 230.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Set up the adapter; nothing is sent until the first call. `timeout` (s) bounds
        each request, connect included; `clock` (monotonic s) stamps the samples."""
        if not max_current > 0 or wired_phases not in (1, 2, 3) or not timeout > 0:
            raise ValueError(
                f"charger {charger_id}: need max_current > 0, 1-3 wired phases, timeout > 0"
            )
        self._id = charger_id
        self.host = host
        self.port = port
        self.max_current = max_current
        self.wired_phases = wired_phases
        self.nominal_voltage = nominal_voltage
        self.timeout = timeout
        self._clock = clock
        self._where = f"charger {charger_id} (go-e {host}:{port})"
        # (amp, frc) the box last confirmed from us; None before, or after a failed write
        self._written: tuple[int, int] | None = None
        self._box_max: float | None = None  # `ama` as last read: the box refuses more
        self._lock = asyncio.Lock()

    @property
    def charger_id(self) -> str:
        """The charger's id from the config."""
        return self._id

    def __repr__(self) -> str:
        return f"GoeCharger({self._id!r}, {self.host}:{self.port})"

    @property
    def read_deadline(self) -> float:
        """Seconds a whole `read()` may take: the status and a restoring write."""
        return 2 * self.timeout

    @property
    def write_deadline(self) -> float:
        """Seconds a `set_current_limit` may take, a read holding the box included."""
        return 3 * self.timeout

    async def read(self) -> ChargerSample:
        """One status request, decoded; raises `ChargerError` on failure.

        When the box shows another `amp` / `frc` than the gateway set (a restart that
        restored a saved value, the app, the button), the gateway's limit is written
        again at once: the box has no watchdog, so nothing else would correct it."""
        async with self._lock:
            status = await self._get("/api/status?filter=" + ",".join(STATUS_KEYS))
            sample = self._sample(status)
            written = self._written
            if written is not None and self._differs(written, status):
                await self._write(written)
        return sample

    async def set_current_limit(self, amps: float) -> float:
        """Set the limit (whole amperes; below 6 A pauses with `frc=1`); returns it.

        Capped at the box's own maximum (`ama`) once a read has seen it."""
        cap = self.max_current if self._box_max is None else min(self.max_current, self._box_max)
        value = quantize_current(amps, cap, MIN_CURRENT, CURRENT_STEP)
        wanted = (int(value), FORCE_NEUTRAL) if value else (0, FORCE_OFF)
        async with self._lock:
            if wanted != self._written:
                await self._write(wanted)
        return value

    async def _write(self, wanted: tuple[int, int]) -> None:
        self._written = None  # unknown until the box confirms
        amp, force = wanted
        await self._set({"frc": force} if force == FORCE_OFF else {"amp": amp, "frc": force})
        self._written = wanted

    async def close(self) -> None:
        """Nothing is held open between requests; forgets what was written."""
        self._written = None

    # -- decoding ----------------------------------------------------------------------

    def _sample(self, status: Mapping[str, Any]) -> ChargerSample:
        car = status.get("car")
        state = CAR_STATES.get(car) if isinstance(car, int) else None
        if state is None:
            state = (CableState.UNSPECIFIED, ComponentState.ERROR)
        err = status.get("err")
        if isinstance(err, int) and err != 0:
            state = (state[0], ComponentState.ERROR)
        nrg = status.get("nrg")
        if not isinstance(nrg, list) or len(nrg) < 12:
            raise self._bad(f"nrg is not the 16-number energy array: {nrg!r:.80}")
        voltage = Phases(*(self._number("nrg", nrg[i], 0.0, 1000.0) for i in range(3)))
        current = Phases(*(self._number("nrg", nrg[i], -1.0, 1000.0) for i in range(4, 7)))
        power = self._number("nrg", nrg[11], -1.0e6, 1.0e6)
        energy = status.get("eto")
        amp = self._number("amp", status.get("amp"), 0.0, 255.0)
        if "ama" in status:
            self._box_max = self._number("ama", status["ama"], 0.0, 255.0)
        forced_off = status.get("frc") == FORCE_OFF
        return ChargerSample(
            timestamp=self._clock(),
            active_power=power,
            current=current,
            voltage=voltage,
            energy=None if energy is None else self._number("eto", energy, 0.0, 1.0e13),
            cable_state=state[0],
            component_state=state[1],
            current_limit=0.0 if forced_off else amp,
            inclusion_bounds=charger_inclusion_bounds(
                self.max_current, voltage, self.nominal_voltage,
                phases_in_use(current, self.wired_phases),
            ),
        )  # fmt: skip

    @staticmethod
    def _differs(written: tuple[int, int], status: Mapping[str, Any]) -> bool:
        """True when the box no longer holds what the gateway wrote."""
        amp, force = written
        return status.get("frc") != force or (force == FORCE_NEUTRAL and status.get("amp") != amp)

    def _number(self, key: str, value: object, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(f"{key} is not a number: {value!r:.40}")
        number = float(value)
        if not (math.isfinite(number) and low <= number <= high):
            raise self._bad(
                f"{key} value {number:g} is outside the plausible range [{low:g}, {high:g}]"
            )
        return number

    def _bad(self, what: str) -> ChargerProtocolError:
        return ChargerProtocolError(f"{self._where}: {what}")

    # -- HTTP --------------------------------------------------------------------------

    async def _set(self, values: Mapping[str, int]) -> None:
        query = "&".join(f"{key}={quote(json.dumps(value))}" for key, value in values.items())
        reply = await self._get(f"/api/set?{query}")
        refused = {key: reply.get(key) for key in values if reply.get(key) is not True}
        if refused:
            detail = ", ".join(
                f"{key}={values[key]}: {reason!r}" for key, reason in refused.items()
            )
            raise self._bad(f"the charger refused {detail}")

    async def _get(self, target: str) -> dict[str, Any]:
        """GET `target`; the JSON object it answers. Raises `ChargerError`."""
        try:
            async with asyncio.timeout(self.timeout):
                status, body = await self._exchange(target)
        except TimeoutError:
            raise ChargerUnreachable(
                f"{self._where}: GET {target}: no answer within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise ChargerUnreachable(
                f"{self._where}: GET {target}: cannot connect: {exc.strerror or exc}"
            ) from None
        if status == 404:
            raise self._bad(f"GET {target}: HTTP 404: is the HTTP API v2 enabled in the app?")
        if status != 200:
            raise self._bad(f"GET {target}: HTTP {status}")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise self._bad(f"GET {target}: the answer is not JSON: {body[:60]!r}") from None
        if not isinstance(data, dict):
            raise self._bad(f"GET {target}: the answer is not a JSON object")
        return data

    async def _exchange(self, target: str) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            request = (
                f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n"
                "Accept: application/json\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode("ascii"))
            await writer.drain()
            return await self._read_response(reader)
        finally:
            writer.close()

    async def _read_response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        """Status code and body of one HTTP/1.1 response (Content-Length, else until close)."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            raise ChargerUnreachable(
                f"{self._where}: the connection closed before an answer"
            ) from None
        except asyncio.LimitOverrunError:
            raise self._bad("the HTTP header is too large") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise self._bad(f"not an HTTP response: {lines[0][:60]!r}")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is not None and length > MAX_RESPONSE:
            raise self._bad(f"a response of {length} bytes is too large")
        try:
            body = await (
                reader.readexactly(length) if length is not None else reader.read(MAX_RESPONSE)
            )
        except asyncio.IncompleteReadError:
            raise ChargerUnreachable(f"{self._where}: the connection closed mid-answer") from None
        return int(parts[1]), body
