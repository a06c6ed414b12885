"""The one small interface every charger adapter implements.

An adapter talks to one charger (Modbus TCP/RTU register map, OCPP 1.6J connection,
or the in-process simulator). The poller calls `read()` on the charger's own task at
its poll interval; the distributor calls `set_current_limit()`. Both raise
`ChargerError` subclasses on failure; the caller marks the charger and retries, so an
adapter never needs to retry by itself.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateway.core.model import ChargerSample


class ChargerError(Exception):
    """A charger could not be read or written. The message says what and why."""


class ChargerUnreachable(ChargerError):
    """No answer: connection refused or lost, or the request timed out."""


class ChargerProtocolError(ChargerError):
    """The charger answered, but with an exception code or values that make no sense."""


@runtime_checkable
class Charger(Protocol):
    """A charger as the gateway sees it: read a sample, set a current limit, close."""

    @property
    def charger_id(self) -> str:
        """The charger's id from the config."""
        ...

    async def read(self) -> ChargerSample:
        """Read one sample now. Raises `ChargerError` on failure."""
        ...

    async def set_current_limit(self, amps: float) -> float:
        """Set the per-phase current limit (A); 0 pauses charging.

        Returns the limit actually written (after rounding down to the charger's step).
        Raises `ChargerError` on failure.
        """
        ...

    async def close(self) -> None:
        """Release the connection. Safe to call more than once."""
        ...
