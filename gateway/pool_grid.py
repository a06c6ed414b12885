"""A pool's grid meter at the main fuse, as its controller uses it.

`PoolGrid` turns the meter's latest reading and the pool's chargers into the headroom
per grid phase (`gateway.core.headroom`), says when the meter is stale, and words the
note a distribution result carries while the pool falls back for want of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.chargers import ChargerRuntime
from gateway.core.formulas import PoolMember
from gateway.core.headroom import GridHeadroom, GridLimits, grid_headroom, own_current
from gateway.meters.runtime import MeterRuntime


class PoolGrid:
    """One pool's fuse limits and the meter that measures them."""

    def __init__(
        self,
        limits: GridLimits,
        meter: MeterRuntime,
        members: Sequence[PoolMember],
        max_data_age: float,
    ) -> None:
        self.limits = limits
        self.meter = meter
        self._members = tuple(members)
        self._max_data_age = max_data_age

    def headroom(self, chargers: Sequence[ChargerRuntime], now: float) -> GridHeadroom:
        """What the pool's EVs may take per grid phase. Their own fresh current, each
        charger's at most what it was commanded, is added back to the meter's (see
        `own_current`)."""
        latest = {c.id: c.latest for c in chargers if c.latest is not None}
        commanded = {c.id: c.commanded for c in chargers}
        own = own_current(self._members, latest, commanded, now, self._max_data_age)
        return grid_headroom(self.limits, self.meter.latest, own, now)

    def stale(self, now: float) -> bool:
        """True while the pool falls back for want of the meter's data (the test
        `grid_headroom` applies, without summing the pool's currents)."""
        reading = self.meter.latest
        return reading is None or not reading.is_fresh(now, self.limits.max_age)

    def fallback_note(self, headroom: GridHeadroom) -> str:
        """What a distribution result adds while the fallback applies ('' otherwise)."""
        if not headroom.stale:
            return ""
        return (
            f"; grid meter {self.meter.id} stale: fallback "
            f"{headroom.headroom.p1:g} A per phase for the pool"
        )
