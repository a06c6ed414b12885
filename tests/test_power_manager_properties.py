"""Properties of the power manager on random system bounds and proposals (hypothesis).

What truly holds, stated for the walk order (priority, then source name, descending,
the `default_power` proposal last). Let the *deciding* proposal be the last one in
that order that gives a power, and A the system inclusion bounds intersected with
the bounds of every proposal above it (an open side is unbounded).

- No exclusion zone: if A is non-empty, the target is the deciding power clamped into
  A, so it lies within the system bounds and every higher proposal's bounds (strict
  containment). If A is empty the walk stops early and an earlier proposal decides.
- With a zone, the same holds when neither end of A lies strictly inside the zone,
  except that a deciding power strictly inside the zone (and not 0 W) goes to the
  nearer zone edge, ties low. (When an end of A is inside the zone, bounds are moved
  to the zone's edges or to [0, 0], and a proposal wholly inside the zone is skipped:
  the SDK tables cover those cases.)
- Always: the target is 0 W or lies outside the open zone; it is 0 W or within the
  system inclusion bounds; it is 0 W when no proposal gives a power or the inclusion
  bounds are unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.bounds_math import (
    Interval,
    as_bounds,
    as_interval,
    exclusion_zone,
    intersect,
    is_empty,
)
from gateway.core.model import Bounds, SystemBounds
from gateway.core.power_manager import DEFAULT_POWER_SOURCE, PowerManager, Proposal

N = None
NOW = 1_000.0
MAX_AGE = 60.0

# Small integers make ties (equal distances, touching bounds) frequent; floats cover the rest.
watts = st.one_of(
    st.integers(-300, 300).map(float),
    st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
)


@st.composite
def ordered_bounds(draw: st.DrawFn, open_sides: bool = True) -> Bounds:
    side = st.none() | watts if open_sides else watts
    lower, upper = draw(side), draw(side)
    if lower is not None and upper is not None and lower > upper:
        lower, upper = upper, lower
    return Bounds(lower, upper)


NO_ZONES = [None, Bounds(0.0, 0.0), Bounds(math.nan, math.nan)]
"""Exclusion bounds that mean "no zone": none, the SDK's [0, 0], NaN from EV chargers."""

small_watts = st.integers(-300, 300).map(float)
exclusions = st.one_of(
    st.none(),
    st.just(Bounds(0.0, 0.0)),
    st.builds(lambda a, b: Bounds(min(a, b), max(a, b)), small_watts, small_watts),
    st.builds(lambda upper: Bounds(0.0, upper), st.integers(1, 300).map(float)),  # EV-like
)


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    return Proposal(
        source=draw(st.sampled_from("abcde")),
        priority=draw(st.integers(-2, 2)),
        power=draw(st.none() | watts),
        bounds=draw(ordered_bounds()),
        created=NOW - draw(st.sampled_from([0.0, 30.0, 60.0, 61.0, 90.0])),
    )


@dataclass(frozen=True)
class Scenario:
    system: SystemBounds
    sent: list[Proposal]
    default_power: float | None

    def live(self) -> list[Proposal]:
        """The proposals a correct manager holds: the last one per source, if not a withdrawal."""
        latest: dict[str, Proposal] = {}
        for item in self.sent:
            latest.pop(item.source, None)
            if not item.withdraws:
                latest[item.source] = item
        return list(latest.values())

    def walk(self) -> list[Proposal]:
        """Live proposals in walk order, the default one last.

        The default only takes part when no actor gives a power: it never overrides one.
        """
        order = sorted(self.live(), key=lambda p: (p.priority, p.source), reverse=True)
        if self.default_power is not None and all(p.power is None for p in order):
            order.append(Proposal(DEFAULT_POWER_SOURCE, 0, self.default_power, Bounds(N, N), 0))
        return order

    def manager(self) -> PowerManager:
        manager = PowerManager(max_proposal_age=MAX_AGE, default_power=self.default_power)
        manager.set_system_bounds(self.system, NOW)
        for item in self.sent:
            manager.propose(item, NOW)
        return manager


