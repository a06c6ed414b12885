"""The lifecycle every simulated Modbus server shares: start, stop, `async with`."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self


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
