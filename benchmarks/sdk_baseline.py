"""An SDK-like EV distributor, for the benchmark only: the behaviour we compare against.

Written from a black-box description of the Frequenz SDK's `EVChargerManager`
(its behaviour on synthetic states), not from its code:

- power for a current I is I x V x 3 (a 3-phase assumption), V being the minimum of
  the measured phase voltages across the site;
- a charger's first message registers it at 0 W; nothing else happens for it for
  60 s (`increase_interval`);
- a newly connected EV (and, a known bug, any charger at 0 W after 60 s, plugged
  in or not) is allocated 10 A worth of power if more than that is available, else
  6 A worth if more than that is available, else nothing - others are not throttled;
- an unplugged or errored charger with an allocation is set to 0 (nothing is
  redistributed);
- every 60 s per charger, an allocation rises in one step to the charger's upper
  bound, capped by what is available (target - sum of allocations), in data order;
- a new target below the measured power throttles the biggest consumers (to 6 A
  worth, or to 0); below the allocations, deallocates the largest unused ones;
- there is no phase limit: the fuse is not known at all.

The output is a current limit per charger (A per phase) = allocated W / (3 x V), the
inverse of the SDK's own conversion. Our simulated charger clamps it to its maximum.
Requests are re-sent every `request_interval` seconds even when the target does not
change, as an energy manager keeping its proposal alive would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.distribution import ChargerState

_ZERO = 1e-9


@dataclass(slots=True)
class _Charger:
    connected: bool
    measured: float
    allocation: float = 0.0
    last_change: float = 0.0


class SdkLikeDistributor:
    """Event-driven, power-based, first-come-first-served: the SDK's EV distribution."""

    def __init__(
        self,
        min_current: float = 6.0,
        initial_current: float = 10.0,
        increase_interval: float = 60.0,
        request_interval: float = 30.0,
        nominal_voltage: float = 230.0,
    ) -> None:
        self.min_current = min_current
        self.initial_current = initial_current
        self.increase_interval = increase_interval
        self.request_interval = request_interval
        self.voltage = nominal_voltage
        self.target = 0.0
        self.chargers: dict[str, _Charger] = {}
        self._last_request: float | None = None

    # --- the SDK's quantities -------------------------------------------------
    def power(self, amps: float) -> float:
        """Power for a current: always three phases at the site's minimum voltage."""
        return amps * self.voltage * 3

    @property
    def allocated(self) -> float:
        """Sum of the allocations (W)."""
        return sum(c.allocation for c in self.chargers.values())

    @property
    def available(self) -> float:
        """Target minus allocations (W)."""
        return self.target - self.allocated

    # --- the benchmark's interface ---------------------------------------------
    def distribute(
        self,
        target_power: float,
        chargers: Sequence[ChargerState],
        phase_limit: float | None,
        now: float,
    ) -> dict[str, float]:
        """One simulation step: a request when due, then one data message per charger.

        `phase_limit` is ignored, as by the SDK. Returns A per phase per charger.
        """
        del phase_limit
        volts = [
            v
            for c in chargers
            if c.fresh and c.sample is not None
            for v in c.sample.voltage.as_tuple()
            if math.isfinite(v) and v > 0
        ]
        if volts:
            self.voltage = min(volts)
        due = self._last_request is None or now - self._last_request >= self.request_interval
        if target_power != self.target or due:
            self.on_request(target_power, now)
        for state in chargers:
            if state.fresh and state.sample is not None:
                upper = self.power(state.max_current)
                self.on_data(
                    state.charger_id, state.sample.usable, state.sample.active_power, upper, now
                )
        return {
            cid: charger.allocation / (3 * self.voltage) for cid, charger in self.chargers.items()
        }

    # --- events ------------------------------------------------------------------
    def on_data(
        self, charger_id: str, connected: bool, measured: float, upper: float, now: float
    ) -> None:
        """A data message: decide with the previous message's state, then store this one."""
        charger = self.chargers.get(charger_id)
        if charger is None:
            self.chargers[charger_id] = _Charger(connected, measured, 0.0, now)
            return
        if connected and not charger.connected:
            self._set(charger, self._new_ev_allocation(), now)
        elif not connected and charger.allocation > 0:
            self._set(charger, 0.0, now)
        elif now - charger.last_change < self.increase_interval:
            pass
        elif abs(charger.allocation) <= _ZERO:
            # The SDK also does this for an unplugged charger (its "unplugged idle" bug).
            self._set(charger, self._new_ev_allocation(), now)
        else:
            extra = min(upper - charger.allocation, self.available)
            if extra > _ZERO:
                self._set(charger, min(charger.allocation + extra, upper), now)
        charger.connected = connected
        charger.measured = measured

    def on_request(self, target: float, now: float) -> None:
        """A new target: throttle below the measured power, deallocate below allocations."""
        self.target = target
        self._last_request = now
        used = sum(c.measured for c in self.chargers.values())
        if target < used:
            self._throttle(used - target, now)
        elif target < self.allocated:
            self._deallocate(self.allocated - target, now)

    # --- helpers -----------------------------------------------------------------
    def _set(self, charger: _Charger, allocation: float, now: float) -> None:
        if allocation != charger.allocation:
            charger.allocation = allocation
            charger.last_change = now

    def _new_ev_allocation(self) -> float:
        available = self.available
        if available > self.power(self.initial_current):
            return self.power(self.initial_current)
        if available > self.power(self.min_current):
            return self.power(self.min_current)
        return 0.0

    def _throttle(self, excess: float, now: float) -> None:
        min_power = self.power(self.min_current)
        ordered = sorted(
            self.chargers.values(), key=lambda c: (c.measured, c.allocation), reverse=True
        )
        level1 = 0.0
        visited: list[_Charger] = []
        for charger in ordered:
            if charger.measured <= _ZERO and charger.allocation <= _ZERO:
                break
            visited.append(charger)
            if charger.measured > min_power:
                level1 += charger.measured - min_power
            if level1 >= excess:
                break
        if level1 >= excess:
            for charger in visited:
                self._set(charger, min_power, now)
            return
        level2 = 0.0
        for charger in visited:
            if level2 >= excess:
                break
            level2 += charger.measured if charger.measured > _ZERO else charger.allocation
            self._set(charger, 0.0, now)

    def _deallocate(self, excess: float, now: float) -> None:
        min_power = self.power(self.min_current)
        released = 0.0
        ordered = sorted(
            self.chargers.values(), key=lambda c: c.allocation - c.measured, reverse=True
        )
        for charger in ordered:
            if released >= excess:
                break
            unused = charger.allocation - charger.measured
            if unused <= 0:
                continue
            cut = min(unused, excess - released)
            remaining = charger.allocation - cut
            if remaining < min_power:
                released += charger.allocation
                self._set(charger, 0.0, now)
            else:
                released += cut
                self._set(charger, remaining, now)