@st.composite
def scenarios(draw: st.DrawFn, with_zone: bool = True) -> Scenario:
    inclusion = draw(st.none() | ordered_bounds())
    exclusion = draw(exclusions if with_zone else st.sampled_from(NO_ZONES))
    return Scenario(
        system=SystemBounds(inclusion, exclusion),
        sent=draw(st.lists(proposals(), max_size=8)),
        default_power=draw(st.none() | watts),
    )


def system_interval(system: SystemBounds) -> Interval:
    """Where the walk starts: the inclusion bounds, or [0, 0] while they are unknown."""
    return (0.0, 0.0) if system.inclusion is None else as_interval(system.inclusion)


def deciding(scenario: Scenario) -> tuple[Proposal | None, list[Proposal]]:
    """The last proposal in walk order giving a power, and the proposals above it."""
    walk = scenario.walk()
    for index in range(len(walk) - 1, -1, -1):
        if walk[index].power is not None:
            return walk[index], walk[:index]
    return None, walk


def bounds_above(scenario: Scenario, above: list[Proposal]) -> Interval:
    """System inclusion intersected with the bounds of every proposal in `above`."""
    room = system_interval(scenario.system)
    for item in above:
        room = intersect(room, as_interval(item.bounds))
    return room


def clamp(power: float, room: Interval) -> float:
    return min(max(power, room[0]), room[1])


@settings(max_examples=400)
@given(scenarios(with_zone=False))
def test_without_zone_target_is_the_deciding_power_clamped_into_all_bounds_above(
    scenario: Scenario,
) -> None:
    target = scenario.manager().target
    walk = scenario.walk()
    # The walk stops at the first proposal whose bounds above are empty.
    visited = [p for i, p in enumerate(walk) if not is_empty(bounds_above(scenario, walk[:i]))]
    powered = [i for i, p in enumerate(visited) if p.power is not None]
    if not powered:
        assert target == 0.0
        return
    decider, above = visited[powered[-1]], visited[: powered[-1]]
    assert decider.power is not None
    room = bounds_above(scenario, above)
    assert target == clamp(decider.power, room)
    if scenario.system.inclusion is not None:
        assert target in scenario.system.inclusion
    for item in above:
        assert target in item.bounds, f"outside the bounds of {item.source}"


@settings(max_examples=400)
@given(scenarios())
def test_with_zone_target_respects_bounds_above_when_they_clear_the_zone(
    scenario: Scenario,
) -> None:
    target = scenario.manager().target
    zone = exclusion_zone(scenario.system.exclusion)
    decider, above = deciding(scenario)
    if decider is None or decider.power is None:
        assert target == 0.0
        return
    room = bounds_above(scenario, above)
    if is_empty(room) or (zone is not None and (zone.holds(room[0]) or zone.holds(room[1]))):
        return  # bounds are moved to the zone's edges: see the SDK tables
    power = decider.power
    expected = clamp(power, room)
    if zone is not None and expected == power and power != 0.0 and zone.holds(power):
        low, high = zone
        expected = low if power - low <= high - power else high
    assert target == expected
    for item in above:
        assert target in item.bounds, f"outside the bounds of {item.source}"


@settings(max_examples=400)
@given(scenarios())
def test_target_is_0_or_deliverable(scenario: Scenario) -> None:
    target = scenario.manager().target
    assert math.isfinite(target)
    zone = exclusion_zone(scenario.system.exclusion)
    if target == 0.0:
        return
    assert zone is None or not zone.holds(target), "target strictly inside the exclusion zone"
    assert scenario.system.inclusion is not None, "a target without known bounds"
    assert target in scenario.system.inclusion


