"""PowerManager and its exclusion-zone helpers: identity, withdrawal, expiry, defaults.

The SDK's own scenario tables are in test_power_manager_scenarios.py; this file
covers our API and the places where we deliberately differ from the SDK.
"""

from __future__ import annotations

import math

import pytest

from gateway.core.bounds_math import (
    Interval,
    Zone,
    adjust_exclusion_bounds,
    clamp_to_bounds,
    exclusion_zone,
    nearest,
)
from gateway.core.model import Bounds, SystemBounds
from gateway.core.power_manager import (
    DEFAULT_POWER_SOURCE,
    PowerManager,
    Proposal,
)

N = None
NOW = 1_000.0
OPEN = Bounds(None, None)
POOL = SystemBounds(inclusion=Bounds(0.0, 22000.0), exclusion=Bounds(0.0, 4140.0))
NO_ZONE = SystemBounds(inclusion=Bounds(0.0, 22000.0), exclusion=None)


def proposal(
    source: str,
    power: float | None,
    priority: int = 0,
    bounds: Bounds = OPEN,
    created: float = NOW,
) -> Proposal:
    return Proposal(source, priority, power, bounds, created)


def manager_with(*proposals: Proposal, system: SystemBounds | None = POOL) -> PowerManager:
    manager = PowerManager()
    if system is not None:
        manager.set_system_bounds(system, NOW)
    for item in proposals:
        manager.propose(item, NOW)
    return manager


# ------------------------------------------------------------------ bounds_math


@pytest.mark.parametrize(
    ("exclusion", "zone"),
    [
        (None, None),
        (Bounds(0.0, 0.0), None),  # the SDK's "no zone"
        (Bounds(5.0, 5.0), None),  # nothing strictly inside
        (Bounds(10.0, 0.0), None),
        (Bounds(math.nan, math.nan), None),  # EV chargers in the SDK
        (Bounds(0.0, math.nan), None),
        (Bounds(None, 30.0), None),
        (Bounds(0.0, math.inf), None),
        (Bounds(0.0, 4140.0), Zone(0.0, 4140.0)),
        (Bounds(-30.0, 30.0), Zone(-30.0, 30.0)),
    ],
)
def test_exclusion_zone_normalisation(exclusion: Bounds | None, zone: Zone | None) -> None:
    assert exclusion_zone(exclusion) == zone


@pytest.mark.parametrize(
    ("interval", "zone", "expected"),
    [
        ((-10.0, 50.0), Zone(0.0, 30.0), (-10.0, 50.0)),  # zone inside: unchanged
        ((10.0, 50.0), Zone(0.0, 30.0), (30.0, 50.0)),  # lower end lifted
        ((-10.0, 20.0), Zone(0.0, 30.0), (-10.0, 0.0)),  # upper end cut
        ((5.0, 20.0), Zone(0.0, 30.0), (0.0, 0.0)),  # only 0 W is left
        ((0.0, 30.0), Zone(0.0, 30.0), (0.0, 30.0)),  # the edges are not inside
        ((5.0, 20.0), None, (5.0, 20.0)),
    ],
)
def test_adjust_exclusion_bounds(interval: Interval, zone: Zone | None, expected: Interval) -> None:
    assert adjust_exclusion_bounds(interval, zone) == expected


@pytest.mark.parametrize(
    ("value", "interval", "zone", "expected"),
    [
        # System bounds whose ends lie in the zone (M6 only has such zones wider
        # than the bounds): the value goes to the edge on the deliverable side.
        (10.0, (20.0, 200.0), Zone(0.0, 30.0), (N, 30.0)),
        (100.0, (20.0, 200.0), Zone(0.0, 30.0), (100.0, 100.0)),
        (-10.0, (-200.0, -20.0), Zone(-30.0, 0.0), (-30.0, N)),
        (-100.0, (-200.0, -20.0), Zone(-30.0, 0.0), (-100.0, -100.0)),
        (0.0, (-10.0, 10.0), Zone(-30.0, 30.0), (N, N)),  # both ends inside: nothing
        (-0.0, (-200.0, 200.0), Zone(-30.0, 30.0), (-0.0, -0.0)),  # 0 W always allowed
        (15.0, (-math.inf, math.inf), Zone(0.0, 30.0), (0.0, 30.0)),
        (1e9, (0.0, math.inf), None, (1e9, 1e9)),
    ],
)
def test_clamp_to_bounds(
    value: float, interval: Interval, zone: Zone | None, expected: tuple[float | None, ...]
) -> None:
    assert clamp_to_bounds(value, interval, zone) == expected


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (15.0, (0.0, 30.0), 0.0),  # exact tie goes low
        (16.0, (0.0, 30.0), 30.0),
        (14.0, (0.0, 30.0), 0.0),
        (-15.0, (-30.0, 0.0), -30.0),
        (5.0, (N, 30.0), 30.0),
        (5.0, (0.0, N), 0.0),
        (5.0, (N, N), N),
    ],
)
def test_nearest_option(
    value: float, options: tuple[float | None, float | None], expected: float | None
) -> None:
    assert nearest(value, options) == expected


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("power", "bounds"),
    [(math.nan, OPEN), (math.inf, OPEN), (1.0, Bounds(math.nan, N)), (1.0, Bounds(N, -math.inf))],
)
def test_proposal_refuses_non_finite_numbers(power: float, bounds: Bounds) -> None:
    with pytest.raises(ValueError, match="finite"):
        proposal("hems", power, bounds=bounds)


