"""The one small interface every charger adapter implements.

An adapter talks to one charger (Modbus TCP/RTU register map, OCPP 1.6J connection,
or the in-process simulator). Its `ChargerRuntime` (gateway/chargers) calls `read()` on
the charger's own task at its poll interval and `set_current_limit()` when the pool's
distributor decides. Both raise `ChargerError` subclasses on failure; the runtime marks
the charger and retries, so an adapter never needs to retry by itself.

A sample's `timestamp` is on the monotonic clock the adapter was given (the daemon's
`Clock.now`), never the wall clock. Optional abilities are small separate protocols,
as evcc does it: `KeepsAlive` for chargers with a watchdog, `HasDeadlines` for
adapters whose operations take several requests.
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


@runtime_checkable
class KeepsAlive(Protocol):
    """A charger with a watchdog: it falls back unless written to on a schedule."""

    def next_keepalive_due(self) -> float | None:
        """When (adapter clock) the next keepalive write is due; None: nothing to keep."""
        ...

    async def keep_alive(self) -> None:
        """Do the keepalive writes that are due. Raises `ChargerError` on failure."""
        ...


@runtime_checkable
class HasDeadlines(Protocol):
    """An adapter that knows how long its multi-request operations may take in all."""

    @property
    def read_deadline(self) -> float:
        """Seconds a whole `read()` may take."""
        ...

    @property
    def write_deadline(self) -> float:
        """Seconds a `set_current_limit()` or `keep_alive()` may take."""
        ...
