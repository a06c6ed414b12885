"""How the Modbus adapter reaches a charger: one pymodbus client and the rules around it.

`ModbusCharger` (tcp.py) holds the register-map logic and calls a `Transport` for the
connection: TCP (one connection per charger) or RTU (one serial line shared by every
unit on an RS-485 bus, see rtu.py). A transport:
- connects lazily, and again after the connection was dropped;
- serialises requests with `lock` (the caller holds it for a whole operation, so one
  charger's read plan is never interleaved with another unit's requests on a bus);
- waits `delay` seconds between the end of one request and the next (RS-485 gateways
  and some chargers need a pause; 0 on TCP);
- turns pymodbus' client into `read` / `write` calls that return the raw response.

Errors are left to the adapter, which names charger, registers and reason.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import pymodbus
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException

from gateway.adapters.base import ChargerUnreachable


class Transport(ABC):
    """A Modbus connection shared by the adapters that use it (one on TCP)."""

    def __init__(self, label: str, timeout: float, delay: float = 0.0) -> None:
        if not timeout > 0 or delay < 0:
            raise ValueError(f"{label}: need timeout > 0 and delay >= 0")
        self.label = label  # "host:port" or the serial port, for messages
        self.timeout = timeout
        self.delay = delay
        self.lock = asyncio.Lock()
        self.max_in_flight = 0  # most requests ever outstanding at once (1 when serialised)
        self._in_flight = 0
        self._client: ModbusBaseClient | None = None
        self._last_done = -float("inf")

    @abstractmethod
    def _new_client(self, on_connection_change: Callable[[bool], None]) -> ModbusBaseClient:
        """A new, unconnected pymodbus client (timeout set, retries and reconnect off)."""

    @property
    def sharers(self) -> int:
        """How many adapters take turns on this connection (1 on TCP)."""
        return 1

    @property
    def connected(self) -> bool:
        """True while the client is connected."""
        return self._client is not None and self._client.connected

    async def connect(self, where: str) -> None:
        """Connect now when there is no connection or it was lost. Call with `lock` held.

        Raises `ChargerUnreachable` (prefixed with `where`) when it cannot connect.
        """
        if self._client is not None and self._client.connected:
            return
        self.drop()
        created: list[ModbusBaseClient] = []

        def on_connection_change(connected: bool) -> None:
            if not connected and created:
                fail_pending_request(created[0], "the connection was closed by the peer")

        client = self._new_client(on_connection_change)
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
                else self._refused_reason()
            )
            raise ChargerUnreachable(f"{where}: cannot connect: {reason}")
        self._client = client

    def _refused_reason(self) -> str:
        return "connection refused or host unreachable"

    def drop(self) -> None:
        """Close the connection (the next request reconnects); safe at any time.

        A request in flight (a close from another task, such as a shutdown) fails now
        instead of at its timeout.
        """
        client, self._client = self._client, None
        if client is not None:
            fail_pending_request(client, "connection closed by the gateway")
            client.close()

    async def release(self, user: object) -> None:
        """`user` (an adapter) is closed and no longer uses the transport; idempotent."""
        self.drop()

    async def read(self, function_code: int, address: int, count: int, unit: int) -> Any:
        """FC3 or FC4 read; the raw pymodbus response. Call with `lock` held."""
        client = await self._paced()
        try:
            if function_code == 3:
                return await client.read_holding_registers(address, count=count, device_id=unit)
            return await client.read_input_registers(address, count=count, device_id=unit)
        finally:
            self._done()

    async def write(self, function_code: int, address: int, registers: list[int], unit: int) -> Any:
        """FC6 (one register) or FC16 write; the raw response. Call with `lock` held."""
        client = await self._paced()
        try:
            if function_code == 6:
                return await client.write_register(address, registers[0], device_id=unit)
            return await client.write_registers(address, registers, device_id=unit)
        finally:
            self._done()

    async def _paced(self) -> ModbusBaseClient:
        client = self._client
        if client is None:
            raise ConnectionException("not connected")
        if self.delay > 0:
            wait = self._last_done + self.delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return client

    def _done(self) -> None:
        self._in_flight -= 1
        self._last_done = time.monotonic()


class TcpTransport(Transport):
    """One Modbus TCP connection, used by one adapter."""

    def __init__(self, host: str, port: int, timeout: float, name: str = "comm") -> None:
        super().__init__(f"{host}:{port}", timeout)
        self.host = host
        self.port = port
        self._name = name

    def _new_client(self, on_connection_change: Callable[[bool], None]) -> ModbusBaseClient:
        return AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,  # reconnecting (with backoff) is the poller's job
            name=self._name,
            trace_connect=on_connection_change,
        )


PRIVATE_API_VERSION = "3.16."
"""The pymodbus minor version whose private `ctx.response_future` this module uses;
tests/test_modbus_adapter.py fails when an upgrade moves it."""


def pending_response(client: ModbusBaseClient) -> object:
    """The future of the request in flight: the one place that reads pymodbus' private
    transaction manager (`client.ctx.response_future`); None on another version."""
    if not pymodbus.__version__.startswith(PRIVATE_API_VERSION):
        return None
    return getattr(getattr(client, "ctx", None), "response_future", None)


def fail_pending_request(client: ModbusBaseClient, reason: str) -> None:
    """Fail the request in flight on a connection that is going away.

    pymodbus 3.16 leaves it waiting for its full timeout; failing it at once turns a
    closed connection (charger reboot, idle close, USB adapter pulled) into a prompt
    "connection lost". On another pymodbus version nothing is done (the request then
    fails at its timeout).
    """
    future = pending_response(client)
    if isinstance(future, asyncio.Future) and not future.done():
        future.set_exception(ConnectionException(reason))
        future.exception()  # retrieved: when no request was in flight nobody awaits it