@pytest.mark.parametrize(
    ("max_age", "default"), [(0.0, N), (-1.0, N), (math.nan, N), (60.0, math.inf)]
)
def test_manager_refuses_bad_settings(max_age: float, default: float | None) -> None:
    with pytest.raises(ValueError):
        PowerManager(max_proposal_age=max_age, default_power=default)


def test_reserved_source_cannot_be_proposed() -> None:
    manager = PowerManager(default_power=11000.0)
    with pytest.raises(ValueError, match="reserved"):
        manager.propose(proposal(DEFAULT_POWER_SOURCE, 0.0), NOW)
    assert manager.sources() == []


# ------------------------------------------------------------------ identity, withdrawal


def test_one_proposal_per_source_even_when_its_priority_changes() -> None:
    manager = manager_with(
        proposal("hems", 5000.0, priority=10, bounds=Bounds(0.0, 6000.0)),
        proposal("solar", 9000.0, priority=5),
    )
    assert manager.target == 6000.0
    manager.propose(proposal("hems", 5000.0, priority=1), NOW)  # now below solar
    assert manager.sources() == ["solar", "hems"]
    assert manager.target == 5000.0
    report = manager.report("solar")
    assert report is not None
    assert report.bounds == Bounds(0.0, 22000.0)  # hems's old bounds are gone


# (live proposals before, the withdrawing source, sources after, target after)
WITHDRAWALS: list[tuple[list[Proposal], str, list[str], float]] = [
    ([proposal("hems", 7000.0)], "hems", [], 0.0),
    ([proposal("hems", 7000.0)], "nobody", ["hems"], 7000.0),  # unknown: no-op
    (
        [proposal("cap", N, priority=9, bounds=Bounds(N, 6000.0)), proposal("hems", 7000.0)],
        "cap",
        ["hems"],
        7000.0,
    ),
    (
        [proposal("cap", N, priority=9, bounds=Bounds(N, 6000.0)), proposal("hems", 7000.0)],
        "hems",
        ["cap"],
        0.0,  # bounds alone never give a power
    ),
]


@pytest.mark.parametrize(("before", "withdrawing", "sources", "target"), WITHDRAWALS)
def test_withdrawal(
    before: list[Proposal], withdrawing: str, sources: list[str], target: float
) -> None:
    manager = manager_with(*before)
    manager.propose(proposal(withdrawing, N, priority=3), NOW)
    assert manager.sources() == sources
    assert manager.target == target
    assert manager.report(withdrawing) is None


def test_bounds_without_power_are_kept_and_bound_lower_priorities() -> None:
    manager = manager_with(proposal("cap", N, priority=9, bounds=Bounds(N, 6000.0)))
    assert manager.sources() == ["cap"]
    assert manager.target == 0.0
    assert manager.report_for_priority(0).bounds == Bounds(0.0, 6000.0)


def test_equal_priority_order_puts_the_last_name_first() -> None:
    manager = manager_with(
        proposal("a", 1000.0), proposal("c", 3000.0), proposal("b", 2000.0), system=NO_ZONE
    )
    assert manager.sources() == ["c", "b", "a"]
    assert manager.target == 1000.0  # "a" sorts first, so it is walked last and decides


# ------------------------------------------------------------------ default power

