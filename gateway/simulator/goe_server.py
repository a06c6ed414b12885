"""A simulated go-e Charger: its local HTTP API v2 served by a real asyncio HTTP server.

Written from go-e's public API description (see `gateway.adapters.goe` for the facts),
not from the adapter: `GET /api/status[?filter=k1,k2]` answers a JSON object with those
keys, `GET /api/set?key=<JSON>&...` answers `{key: true}` or `{key: "error text"}`
per key, anything else is HTTP 404. The EV behind it is the same `EvModel` the Modbus
simulators use; the clock is injectable.

Test controls: `plug()` / `unplug()`; `silent` (requests are read, never answered);
`api_enabled = False` (HTTP 404, as with the API switched off in the app); `garbage`
(`nrg` holds absurd values); `error_code` (the `err` key); `sets` (every accepted set as
a dict); `requests` (every request target).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from gateway.simulator.ev_model import MIN_CHARGING_CURRENT, EvModel

WRITABLE = {"amp", "frc"}
FRC_OFF = 1


class SimulatedGoe:
    """One go-e Charger on 127.0.0.1 (a free port unless one is given)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        voltages: tuple[float, float, float] = (230.0, 230.0, 230.0),
        ampere_max: int = 32,
        amp: int = 16,
        energy: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self._port = port
        self.voltages = voltages
        self.ampere_max = ampere_max  # `ama`: the box's own maximum
        self.amp = amp  # `amp`: requested current, A
        self.frc = 0  # `frc`: force state
        self.ev = EvModel(energy=energy)
        self.silent = False
        self.api_enabled = True
        self.garbage = False
        self.error_code = 0
        self.sets: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        return self._port

    async def start(self) -> None:
        """Listen (a free port when 0, kept for a later restart)."""
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self._port)
            self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop open connections; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def plug(self, phases: int = 3, ev_max_current: float = 16.0) -> None:
        """Plug in an EV charging on `phases` phases at up to `ev_max_current` A."""
        self.ev.plug(phases, ev_max_current)

    def unplug(self) -> None:
        """Unplug the EV."""
        self.ev.unplug()

    @property
    def offered(self) -> float:
        """The current the box offers the EV now (A): 0 when forced off."""
        return 0.0 if self.frc == FRC_OFF else float(self.amp)

    # -- the API ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Every key the simulator knows, as the box reports it now."""
        draw = self.ev.update(self._clock(), self.offered, self.voltages)
        if not self.ev.plugged:
            car = 1
        elif draw.charging:
            car = 2
        else:
            car = 3 if self.offered >= MIN_CHARGING_CURRENT else 4
        if self.error_code:
            car = 5
        volts, amps = list(self.voltages), list(draw.currents)
        per_phase = [round(i * v, 1) for i, v in zip(amps, volts, strict=True)]
        if self.garbage:
            volts, amps = [math.inf, -5.0e6, 1.0e9], [1.0e9, 1.0e9, 1.0e9]
        nrg = [*volts, 0.0, *amps, *per_phase, 0.0, round(draw.power, 1), 1.0, 1.0, 1.0, 0.0]
        return {
            "car": car,
            "err": self.error_code,
            "alw": car == 2 or (self.ev.plugged and self.offered >= MIN_CHARGING_CURRENT),
            "amp": self.amp,
            "ama": self.ampere_max,
            "acu": int(self.offered) if car == 2 else None,
            "frc": self.frc,
            "eto": round(draw.energy),
            "wh": round(draw.energy, 1),
            "nrg": nrg,
            "fwv": "056.2",
            "typ": "go-eCharger_V4",
        }

    def _set(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        reply: dict[str, Any] = {}
        accepted: dict[str, Any] = {}
        for key, text in pairs:
            try:
                value = json.loads(text)
            except ValueError:
                reply[key] = "invalid json"
                continue
            if key not in WRITABLE:
                reply[key] = "unknown or read-only key"
            elif key == "amp" and not (
                isinstance(value, int) and not isinstance(value, bool)
                and 6 <= value <= self.ampere_max
            ):  # fmt: skip
                reply[key] = f"value out of range (6-{self.ampere_max})"
            elif key == "frc" and value not in (0, 1, 2):
                reply[key] = "value out of range (0-2)"
            else:
                reply[key] = True
                accepted[key] = value
        if accepted:
            self.ev.update(self._clock(), self.offered, self.voltages)  # energy so far
            self.amp = accepted.get("amp", self.amp)
            self.frc = accepted.get("frc", self.frc)
            self.sets.append(accepted)
        return reply

    def _route(self, target: str) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if not self.api_enabled or parts.path not in ("/api/status", "/api/set"):
            return 404, {"error": "not found"}
        if parts.path == "/api/set":
            return 200, self._set(query)
        status = self.status()
        wanted = dict(query).get("filter")
        if wanted:
            status = {k: status[k] for k in wanted.split(",") if k in status}
        return 200, status

    # -- HTTP ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request = head.decode("latin-1").split("\r\n", 1)[0].split(" ")
            if len(request) != 3 or request[0] != "GET":
                code, body = 400, {"error": "bad request"}
            else:
                self.requests.append(request[1])
                code, body = self._route(request[1])
            if self.silent:
                await asyncio.Event().wait()  # read, never answered
            data = json.dumps(body).encode()
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[code]
            writer.write(
                f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
