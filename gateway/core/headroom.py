"""Dynamic headroom: how much current a pool's EVs may take per grid phase, given what
a grid meter at the site's main fuse measures. Pure code.

The meter sees everything behind the fuse: the house, a heat pump, PV export, and the
pool's own EVs. What the EVs may use on grid phase p is

    headroom_p = min(phase_limit, fuse - margin - (meter_p - ev_p))

where `ev_p` is the pool's own measured EV current on that phase, so that the EVs'
present draw is not counted as somebody else's load. The result is clamped to
[0, fuse - margin]: it is never negative, and export on a phase (PV) is never counted
as room above the fuse, because a cloud can take that export away within a second.

Cutting the EVs to the headroom keeps the meter at or under `fuse - margin` on every
phase (unless the other loads alone exceed it, when the EVs get 0).

When the meter's reading is older than its `max_age`, or there is none, the pool falls
back to `fallback_current` per phase for all its EVs together. Unconfigured, that is
the minimum charging current (6 A) of one EV when `fuse - margin` allows it, else 0:
as few EVs as fit keep charging at their minimum while the meter is blind.

Caveat for callers: `ev_p` should be measured as close as possible in time to the meter
reading. An EV current measured after a ramp-up, subtracted from a meter reading taken
before it, underestimates the other loads; pass the smaller of the two when unsure.
`own_current` does so for a cut: a charger's measured current counts at most up to the
limit it was last commanded, so a meter reading that already shows a cut, beside a
charger reading from before it, does not make room that is not there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.core.formulas import PoolMember, is_fresh, to_grid_phases
from gateway.core.model import ChargerSample, Phases
from gateway.meters.model import MeterSample

DEFAULT_MIN_CURRENT = 6.0
"""A: the smallest current an EV charges at (IEC 61851)."""


@dataclass(frozen=True, slots=True)
class GridLimits:
    """A pool's grid connection: the fuse per phase and what to keep clear of it.

    `fuse` and `margin` in A per phase; `max_age` (s) is the meter's; `phase_limit` the
    pool's own static limit per grid phase (None: none); `fallback_current` the per-phase
    current for the pool's EVs together while the meter is stale (None: the default, see
    `fallback`); `min_current` the EVs' minimum charging current.
    """

    fuse: float
    margin: float = 1.0
    max_age: float = 5.0
    phase_limit: float | None = None
    fallback_current: float | None = None
    min_current: float = DEFAULT_MIN_CURRENT

    def __post_init__(self) -> None:
        numbers = (self.fuse, self.margin, self.max_age, self.min_current)
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError(f"grid limits must be finite numbers, got {numbers}")
        if not self.fuse > self.margin >= 0:
            raise ValueError(f"need fuse > margin >= 0, got fuse {self.fuse}, margin {self.margin}")
        for name in ("phase_limit", "fallback_current"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")

    @property
    def usable(self) -> float:
        """A per phase the meter may show at most: `fuse - margin`."""
        return self.fuse - self.margin

    @property
    def ceiling(self) -> float:
        """The most the EVs ever get on a phase: `usable`, or `phase_limit` if lower."""
        if self.phase_limit is None:
            return self.usable
        return min(self.usable, self.phase_limit)

    @property
    def fallback(self) -> float:
        """A per phase for all the pool's EVs together while the meter is stale.

        The configured `fallback_current`, else `min_current` when `usable` allows one EV
        at its minimum, else 0; never above `ceiling`.
        """
        if self.fallback_current is not None:
            wanted = self.fallback_current
        else:
            wanted = self.min_current if self.usable >= self.min_current else 0.0
        return min(wanted, self.ceiling)


@dataclass(frozen=True, slots=True)
class GridHeadroom:
    """The headroom of one pool at one instant.

    `meter` is the meter current per grid phase that was used (None when stale);
    `headroom` what the pool's EVs may take per grid phase; `stale` True when the
    fallback applies; `meter_age` seconds since the reading (None without one).
    """

    fuse: float
    meter: Phases | None
    headroom: Phases
    stale: bool
    meter_age: float | None


def phase_headroom(limits: GridLimits, meter_current: float, ev_current: float) -> float:
    """What the EVs may take on one phase (A), from a fresh meter reading of that phase.

    `ev_current` that is not a finite number, or negative, counts as 0 (the meter's
    whole current is then taken as other load: less room, never more). A non-finite
    `meter_current` gives 0.
    """
    if not math.isfinite(meter_current):
        return 0.0
    own = ev_current if math.isfinite(ev_current) and ev_current > 0 else 0.0
    room = limits.usable - (meter_current - own)
    return min(max(room, 0.0), limits.ceiling)


def grid_headroom(
    limits: GridLimits, meter: MeterSample | None, ev_current: Phases, now: float
) -> GridHeadroom:
    """The pool's headroom per grid phase at monotonic time `now`.

    `meter` is the latest reading (None: none yet); `ev_current` the pool's own measured
    EV current per grid phase. A reading older than `limits.max_age`, or with a
    non-finite current, is stale: every phase gets `limits.fallback`.
    """
    age = None if meter is None else meter.age(now)
    if meter is None or not meter.is_fresh(now, limits.max_age):
        fallback = limits.fallback
        return GridHeadroom(limits.fuse, None, Phases(fallback, fallback, fallback), True, age)
    rooms = (
        phase_headroom(limits, m, e)
        for m, e in zip(meter.current.as_tuple(), ev_current.as_tuple(), strict=True)
    )
    return GridHeadroom(limits.fuse, meter.current, Phases(*rooms), False, age)


def own_current(
    members: Iterable[PoolMember],
    latest: Mapping[str, ChargerSample],
    commanded: Mapping[str, float | None],
    now: float,
    max_data_age: float,
) -> Phases:
    """The pool's own EV current per grid phase, to add back to the meter's.

    Each fresh charger's measured current per terminal, capped at the limit it was last
    commanded (`commanded[id]`; None: unknown, not capped), mapped onto the grid phases
    through its wiring. Chargers without fresh data count 0: their draw stays counted as
    other load (less room, never more).
    """
    grid = [0.0, 0.0, 0.0]
    for member in members:
        sample = latest.get(member.charger_id)
        if sample is None or not is_fresh(sample, now, max_data_age):
            continue
        current = sample.current
        cap = commanded.get(member.charger_id)
        if cap is not None:
            current = Phases(*(min(amps, cap) for amps in current.as_tuple()))
        for index, amps in enumerate(to_grid_phases(current, member.phases).as_tuple()):
            grid[index] += amps
    return Phases(*grid)