# (system bounds, proposals, target with default_power = 11000 W). The default is the
# lowest-priority proposal, and the lowest one that gives a power decides: an actor
# steers it with bounds; an actor's preferred power alone is overridden by it, as by
# any lower-priority proposal in the SDK.
DEFAULTS: list[tuple[SystemBounds, list[Proposal], float]] = [
    (NO_ZONE, [], 11000.0),
    (SystemBounds(Bounds(0.0, 7400.0), None), [], 7400.0),
    (SystemBounds(None, None), [], 0.0),  # unknown bounds: 0 W
    (NO_ZONE, [proposal("hems", 3000.0)], 3000.0),  # an actor's power decides, not the default
    (NO_ZONE, [proposal("hems", 3000.0, bounds=Bounds(3000.0, 3000.0))], 3000.0),
    (NO_ZONE, [proposal("hems", 0.0, bounds=Bounds(0.0, 0.0))], 0.0),  # stop charging
    (NO_ZONE, [proposal("cap", N, bounds=Bounds(N, 5000.0))], 5000.0),
    # Below even the lowest priority an actor can send.
    (NO_ZONE, [proposal("cap", N, priority=-(2**31), bounds=Bounds(N, 2000.0))], 2000.0),
    # Ignored, like any proposal, below bounds that do not meet: no power, 0 W.
    (
        NO_ZONE,
        [
            proposal("x", N, priority=2, bounds=Bounds(N, 1000.0)),
            proposal("y", N, priority=1, bounds=Bounds(2000.0, N)),
        ],
        0.0,
    ),
    (POOL, [proposal("cap", N, bounds=Bounds(N, 3000.0))], 0.0),  # [0, 3000] -> [0, 0]
    (POOL, [proposal("cap", N, bounds=Bounds(N, 9000.0))], 9000.0),
]


@pytest.mark.parametrize(("system", "proposals", "target"), DEFAULTS)
def test_default_power(system: SystemBounds, proposals: list[Proposal], target: float) -> None:
    manager = PowerManager(default_power=11000.0)
    manager.set_system_bounds(system, NOW)
    for item in proposals:
        manager.propose(item, NOW)
    assert manager.target == target


def test_default_power_never_expires_and_is_not_a_source() -> None:
    manager = PowerManager(max_proposal_age=60.0, default_power=11000.0)
    assert manager.set_system_bounds(NO_ZONE, NOW) is True
    assert manager.next_expiry() is None
    assert manager.drop_expired(NOW + 1e9) == []
    assert manager.target == 11000.0
    assert manager.sources() == []
    assert manager.report(DEFAULT_POWER_SOURCE) is None


def test_default_power_returns_when_the_last_actor_leaves() -> None:
    manager = PowerManager(default_power=11000.0)
    manager.set_system_bounds(NO_ZONE, NOW)
    manager.propose(proposal("hems", N, bounds=Bounds(N, 4000.0), created=NOW), NOW)
    assert manager.target == 4000.0
    assert manager.drop_expired(NOW + 61.0) == ["hems"]
    assert manager.target == 11000.0


# ------------------------------------------------------------------ system bounds


def test_proposal_before_system_bounds_is_kept() -> None:
    """The SDK drops it (D2); we keep it and hold 0 W until bounds are known."""
    manager = PowerManager()
    manager.propose(proposal("hems", 1000.0), NOW)
    assert manager.sources() == ["hems"]
    assert manager.target == 0.0
    report = manager.report("hems")
    assert report is not None
    assert (report.target_power, report.bounds) == (0.0, None)

    assert manager.set_system_bounds(SystemBounds(Bounds(0.0, 5000.0), None), NOW) is True
    assert manager.target == 1000.0
    assert manager.set_system_bounds(SystemBounds(Bounds(0.0, 6000.0), None), NOW) is False

    assert manager.set_system_bounds(SystemBounds(None, Bounds(0.0, 4140.0)), NOW) is True
    assert manager.target == 0.0
    report = manager.report("hems")
    assert report is not None
    assert report.bounds is None


@pytest.mark.parametrize(
    ("inclusion", "target", "bounds"),
    [
        (Bounds(0.0, None), 1e6, Bounds(0.0, None)),  # an open side stays open
        (Bounds(None, None), 1e6, Bounds(None, None)),
        (Bounds(5000.0, 100.0), 0.0, Bounds(5000.0, 100.0)),  # inverted: nothing visited
        (Bounds(math.nan, 5000.0), 0.0, None),  # NaN: unknown
    ],
)
def test_unusual_inclusion_bounds(inclusion: Bounds, target: float, bounds: Bounds | None) -> None:
    manager = manager_with(proposal("hems", 1e6), system=SystemBounds(inclusion, None))
    assert manager.target == target
    report = manager.report("hems")
    assert report is not None
    assert report.bounds == bounds


