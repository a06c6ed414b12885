"""Plain data types of the electrical world shared by the pure core and the adapters.

Conventions (as in the Frequenz SDK): passive sign convention (positive = consumption),
power in W, current in A, voltage in V, energy in Wh, times in seconds since the Unix
epoch (wall clock) so that samples from any source can be compared with one clock that
the caller passes in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class CableState(StrEnum):
    """Where the charging cable is plugged, as the SDK's EVChargerCableState."""

    UNSPECIFIED = "unspecified"
    UNPLUGGED = "unplugged"
    CHARGING_STATION_PLUGGED = "charging_station_plugged"
    CHARGING_STATION_LOCKED = "charging_station_locked"
    EV_PLUGGED = "ev_plugged"
    EV_LOCKED = "ev_locked"


class ComponentState(StrEnum):
    """What the charger is doing, as the SDK's EVChargerComponentState."""

    UNSPECIFIED = "unspecified"
    STARTING = "starting"
    NOT_READY = "not_ready"
    READY = "ready"
    CHARGING = "charging"
    DISCHARGING = "discharging"
    ERROR = "error"
    AUTHORIZATION_REJECTED = "authorization_rejected"
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown"


EV_CONNECTED_CABLE_STATES = frozenset({CableState.EV_PLUGGED, CableState.EV_LOCKED})
"""Cable states in which an EV is attached to the charger."""

USABLE_COMPONENT_STATES = frozenset(
    {ComponentState.READY, ComponentState.CHARGING, ComponentState.DISCHARGING}
)
"""Component states in which the charger can deliver power."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """A closed interval of power (W); a `None` side is unbounded."""

    lower: float | None
    upper: float | None

    def __contains__(self, value: float) -> bool:
        if self.lower is not None and value < self.lower:
            return False
        return not (self.upper is not None and value > self.upper)


@dataclass(frozen=True, slots=True)
class Phases:
    """One value per phase (L1, L2, L3): the charger's own phases or the grid's."""

    p1: float = 0.0
    p2: float = 0.0
    p3: float = 0.0

    def __iter__(self) -> Iterator[float]:
        """Iterate over the three values, L1 first."""
        yield self.p1
        yield self.p2
        yield self.p3

    def as_tuple(self) -> tuple[float, float, float]:
        """The three values as a tuple."""
        return (self.p1, self.p2, self.p3)


@dataclass(frozen=True, slots=True)
class ChargerSample:
    """One reading of a charger, as an adapter produces it.

    `current` and `voltage` are per the charger's own phases (its L1..L3 terminals);
    mapping to grid phases (`phases` rotation in the config) is the pool formulas' job.
    """

    timestamp: float
    active_power: float
    current: Phases
    voltage: Phases
    energy: float | None
    cable_state: CableState
    component_state: ComponentState
    current_limit: float | None
    inclusion_bounds: Bounds

    @property
    def ev_connected(self) -> bool:
        """True when an EV is plugged in or locked to the charger."""
        return self.cable_state in EV_CONNECTED_CABLE_STATES

    @property
    def usable(self) -> bool:
        """True when the SDK would call this sample WORKING (ignoring its age)."""
        return self.ev_connected and self.component_state in USABLE_COMPONENT_STATES


ACTIVE_PHASE_CURRENT = 0.5
"""A phase carrying more than this (A) counts as in use by the EV."""


def phases_in_use(current: Phases, wired_phases: int) -> int:
    """How many phases the EV draws on: counted from measured currents, else the wiring.

    An EV drawing on one phase is a 1-phase EV even on a 3-phase charger.
    """
    active = sum(1 for value in current if value > ACTIVE_PHASE_CURRENT)
    return min(active, wired_phases) if active else wired_phases


def charger_inclusion_bounds(
    max_current: float, voltage: Phases, nominal_voltage: float, phase_count: int
) -> Bounds:
    """Inclusion bounds of one charger: 0 to max_current x voltage x phases in use.

    Uses the mean of the measured voltages of the phases in use, or the nominal voltage
    when none was measured.
    """
    measured = [v for v in voltage.as_tuple()[:phase_count] if v > 0 and math.isfinite(v)]
    volts = sum(measured) / len(measured) if measured else nominal_voltage
    return Bounds(0.0, max_current * volts * phase_count)


def finite_or_zero(value: float | None) -> float:
    """A value for a sum: None, NaN and infinities count as 0 (the SDK's nones_are_zeros)."""
    if value is None or not math.isfinite(value):
        return 0.0
    return value


@dataclass(frozen=True, slots=True)
class SystemBounds:
    """What a pool can do: inclusion bounds and, inside them, an exclusion zone (W).

    `inclusion` None means unknown (no data); `exclusion` None means no zone.
    """

    inclusion: Bounds | None
    exclusion: Bounds | None
