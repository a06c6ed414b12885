"""A pool's system power bounds, telling the truth about what EVs can take.

Pure code. Inclusion bounds are summed over the pool's working chargers (each 0 to
max_current x voltage x phases in use). The exclusion zone is (0, P_min), where P_min
is the smallest power at which any plugged EV can charge (min_current x voltage x its
phases): between 0 and P_min nothing can be delivered. When no charger is working the
bounds are [0, 0] with no zone, never the last value seen (the SDK keeps stale bounds).
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.model import Bounds, ChargerSample, SystemBounds, finite_or_zero, phases_in_use

NO_POWER = SystemBounds(inclusion=Bounds(0.0, 0.0), exclusion=None)


def minimum_charging_power(
    sample: ChargerSample, min_current: float, wired_phases: int, nominal_voltage: float
) -> float:
    """The smallest non-zero power this EV can charge at: min_current on its phases."""
    count = phases_in_use(sample.current, wired_phases)
    volts = [v for v in sample.voltage.as_tuple()[:count] if finite_or_zero(v) > 0]
    voltage = sum(volts) / len(volts) if volts else nominal_voltage
    return min_current * voltage * count


def system_bounds(
    working: Iterable[tuple[ChargerSample, int]],
    min_current: float,
    nominal_voltage: float,
) -> SystemBounds:
    """Bounds of a pool from its working chargers' samples and wired phase counts."""
    lower = upper = 0.0
    smallest: float | None = None
    for sample, wired_phases in working:
        lower += finite_or_zero(sample.inclusion_bounds.lower)
        upper += finite_or_zero(sample.inclusion_bounds.upper)
        p_min = minimum_charging_power(sample, min_current, wired_phases, nominal_voltage)
        smallest = p_min if smallest is None else min(smallest, p_min)
    if smallest is None or upper <= 0:
        return NO_POWER
    return SystemBounds(
        inclusion=Bounds(lower, upper),
        exclusion=Bounds(0.0, min(smallest, upper)),
    )
