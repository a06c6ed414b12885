"""The distribution benchmark's sites, EVs and scenarios (deterministic, fixed seeds).

An EV here is one charging session. Besides its battery and maximum current, two
field behaviours are modelled, assigned to a share of the EVs by `realistic`:
- sleepy: after drawing nothing for `SLEEP_AFTER` seconds (waiting for its turn, or
  paused) it falls asleep and ignores a plain resume; it wakes when the charger
  toggles 0 -> >= 6 A -> 0 -> >= 6 A (as many vendors' "wake-up" does);
- a minimum above 6 A (e.g. 8 A on 3 phases): below it the EV draws nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

HOUR = 3600.0
SLEEP_AFTER = 600.0
"""Seconds without drawing after which a sleepy EV falls asleep."""
SLEEPY_SHARE = 0.15
"""Default share of sleepy EVs."""
HIGH_MIN_SHARE = 0.10
"""Default share of 3-phase EVs that draw nothing below `HIGH_MIN` A."""
HIGH_MIN = 8.0


@dataclass(frozen=True, slots=True)
class Ev:
    """One charging session: an EV on a charger from arrival to departure."""

    charger: str
    arrival: float
    departure: float
    capacity_wh: float
    soc: float
    max_current: float
    phases: int
    sleepy: bool = False
    min_current: float = 6.0
    """Below this limit (A) the EV draws nothing."""


@dataclass(frozen=True, slots=True)
class Site:
    """A charger: id, wiring (grid phase per terminal), maximum and setpoint step."""

    cid: str
    phases: tuple[int, ...]
    max_current: float
    step: float = 0.1


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything both distributors are run on."""

    name: str
    sites: tuple[Site, ...]
    evs: tuple[Ev, ...]
    fuse: float
    start: float
    end: float
    targets: tuple[tuple[float, float], ...]
    """(from time, W), piecewise constant."""
    outages: tuple[tuple[str, float, float], ...] = ()
    """(charger, from, to): no data and no commands get through."""

    def target(self, now: float) -> float:
        """The target power at `now`."""
        value = self.targets[0][1]
        for since, watts in self.targets:
            if now >= since:
                value = watts
        return value


def realistic(
    scenario: Scenario,
    sleepy_share: float = SLEEPY_SHARE,
    high_min_share: float = HIGH_MIN_SHARE,
    seed: int = 15,
) -> Scenario:
    """The scenario with a share of sleepy EVs and of 3-phase EVs with an 8 A minimum.

    Exactly the share of EVs (rounded) is picked, by the seed alone (the same EVs for
    every distributor); with both shares 0 the scenario is unchanged.
    """
    rng = random.Random(seed)
    indices = range(len(scenario.evs))
    sleepy = set(rng.sample(indices, round(sleepy_share * len(indices))))
    three = [i for i in indices if scenario.evs[i].phases == 3]
    high = set(rng.sample(three, round(high_min_share * len(three))))
    evs = tuple(
        replace(ev, sleepy=i in sleepy, min_current=HIGH_MIN if i in high else ev.min_current)
        for i, ev in enumerate(scenario.evs)
    )
    return replace(scenario, evs=evs)


ROTATIONS = ((1, 2, 3), (2, 3, 1), (3, 1, 2))


def _fleet_ev(rng: random.Random, charger: str, arrival: float, departure: float,
              one_phase_share: float) -> Ev:  # fmt: skip
    phases = 1 if rng.random() < one_phase_share else 3
    return Ev(
        charger, arrival, departure,
        capacity_wh=rng.choice((40e3, 58e3, 64e3, 77e3, 82e3)),
        soc=rng.uniform(0.15, 0.6),
        max_current=rng.choice((16.0, 32.0)) if phases == 1 else rng.choice((16.0, 16.0, 32.0)),
        phases=phases,
    )  # fmt: skip