@settings(max_examples=300)
@given(scenarios(with_zone=False))
def test_without_zone_report_is_system_bounds_narrowed_by_strictly_higher_priorities(
    scenario: Scenario,
) -> None:
    manager = scenario.manager()
    live = sorted(scenario.live(), key=lambda p: (p.priority, p.source), reverse=True)
    for priority in range(3, -4, -1):  # from above every proposal to below every one
        report = manager.report_for_priority(priority)
        assert report.target_power == manager.target
        if scenario.system.inclusion is None:
            assert report.bounds is None
            continue
        room = as_interval(scenario.system.inclusion)
        for item in (p for p in live if p.priority > priority):
            narrowed = intersect(room, as_interval(item.bounds))
            if is_empty(narrowed):
                break  # the walk stops here: lower proposals are ignored
            room = narrowed
        assert report.bounds == as_bounds(room), f"p{priority}"


@settings(max_examples=200)
@given(scenarios(with_zone=False))
def test_without_zone_reports_nest_like_matryoshkas(scenario: Scenario) -> None:
    manager = scenario.manager()
    outer = scenario.system.inclusion
    for priority in range(3, -4, -1):
        bounds = manager.report_for_priority(priority).bounds
        if outer is None or bounds is None:
            assert bounds is None and outer is None
            continue
        inner, wider = as_interval(bounds), as_interval(outer)
        assert wider[0] <= inner[0] and inner[1] <= wider[1], f"p{priority} not nested"
        outer = bounds


@given(scenarios(), st.data())
def test_arrival_order_does_not_matter_nor_bounds_arriving_last(
    scenario: Scenario, data: st.DataObject
) -> None:
    manager = scenario.manager()
    other = PowerManager(max_proposal_age=MAX_AGE, default_power=scenario.default_power)
    for item in data.draw(st.permutations(scenario.live())):
        other.propose(item, NOW)
    other.set_system_bounds(scenario.system, NOW)
    assert other.target == manager.target
    assert other.sources() == manager.sources()
    for priority in range(-3, 4):
        assert other.report_for_priority(priority) == manager.report_for_priority(priority)


@given(scenarios())
def test_expiry_drops_exactly_the_old_and_recomputes_at_once(scenario: Scenario) -> None:
    manager = scenario.manager()
    live = scenario.live()
    old = sorted(p.source for p in live if NOW - p.created > MAX_AGE)
    expected_expiry = min((p.created for p in live), default=None)
    assert manager.next_expiry() == (None if expected_expiry is None else expected_expiry + MAX_AGE)
    assert manager.drop_expired(NOW) == old
    survivors = Scenario(
        scenario.system, [p for p in live if p.source not in old], scenario.default_power
    )
    assert manager.target == survivors.manager().target
    assert sorted(manager.sources()) == sorted(p.source for p in survivors.sent)


@given(scenarios(), st.none() | ordered_bounds(), exclusions)
def test_set_system_bounds_tells_whether_the_target_changed(
    scenario: Scenario, inclusion: Bounds | None, exclusion: Bounds | None
) -> None:
    manager = scenario.manager()
    before = manager.target
    changed = manager.set_system_bounds(SystemBounds(inclusion, exclusion), NOW)
    assert changed == (manager.target != before)


@given(
    low=small_watts,
    half=st.integers(1, 20),
    offset=st.integers(-19, 19),
    margin=st.integers(0, 100),
)
def test_power_inside_the_zone_goes_to_the_nearer_edge_ties_low(
    low: float, half: int, offset: int, margin: int
) -> None:
    high = low + 2 * half
    power = low + half + max(-half + 1, min(half - 1, offset))  # strictly inside
    manager = PowerManager()
    inclusion = Bounds(low - margin, high + margin)
    manager.set_system_bounds(SystemBounds(inclusion, Bounds(low, high)), NOW)
    manager.propose(Proposal("hems", 0, power, Bounds(None, None), NOW), NOW)
    if power == 0.0:
        assert manager.target == 0.0  # 0 W is always allowed
    elif power - low == high - power:
        assert manager.target == low
    else:
        assert manager.target == (low if power - low < high - power else high)
