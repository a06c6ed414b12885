"""Fairness of the distribution benchmark: Jain's index over sessions and over hours.

At each step, an EV that wants power has a reference share: the current it would get
if every constraint were split equally among the EVs that use it - min(what it can
take, fuse / EVs on each of its grid phases, target / sum of every wanting EV's W per
A), or 0 when even alone its 6 A minimum would not fit the target. Per EV (over its
session, or over one hour), x = min(1, delivered / reference current, both summed);
Jain = (sum x)^2 / (n sum x^2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

VOLTS = 230.0
Wanting = tuple[int, float, tuple[int, ...], float]
"""An EV that wants power at one step: its index, draw (A), grid phases, what it can take."""


@dataclass(slots=True)
class Fairness:
    """Delivered and reference currents summed per EV: per session and per hour."""

    session_d: dict[int, float] = field(default_factory=dict)
    session_r: dict[int, float] = field(default_factory=dict)
    hour_d: dict[int, float] = field(default_factory=dict)
    hour_r: dict[int, float] = field(default_factory=dict)
    hour_n: dict[int, int] = field(default_factory=dict)
    hour_steps: int = 0
    hourly: list[float] = field(default_factory=list)

    def add(self, index: int, delivered: float, reference: float) -> None:
        for sums, value in ((self.session_d, delivered), (self.hour_d, delivered),
                            (self.session_r, reference), (self.hour_r, reference)):  # fmt: skip
            sums[index] = sums.get(index, 0.0) + value
        self.hour_n[index] = self.hour_n.get(index, 0) + 1

    def close_hour(self) -> None:
        half = {i for i, n in self.hour_n.items() if n >= self.hour_steps / 2}
        self.hourly.extend(jain(self.hour_d, {i: self.hour_r[i] for i in half}))
        self.hour_d.clear()
        self.hour_r.clear()
        self.hour_n.clear()
        self.hour_steps = 0

    def step(self, wanting: Sequence[Wanting], fuse: float, target: float) -> None:
        """Add one step's delivered and equal-split reference currents per wanting EV."""
        on_phase = [0, 0, 0]
        watts_per_amp = 0.0
        for _, _, phases, _ in wanting:
            for phase in phases:
                on_phase[phase - 1] += 1
            watts_per_amp += VOLTS * len(phases)
        for index, draw, phases, can in wanting:
            split = min(fuse / on_phase[phase - 1] for phase in phases)
            alone = 6.0 * VOLTS * len(phases) <= target and fuse >= 6.0
            share = min(can, split, target / watts_per_amp) if alone else 0.0
            self.add(index, draw, share)
        self.hour_steps += 1


def jain(delivered: Mapping[int, float], reference: Mapping[int, float]) -> list[float]:
    """Jain's index of one window (empty when fewer than two EVs wanted power)."""
    xs = [min(1.0, delivered[i] / reference[i]) for i in reference if reference[i] > 0]
    squares = sum(x * x for x in xs)
    if len(xs) < 2 or squares == 0:
        return []
    return [sum(xs) ** 2 / (len(xs) * squares)]
