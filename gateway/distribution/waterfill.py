"""Max-min fair sharing of linear capacities by progressive filling, then rounding.

The problem: flows (EVs) cross links (grid phases, and the power target). A flow uses
`coefficient x current` of each link it crosses (1 A per grid phase it loads; W per A
on the power link), and must stay within [lower, upper]. Raise every unfrozen flow's
current together; when a link saturates, freeze the flows that cross it; repeat
(Bertsekas & Gallager, Data Networks, ch. 6). Lower bounds make it "water-filling
with a floor": a flow's current is clamp(level, lower, upper), which is still max-min
fair among the flows that admission let in (admission guarantees the floors fit).

Each round solves exactly (a sorted sweep, no bisection) and freezes at least one
link, so a call costs O(links x n log n). The continuous result is rounded down to
each flow's step, then whole steps are handed out again, lowest current first, while
every link has room: the rounding remainder is not wasted and stays fair.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

_EPS = 1e-9
"""Slack in capacity tests: far below any meaningful current or power."""


def floor_to_step(value: float, step: float) -> float:
    """`value` rounded down to a multiple of `step` (tolerating float noise)."""
    return round(math.floor(value / step + _EPS) * step, 6)


def ceil_to_step(value: float, step: float) -> float:
    """`value` rounded up to a multiple of `step` (tolerating float noise)."""
    return round(math.ceil(value / step - _EPS) * step, 6)


@dataclass(frozen=True, slots=True)
class Flow:
    """One EV in the filling: its bounds, its setpoint step, the links it uses."""

    key: str
    lower: float
    upper: float
    step: float
    usage: Mapping[Hashable, float]
    """Per link it crosses, the link capacity one ampere of this flow uses."""


def _max_level(items: Sequence[tuple[float, float, float]], budget: float) -> float:
    """Highest level t with sum(coef x clamp(t, lower, upper)) <= budget.

    `items` are (coef, lower, upper). Returns inf when even every upper fits.
    """
    value = sum(coef * lower for coef, lower, _ in items)
    if value > budget:
        return -math.inf
    events = sorted(
        [(lower, coef) for coef, lower, _ in items] + [(upper, -coef) for coef, _, upper in items]
    )
    level = events[0][0]
    slope = 0.0
    for position, delta in events:
        if slope > 0:
            reached = value + slope * (position - level)
            if reached > budget:
                return level + (budget - value) / slope
            value = reached
        level = position
        slope += delta
    return math.inf


def fill(flows: Sequence[Flow], capacity: Mapping[Hashable, float]) -> dict[str, float]:
    """Continuous max-min fair currents; assumes every flow's lower bound fits.

    Links missing from `capacity` or with infinite capacity do not constrain.
    """
    current = {flow.key: flow.lower for flow in flows}
    active = {flow.key: flow for flow in flows if flow.upper > flow.lower}
    links = [link for link, cap in capacity.items() if math.isfinite(cap)]
    while active:
        fixed = {link: 0.0 for link in links}
        crossing: dict[Hashable, list[tuple[float, float, float]]] = {link: [] for link in links}
        for flow in flows:
            for link, coef in flow.usage.items():
                if link not in fixed:
                    continue
                if flow.key in active:
                    crossing[link].append((coef, flow.lower, flow.upper))
                else:
                    fixed[link] += coef * current[flow.key]
        levels = {
            link: _max_level(crossing[link], capacity[link] - fixed[link] - _EPS)
            for link in links
            if crossing[link]
        }
        level = min(levels.values(), default=math.inf)
        if level >= max(flow.upper for flow in active.values()):
            for flow in active.values():
                current[flow.key] = flow.upper
            break
        tight = {link for link, value in levels.items() if value <= level + _EPS}
        for key, flow in list(active.items()):
            current[key] = min(max(level, flow.lower), flow.upper)
            if flow.upper <= level or any(link in tight for link in flow.usage):
                del active[key]
    return current


def _fits(
    flow: Flow, extra: float, used: Mapping[Hashable, float], capacity: Mapping[Hashable, float]
) -> bool:
    return all(
        used.get(link, 0.0) + coef * extra <= capacity.get(link, math.inf) + _EPS
        for link, coef in flow.usage.items()
    )


def fill_in_steps(
    flows: Sequence[Flow], capacity: Mapping[Hashable, float], order: Sequence[str] = ()
) -> dict[str, float]:
    """Max-min fair currents on each flow's step grid, never exceeding any capacity.

    Rounds the continuous solution down to each step, then gives back single steps,
    lowest current first (ties in `order`, then by key), while they fit.
    """
    exact = fill(flows, capacity)
    result = {
        flow.key: max(flow.lower, floor_to_step(exact[flow.key], flow.step)) for flow in flows
    }
    used: dict[Hashable, float] = {}
    for flow in flows:
        for link, coef in flow.usage.items():
            used[link] = used.get(link, 0.0) + coef * result[flow.key]
    rank = {key: index for index, key in enumerate(order)}
    tops = {flow.key: floor_to_step(flow.upper, flow.step) for flow in flows}
    grew = True
    while grew:
        grew = False
        queue = sorted(flows, key=lambda f: (result[f.key], rank.get(f.key, len(rank)), f.key))
        for flow in queue:
            raised = round(result[flow.key] + flow.step, 6)
            if raised > tops[flow.key] + _EPS or not _fits(flow, flow.step, used, capacity):
                continue
            result[flow.key] = raised
            for link, coef in flow.usage.items():
                used[link] = used.get(link, 0.0) + coef * flow.step
            grew = True
    return result
