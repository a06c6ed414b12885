"""System power bounds: summed over working chargers, with a truthful exclusion zone."""

from __future__ import annotations

import math

from gateway.core.model import Bounds
from gateway.core.system_bounds import NO_POWER, minimum_charging_power, system_bounds
from tests.factories import sample


def test_inclusion_is_the_sum_and_exclusion_the_smallest_ev_minimum() -> None:
    three_phase = sample(upper=11040.0)  # no draw yet: all 3 wired phases count
    single = sample(current=(10.0, 0.0, 0.0), upper=3680.0)  # draws on one phase
    bounds = system_bounds([(three_phase, 3), (single, 3)], 6.0, 230.0)
    assert bounds.inclusion == Bounds(0.0, 14720.0)
    # 6 A x 230 V on the single-phase EV's one phase
    assert bounds.exclusion == Bounds(0.0, 1380.0)


def test_no_working_charger_means_zero_not_the_last_value() -> None:
    assert system_bounds([], 6.0, 230.0) == NO_POWER
    assert NO_POWER.inclusion == Bounds(0.0, 0.0) and NO_POWER.exclusion is None


def test_minimum_power_uses_measured_voltage_or_nominal() -> None:
    low = sample(voltage=(220.0, 220.0, 220.0))
    assert math.isclose(minimum_charging_power(low, 6.0, 3, 230.0), 6 * 220 * 3)
    unknown = sample(voltage=(0.0, 0.0, 0.0))
    assert math.isclose(minimum_charging_power(unknown, 6.0, 1, 230.0), 6 * 230)
