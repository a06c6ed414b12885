"""Plain types shared by every grid meter adapter and the headroom arithmetic.

Conventions: current in A per **grid** phase (after the meter's `phases` wiring),
import positive (drawn from the grid), export negative; power in W with the same sign;
voltage in V. A sample carries two clocks: `monotonic` (when it was measured, on the
gateway's monotonic clock) is what age decisions use, so a wall-clock step can never
make an old reading look fresh; `timestamp` (Unix seconds) is what payloads show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gateway.core.model import Phases


class MeterError(Exception):
    """A meter could not be read. The message names the meter and the reason."""


class MeterUnreachable(MeterError):
    """No answer: connection refused or lost, a timeout, or no message received yet."""


class MeterProtocolError(MeterError):
    """The meter answered, but with an exception code or values that make no sense."""


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One reading of a grid meter.

    `current` is per grid phase, import positive. `power` and `voltage` are per grid
    phase too, None where the meter (or its profile) does not provide them.
    """

    monotonic: float  # when measured, on the monotonic clock (s)
    timestamp: float  # when measured, Unix seconds (for payloads)
    current: Phases
    power: Phases | None = None
    voltage: Phases | None = None

    def age(self, now: float) -> float:
        """Seconds since the reading at monotonic time `now` (never negative)."""
        return max(0.0, now - self.monotonic)

    def is_fresh(self, now: float, max_age: float) -> bool:
        """True when at most `max_age` seconds old and every current is a finite number."""
        return self.age(now) <= max_age and all(math.isfinite(a) for a in self.current)


@runtime_checkable
class Meter(Protocol):
    """A grid meter as the gateway sees it: read a sample, close."""

    @property
    def meter_id(self) -> str:
        """The meter's id from the config."""
        ...

    async def read(self) -> MeterSample:
        """The latest reading. Raises `MeterError` when there is none to give."""
        ...

    async def close(self) -> None:
        """Release the connection. Safe to call more than once."""
        ...


def to_grid(values: Phases, phases: tuple[int, ...]) -> Phases:
    """A meter's values per its own terminals L1..L3, placed on the grid phases.

    `phases[i]` is the grid phase wired to the meter's terminal L(i+1) (a permutation of
    1, 2, 3). Unlike the chargers' mapping, non-finite values are kept as they are, so
    a broken reading is never silently taken for 0 A.
    """
    grid = [math.nan, math.nan, math.nan]
    for terminal, grid_phase in enumerate(phases):
        grid[grid_phase - 1] = values.as_tuple()[terminal]
    return Phases(*grid)