def test_report_carries_priority_target_and_exclusion() -> None:
    manager = manager_with(
        proposal("cap", N, priority=5, bounds=Bounds(N, 9000.0)), proposal("hems", 7000.0)
    )
    report = manager.report("hems")
    assert report == manager.report_for_priority(0)
    assert report is not None
    assert (report.priority, report.target_power) == (0, 7000.0)
    assert (report.bounds, report.exclusion) == (Bounds(0.0, 9000.0), POOL.exclusion)
    assert manager.report("nobody") is None


# ------------------------------------------------------------------ expiry


def test_expiry_is_strictly_older_than_the_max_age_and_recomputes_at_once() -> None:
    manager = PowerManager(max_proposal_age=60.0)
    manager.set_system_bounds(NO_ZONE, NOW)
    manager.propose(proposal("cap", N, priority=5, bounds=Bounds(N, 3000.0), created=NOW), NOW)
    manager.propose(proposal("hems", 7000.0, created=NOW + 10.0), NOW + 10.0)
    assert manager.target == 3000.0
    assert manager.next_expiry() == NOW + 60.0

    assert manager.drop_expired(NOW + 60.0) == []  # exactly 60 s old: still alive
    assert manager.drop_expired(NOW + 60.5) == ["cap"]
    assert manager.target == 7000.0
    assert manager.next_expiry() == NOW + 70.0

    manager.propose(proposal("hems", 7000.0, created=NOW + 65.0), NOW + 65.0)  # renewed
    assert manager.drop_expired(NOW + 71.0) == []
    assert manager.next_expiry() == NOW + 125.0
    assert manager.drop_expired(NOW + 200.0) == ["hems"]
    assert (manager.target, manager.sources(), manager.next_expiry()) == (0.0, [], None)


def test_drop_expired_lists_every_dropped_source_sorted() -> None:
    manager = manager_with(proposal("b", 1.0, priority=1), proposal("a", 2.0), proposal("c", 3.0))
    assert manager.drop_expired(NOW + 61.0) == ["a", "b", "c"]


# ------------------------------------------------------------------ per-proposal expiry


def test_each_proposal_expires_at_its_own_time_and_lasting_ones_never() -> None:
    manager = PowerManager(max_proposal_age=60.0)
    manager.set_system_bounds(NO_ZONE, NOW)
    manager.propose(Proposal("slider", 1, 9000.0, OPEN, NOW, None), NOW)
    manager.propose(Proposal("cap", 5, N, Bounds(N, 3000.0), NOW, NOW + 600.0), NOW)
    manager.propose(Proposal("hems", 0, 7000.0, OPEN, NOW), NOW)  # default: 60 s
    assert manager.target == 3000.0
    assert manager.next_expiry() == NOW + 60.0
    assert (manager.expiry("slider"), manager.expiry("cap")) == (None, NOW + 600.0)
    assert manager.expiry("hems") == NOW + 60.0

    assert manager.drop_expired(NOW + 60.5) == ["hems"]
    assert manager.next_expiry() == NOW + 600.0
    assert manager.drop_expired(NOW + 600.0) == []  # alive at its expiry time
    assert manager.drop_expired(NOW + 600.001) == ["cap"]
    assert (manager.target, manager.next_expiry()) == (9000.0, None)
    assert manager.drop_expired(NOW + 1e12) == []
    assert manager.sources() == ["slider"]


def test_a_lasting_proposal_is_replaced_by_an_expiring_one_from_the_same_source() -> None:
    manager = manager_with(Proposal("ha", 0, 5000.0, OPEN, NOW, None), system=NO_ZONE)
    manager.propose(Proposal("ha", 0, 6000.0, OPEN, NOW + 1, NOW + 11.0), NOW + 1)
    assert (manager.target, manager.next_expiry()) == (6000.0, NOW + 11.0)
    assert manager.drop_expired(NOW + 12.0) == ["ha"]
    assert manager.target == 0.0


def test_a_lasting_proposal_is_withdrawn_by_an_empty_one() -> None:
    manager = manager_with(Proposal("ha", 0, 5000.0, OPEN, NOW, None), system=NO_ZONE)
    manager.propose(Proposal("ha", 0, N, OPEN, NOW + 1, None), NOW + 1)
    assert (manager.target, manager.sources(), manager.expiry("ha")) == (0.0, [], None)


def test_a_nan_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="expires is NaN"):
        Proposal("x", 0, 1.0, OPEN, NOW, math.nan)
