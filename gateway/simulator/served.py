"""The lifecycle every simulated Modbus server shares: start, stop, `async with`; and
serving one device on a TCP port."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimDevice


class Served:
    """A simulator backed by one pymodbus server in `self._server` (None when stopped).

    Subclasses implement `start()`; `stop()` and the async context manager come from here.
    """

    _server: Any = None

    @property
    def running(self) -> bool:
        """True while the server listens."""
        return self._server is not None

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop serving and drop every connection; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class ServedTcp(Served):
    """A simulator on one Modbus TCP port: `host`, `_port` (0 picks a free one) and the
    pymodbus device it serves (`device()`), with request tracing hooks."""

    host: str
    _port: int
    silent: bool  # True: requests are taken in (and recorded), but no answer leaves

    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        return self._port

    def device(self) -> SimDevice:
        raise NotImplementedError

    def record_request(self, pdu: Any) -> None:
        """Note a request the server received (for tests)."""
        raise NotImplementedError

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        return b"" if sending and self.silent else data

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            self.record_request(pdu)
        return pdu

    async def start(self) -> None:
        """Listen on host:port (a free port when 0, kept for a later restart)."""
        if self._server is not None:
            return
        server = ModbusTcpServer(
            self.device(),
            address=(self.host, self._port),
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        await server.serve_forever(background=True)
        self._server = server
        listener: Any = server.transport  # an asyncio.Server once listening
        self._port = int(listener.sockets[0].getsockname()[1])
