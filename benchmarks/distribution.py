"""Distribution benchmark: our `Distributor` against an SDK-like baseline, simulated.

Run from the repository root: `python -m benchmarks.distribution` (about 30 s).

Deterministic (fixed seeds, simulated time in 5 s steps, no sleeping). A site has a
fuse per grid phase, chargers wired with phase rotations, and EVs that arrive, charge
and leave. Each step both distributors see the same charger states; the simulated
charger applies the limit (unless its link is down) and the EV draws
min(limit, its own maximum, the charger's maximum) on its phases - nothing below
6 A, as IEC 61851 requires. An EV's maximum falls linearly from 100 % at 80 % state
of charge to 0 at 100 % (a taper). Voltage is 230 V everywhere.

Metrics (per run):
- energy: kWh delivered; share: delivered / requested (requested = what each EV
  needed to reach 100 %); worst EV: the lowest such share of any one EV.
- fuse: steps where any grid phase's actual current exceeds the fuse, and the worst
  excess (A). overshoot: steps where actual power > target + 100 W.
- Jain: fairness over EVs present at the same time. At each step, an EV that wants
  power has a reference share: the current it would get if every constraint were
  split equally among the EVs that use it - min(what it can take, fuse / EVs on each
  of its grid phases, target / sum of every wanting EV's W per A), or 0 when even
  alone its 6 A minimum would not fit the target (a 3-phase EV under 4.1 kW). Over
  each hour, x = min(1, delivered current / reference current), both summed over the
  hour; Jain = (sum x)^2 / (n sum x^2) over the EVs that wanted power for at least
  half of that hour, averaged over the hours with two such EVs or more. A max-min
  fair allocation gives every EV at least this reference, so 1.0 means nobody got
  less than an equal split; time-sharing under the 6 A floor is judged over the
  hour, not per step.
- switches: pauses and resumes while an EV is plugged in (its first start is not one).
- follow: worst time (s) from a target cut of 10 % or more until the actual power is
  at or below the new target (0 = the same step); "never" if not before the next
  target change.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sdk_baseline import SdkLikeDistributor
from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases
from gateway.distribution import ChargerState, Distributor

STEP = 5.0
VOLTS = 230.0
TOLERANCE_W = 100.0
HOUR = 3600.0
Controller = Callable[[float, Sequence[ChargerState], float | None, float], Mapping[str, float]]


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


@dataclass(slots=True)
class Result:
    """The metrics of one run (see the module docstring)."""

    energy_kwh: float = 0.0
    share: float = 0.0
    worst_ev: float = 0.0
    violations: int = 0
    worst_over: float = 0.0
    overshoots: int = 0
    jain: float = 1.0
    switches: int = 0
    follow: float | None = 0.0
    runtime: float = 0.0


@dataclass(slots=True)
class _Bay:
    site: Site
    limit: float = 0.0
    ev: int | None = None
    soc: float = 0.0
    draw: float = 0.0
    sample: ChargerSample | None = None
    on: bool = False
    started: bool = False
    delivered: dict[int, float] = field(default_factory=dict)


def ev_max(ev: Ev, soc: float) -> float:
    """What the EV can take (A per phase) at a state of charge: tapers above 80 %."""
    return ev.max_current * max(0.0, min(1.0, (1.0 - soc) / 0.2))


def _sample(bay: _Bay, evs: Sequence[Ev], now: float) -> ChargerSample:
    wired = len(bay.site.phases)
    volts = Phases(*[VOLTS if t < wired else 0.0 for t in range(3)])
    if bay.ev is None:
        return ChargerSample(now, 0.0, Phases(), volts, None, CableState.UNPLUGGED,
                             ComponentState.READY, bay.limit, Bounds(0.0, 0.0))  # fmt: skip
    n = min(evs[bay.ev].phases, wired)
    current = Phases(*[bay.draw if t < n else 0.0 for t in range(3)])
    state = ComponentState.CHARGING if bay.draw > 0 else ComponentState.READY
    upper = bay.site.max_current * VOLTS * wired
    return ChargerSample(now, bay.draw * VOLTS * n, current, volts, None, CableState.EV_LOCKED,
                         state, bay.limit, Bounds(0.0, upper))  # fmt: skip


def run(scenario: Scenario, controller: Controller) -> Result:
    """Simulate one scenario under one distributor; return its metrics."""
    began = time.perf_counter()
    bays = {site.cid: _Bay(site) for site in scenario.sites}
    evs = scenario.evs
    result = Result()
    delivered = [0.0] * len(evs)
    window_d: dict[int, float] = {}
    window_r: dict[int, float] = {}
    window_n: dict[int, int] = {}
    window_steps = 0
    jains: list[float] = []
    follow_worst: float | None = 0.0
    cut: tuple[float, float] | None = None  # (since, new target) of a pending cut
    previous_target = scenario.target(scenario.start)
    now = scenario.start
    while now < scenario.end:
        target = scenario.target(now)
        if target != previous_target and cut is not None:
            follow_worst = None  # the previous cut was never followed
            cut = None
        if target < previous_target * 0.9:
            cut = (now, target)
        previous_target = target
        down = {cid for cid, t0, t1 in scenario.outages if t0 <= now < t1}
        for bay in bays.values():
            present = next(
                (i for i, ev in enumerate(evs)
                 if ev.charger == bay.site.cid and ev.arrival <= now < ev.departure),
                None,
            )  # fmt: skip
            if present != bay.ev:
                bay.ev, bay.started, bay.on = present, False, False
                if present is not None:
                    bay.soc = evs[present].soc
            if bay.site.cid not in down or bay.sample is None:
                bay.sample = _sample(bay, evs, now)
        states = [
            ChargerState(bay.site.cid, bay.site.phases, bay.site.max_current,
                         step=bay.site.step, sample=bay.sample, fresh=cid not in down,
                         status="working" if cid not in down and bay.sample is not None
                         and bay.sample.usable else "not_working")
            for cid, bay in bays.items()
        ]  # fmt: skip
        limits = controller(target, states, scenario.fuse, now)
        grid = [0.0, 0.0, 0.0]
        power = 0.0
        wanting: list[tuple[int, _Bay, tuple[int, ...], float]] = []
        for cid, bay in bays.items():
            if cid not in down:
                bay.limit = min(max(0.0, limits.get(cid, 0.0)), bay.site.max_current)
            bay.draw = 0.0
            if bay.ev is None:
                continue
            ev = evs[bay.ev]
            n = min(ev.phases, len(bay.site.phases))
            can = min(ev_max(ev, bay.soc), bay.site.max_current)
            if bay.limit >= 6.0 - 1e-9:
                bay.draw = min(bay.limit, can)
            on = bay.limit >= 6.0 - 1e-9
            if bay.started and on != bay.on:
                result.switches += 1
            bay.started = bay.started or on
            bay.on = on
            phases = bay.site.phases[:n]
            for phase in phases:
                grid[phase - 1] += bay.draw
            watts = bay.draw * VOLTS * n
            power += watts
            delivered[bay.ev] += watts * STEP / HOUR
            bay.soc = min(1.0, bay.soc + watts * STEP / HOUR / ev.capacity_wh)
            if can > 0.5:
                wanting.append((bay.ev, bay, phases, can))
        over = max(grid) - scenario.fuse
        if over > 1e-6:
            result.violations += 1
            result.worst_over = max(result.worst_over, over)
        if power > target + TOLERANCE_W:
            result.overshoots += 1
        if cut is not None and power <= cut[1] + TOLERANCE_W:
            follow_worst = None if follow_worst is None else max(follow_worst, now - cut[0])
            cut = None
        _reference(wanting, scenario.fuse, target, window_d, window_r, window_n)
        window_steps += 1
        now += STEP
        if (now - scenario.start) % HOUR < STEP / 2 or now >= scenario.end:
            half = {i for i, n in window_n.items() if n >= window_steps / 2}
            jains.extend(_jain(window_d, {i: window_r[i] for i in half}))
            window_d.clear()
            window_r.clear()
            window_n.clear()
            window_steps = 0
    requested = [ev.capacity_wh * (1.0 - ev.soc) for ev in evs]
    result.energy_kwh = sum(delivered) / 1000.0
    result.share = sum(delivered) / sum(requested)
    result.worst_ev = min(d / r for d, r in zip(delivered, requested, strict=True) if r > 0)
    result.jain = sum(jains) / len(jains) if jains else 1.0
    result.follow = None if cut is not None else follow_worst
    result.runtime = time.perf_counter() - began
    return result


def _reference(
    wanting: Sequence[tuple[int, _Bay, tuple[int, ...], float]],
    fuse: float,
    target: float,
    delivered: dict[int, float],
    reference: dict[int, float],
    steps: dict[int, int],
) -> None:
    """Add one step's delivered and equal-split reference currents per wanting EV."""
    on_phase = [0, 0, 0]
    watts_per_amp = 0.0
    for _, _, phases, _ in wanting:
        for phase in phases:
            on_phase[phase - 1] += 1
        watts_per_amp += VOLTS * len(phases)
    for index, bay, phases, can in wanting:
        split = min(fuse / on_phase[phase - 1] for phase in phases)
        alone = 6.0 * VOLTS * len(phases) <= target and fuse >= 6.0
        share = min(can, split, target / watts_per_amp) if alone else 0.0
        steps[index] = steps.get(index, 0) + 1
        reference[index] = reference.get(index, 0.0) + share
        delivered[index] = delivered.get(index, 0.0) + bay.draw