def evening_peak(seed: int = 1) -> Scenario:
    """20 EVs come home 16:30-19:30 to a 63 A car park; the target varies by tariff."""
    rng = random.Random(seed)
    sites = tuple(
        Site(f"bay-{i + 1:02d}", ROTATIONS[i % 3], 16.0 if i % 4 else 32.0, 1.0 if i % 2 else 0.1)
        for i in range(20)
    )
    evs = tuple(
        _fleet_ev(rng, site.cid, rng.uniform(16.5, 19.5) * HOUR,
                  rng.uniform(30.5, 32.5) * HOUR, one_phase_share=0.3)
        for site in sites
    )  # fmt: skip
    targets = ((0.0, 25e3), (20 * HOUR, 35e3), (22 * HOUR, 60e3), (30 * HOUR, 40e3))
    return Scenario("1. evening peak, 20 EVs, 63 A fuse", sites, evs, 63.0,
                    16 * HOUR, 32.5 * HOUR, targets)  # fmt: skip


def mixed_phases(seed: int = 2) -> Scenario:
    """Workplace day: 1-phase and 3-phase EVs on rotated and single-phase chargers, PV target."""
    rng = random.Random(seed)
    three = tuple(Site(f"w3-{i + 1}", ROTATIONS[i % 3], 16.0 if i % 2 else 32.0) for i in range(6))
    single = tuple(Site(f"w1-{i + 1}", (p,), 32.0, 1.0) for i, p in enumerate((1, 1, 2, 1, 3, 1)))
    sites = three + single
    evs: list[Ev] = []
    for site in sites:
        morning = rng.uniform(7.0, 9.5) * HOUR
        noon = rng.uniform(12.0, 13.5) * HOUR
        evs.append(_fleet_ev(rng, site.cid, morning, noon, one_phase_share=0.5))
        evs.append(_fleet_ev(rng, site.cid, noon + 600, rng.uniform(16.5, 18.5) * HOUR, 0.5))
    pv = (4e3, 9e3, 16e3, 22e3, 27e3, 30e3, 29e3, 25e3, 19e3, 13e3, 7e3, 3e3)
    targets = tuple((float((7 + h) * HOUR), watts) for h, watts in enumerate(pv))
    outages = (("w3-2", 10 * HOUR, 10 * HOUR + 1200),)
    return Scenario("2. mixed 1p/3p, rotated phases, 40 A fuse, PV target", sites, tuple(evs),
                    40.0, 7 * HOUR, 19 * HOUR, targets, outages)  # fmt: skip


def step_down(seed: int = 3) -> Scenario:
    """10 EVs charging when the target drops sharply, recovers, and drops again."""
    rng = random.Random(seed)
    sites = tuple(
        Site(f"s-{i + 1:02d}", ROTATIONS[i % 3], 32.0 if i % 3 else 16.0) for i in range(10)
    )
    evs = tuple(_fleet_ev(rng, site.cid, 0.0, 4 * HOUR, one_phase_share=0.3) for site in sites)
    targets = ((0.0, 40e3), (1 * HOUR, 10e3), (1.5 * HOUR, 30e3), (2.5 * HOUR, 4e3),
               (3 * HOUR, 40e3))  # fmt: skip
    return Scenario("3. target steps down sharply, 10 EVs, 80 A fuse", sites, evs, 80.0,
                    0.0, 4 * HOUR, targets)  # fmt: skip


def above_fuse(seed: int = 4) -> Scenario:
    """Night charging of 22 kW EVs with a target above what the 63 A fuse carries (43.5 kW)."""
    rng = random.Random(seed)
    sites = tuple(Site(f"n-{i + 1}", ROTATIONS[i % 3], 32.0) for i in range(8))
    evs = tuple(
        Ev(site.cid, rng.uniform(22.0, 22.5) * HOUR, 30 * HOUR, rng.choice((64e3, 77e3, 82e3)),
           rng.uniform(0.1, 0.5), 32.0, 1 if i % 4 == 3 else 3)
        for i, site in enumerate(sites)
    )  # fmt: skip
    return Scenario("4. target above the fuse, 8 EVs, 63 A fuse", sites, evs, 63.0,
                    22 * HOUR, 30 * HOUR, ((0.0, 60e3),))  # fmt: skip


SCENARIOS: tuple[Callable[[], Scenario], ...] = (evening_peak, mixed_phases, step_down, above_fuse)
