"""Interval arithmetic with an exclusion zone: the building blocks of the power manager.

A pool can deliver any power inside its inclusion bounds except the powers strictly
inside its exclusion zone (for EVs: between 0 W and the smallest power at which a
plugged EV can charge). These helpers implement the Frequenz SDK's rules for such a
zone (docs/design.md, "Power manager"):

- the zone is an *open* interval: its edges themselves are deliverable;
- 0 W is always deliverable, even when it lies strictly inside the zone;
- a value strictly inside the zone is offered both edges, and the caller picks the
  nearer one, ties going to the lower edge.

Intervals are plain `(lower, upper)` float pairs here, with an open side written as
`-inf` / `+inf`, so that the algorithms need no `None` checks; `as_interval` and
`as_bounds` convert from and to the public `Bounds` type.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from gateway.core.model import Bounds

Interval = tuple[float, float]
"""A closed interval `(lower, upper)` in W; `-inf` / `+inf` mean unbounded."""

Options = tuple[float | None, float | None]
"""The (low, high) candidates `clamp_to_bounds` offers; `None` where there is none."""

UNBOUNDED: Interval = (-math.inf, math.inf)


class Zone(NamedTuple):
    """An exclusion zone: the powers strictly between `lower` and `upper` are impossible."""

    lower: float
    upper: float

    def holds(self, value: float) -> bool:
        """True when `value` lies strictly inside the zone (the edges do not count)."""
        return self.lower < value < self.upper


def exclusion_zone(exclusion: Bounds | None) -> Zone | None:
    """The zone that an exclusion `Bounds` describes, or None when it excludes nothing.

    `None`, exactly [0, 0] (the SDK's "no zone"), and any interval with no inside
    (lower >= upper) exclude nothing. A side that is `None`, NaN or infinite is treated
    as "no zone" too: exclusion bounds are measured data, and a zone that cannot be
    stated must not silently forbid half of the power range.
    """
    if exclusion is None or exclusion.lower is None or exclusion.upper is None:
        return None
    lower, upper = exclusion.lower, exclusion.upper
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower >= upper:
        return None
    return Zone(lower, upper)


def as_interval(bounds: Bounds, fill: Interval = UNBOUNDED) -> Interval:
    """`bounds` as an interval, each `None` side taken from `fill`."""
    lower = fill[0] if bounds.lower is None else bounds.lower
    upper = fill[1] if bounds.upper is None else bounds.upper
    return (lower, upper)


def as_bounds(interval: Interval) -> Bounds:
    """`interval` as `Bounds`, an infinite side becoming `None` (unbounded)."""
    lower, upper = interval
    return Bounds(
        None if math.isinf(lower) else lower,
        None if math.isinf(upper) else upper,
    )


def is_empty(interval: Interval) -> bool:
    """True when no value lies in the interval (lower above upper)."""
    return interval[0] > interval[1]


def intersect(first: Interval, second: Interval) -> Interval:
    """The intersection of two intervals; it may be empty (see `is_empty`)."""
    return (max(first[0], second[0]), min(first[1], second[1]))


def overlap(interval: Interval, zone: Zone | None) -> tuple[bool, bool]:
    """Whether the lower and the upper end of `interval` lie strictly inside `zone`."""
    if zone is None:
        return (False, False)
    return (zone.holds(interval[0]), zone.holds(interval[1]))


def inside_zone(interval: Interval, zone: Zone | None) -> bool:
    """True when both ends of `interval` lie strictly inside `zone`."""
    lower_in, upper_in = overlap(interval, zone)
    return lower_in and upper_in


def adjust_exclusion_bounds(interval: Interval, zone: Zone | None) -> Interval:
    """Move the ends of `interval` out of `zone`, so that they are deliverable.

    An end strictly inside the zone moves to the zone's edge on the interval's side:
    a lower end up to the zone's upper edge, an upper end down to its lower edge. When
    both ends are inside, nothing but 0 W can be delivered, and the result is [0, 0].
    """
    lower_in, upper_in = overlap(interval, zone)
    if zone is None or not (lower_in or upper_in):
        return interval
    if lower_in and upper_in:
        return (0.0, 0.0)
    if lower_in:
        return (zone.upper, interval[1])
    return (interval[0], zone.lower)


def clamp_to_bounds(value: float, interval: Interval, zone: Zone | None) -> Options:
    """The deliverable powers nearest to `value`, as (low option, high option).

    - Both ends of `interval` inside the zone: nothing can be offered, (None, None).
    - Only the lower end inside and `value` below the zone's upper edge: (None, edge).
    - Only the upper end inside and `value` above the zone's lower edge: (edge, None).
    - `value` below / above the interval: its nearer end, as the low / high option.
    - `value` strictly inside the zone and not 0: both zone edges, for the caller to
      choose (see `nearest`).
    - Otherwise `value` itself is deliverable: (value, value). 0 W always is.
    """
    lower_in, upper_in = overlap(interval, zone)
    if zone is not None:
        if lower_in and upper_in:
            return (None, None)
        if lower_in and value < zone.upper:
            return (None, zone.upper)
        if upper_in and value > zone.lower:
            return (zone.lower, None)
    if value < interval[0]:
        return (interval[0], None)
    if value > interval[1]:
        return (None, interval[1])
    if zone is not None and value != 0.0 and zone.holds(value):
        return (zone.lower, zone.upper)
    return (value, value)


def nearest(value: float, options: Options) -> float | None:
    """The option nearer to `value`; on an exact tie the low one (the SDK's choice)."""
    low, high = options
    if low is None or high is None:
        return high if low is None else low
    return low if abs(value - low) <= abs(high - value) else high