def _jain(delivered: Mapping[int, float], reference: Mapping[int, float]) -> list[float]:
    """Jain's index of one window (empty when fewer than two EVs wanted power)."""
    xs = [min(1.0, delivered[i] / reference[i]) for i in reference if reference[i] > 0]
    squares = sum(x * x for x in xs)
    if len(xs) < 2 or squares == 0:
        return []
    return [sum(xs) ** 2 / (len(xs) * squares)]


# --- scenarios ----------------------------------------------------------------------
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


def ours() -> Controller:
    """Our distributor with default tuning, as a controller."""
    distributor = Distributor()

    def control(target: float, states: Sequence[ChargerState], fuse: float | None,
                now: float) -> Mapping[str, float]:  # fmt: skip
        return distributor.distribute(target, states, fuse, now).limits

    return control


def baseline() -> Controller:
    """The SDK-like baseline, as a controller."""
    return SdkLikeDistributor().distribute


def _row(name: str, r: Result) -> str:
    follow = "never" if r.follow is None else f"{r.follow:.0f}"
    return (
        f"| {name} | {r.energy_kwh:.1f} | {r.share:.1%} | {r.worst_ev:.1%} | {r.violations} "
        f"| {r.worst_over:.1f} | {r.overshoots} | {r.jain:.3f} | {r.switches} | {follow} |"
    )


def report(scenario: Scenario, mine: Result, theirs: Result) -> str:
    """A Markdown table comparing both runs of one scenario."""
    steps = int((scenario.end - scenario.start) / STEP)
    lines = [
        f"### {scenario.name}",
        f"{len(scenario.evs)} EV sessions, {len(scenario.sites)} chargers, {steps} steps of "
        f"{STEP:.0f} s.",
        "",
        "| distributor | energy kWh | share of requested | worst EV | fuse violations (steps) "
        "| worst over (A) | target overshoots | Jain | pause/resume | follow cut (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        _row("ours", mine),
        _row("SDK-like", theirs),
        "",
        f"Energy ours/baseline: {mine.energy_kwh / theirs.energy_kwh:.2f}",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run every scenario under both distributors and print the tables."""
    began = time.perf_counter()
    for make in SCENARIOS:
        scenario = make()
        print(report(scenario, run(scenario, ours()), run(scenario, baseline())))
        print()
    print(f"_Simulated in {time.perf_counter() - began:.1f} s._")


if __name__ == "__main__":
    main()
