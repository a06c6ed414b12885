"""Pool formulas: the pool's power and per-grid-phase current from chargers' samples.

Pure code. Like the SDK, a charger without fresh data counts as 0 in the sums, but
unlike the SDK it is named in `missing`, so the degradation is visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.core.model import ChargerSample, Phases, finite_or_zero


@dataclass(frozen=True, slots=True)
class PoolMember:
    """A charger as the pool sees it: its id and its wiring to the grid phases.

    `phases[i]` is the grid phase (1..3) wired to the charger's terminal L(i+1);
    `(2, 3, 1)` is a rotated charger, `(2,)` a single-phase charger on grid L2.
    """

    charger_id: str
    phases: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """The pool's figures at one resampling tick."""

    timestamp: float
    power: float
    current: Phases
    missing: tuple[str, ...]


def is_fresh(sample: ChargerSample | None, now: float, max_data_age: float) -> bool:
    """True when the sample exists and is at most `max_data_age` seconds old."""
    return sample is not None and now - sample.timestamp <= max_data_age


def to_grid_phases(current: Phases, phases: tuple[int, ...]) -> Phases:
    """Map a charger's per-terminal values onto the grid phases through its wiring."""
    grid = [0.0, 0.0, 0.0]
    for terminal, grid_phase in enumerate(phases):
        grid[grid_phase - 1] += finite_or_zero(current.as_tuple()[terminal])
    return Phases(*grid)


def pool_snapshot(
    members: Iterable[PoolMember],
    latest: Mapping[str, ChargerSample],
    now: float,
    max_data_age: float,
) -> PoolSnapshot:
    """Sum power and grid-phase current over members with fresh data; list the rest."""
    power = 0.0
    grid = [0.0, 0.0, 0.0]
    missing: list[str] = []
    for member in members:
        sample = latest.get(member.charger_id)
        if sample is None or not is_fresh(sample, now, max_data_age):
            missing.append(member.charger_id)
            continue
        power += finite_or_zero(sample.active_power)
        for index, value in enumerate(to_grid_phases(sample.current, member.phases)):
            grid[index] += value
    return PoolSnapshot(now, power, Phases(*grid), tuple(missing))
