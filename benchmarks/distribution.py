"""Distribution benchmark: our `Distributor` against an SDK-like baseline, simulated.

Run from the repository root: `python -m benchmarks.distribution` (Markdown tables,
about a minute) or `... --json` (one JSON object, `{"scenarios": [{"name", "ours":
{...}, "baseline": {...}}]}` with the metrics named below in brackets).

Deterministic (fixed seeds, simulated time in 5 s steps, no sleeping). A site has a
fuse per grid phase, chargers wired with phase rotations, and EVs that arrive, charge
and leave (`benchmarks.distribution_scenarios`). Each step both distributors see the
same charger states; the simulated charger applies the limit (unless its link is
down) and the EV draws min(limit, its own maximum, the charger's maximum) on its
phases - nothing below 6 A (IEC 61851) nor below its own minimum (8 A for a share of
3-phase EVs), and nothing while asleep: a share of EVs (15 %) fall asleep after
10 min without drawing and wake only on a 0 -> on -> 0 -> on toggle. An EV's maximum
falls linearly from 100 % at 80 % state of charge to 0 at 100 %. 230 V everywhere.

Metrics (per run):
- energy [energy_kwh]: kWh delivered; share: delivered / requested (requested =
  what each EV needed to reach 100 %); worst EV: the lowest such share of any EV.
- fuse [fuse_violations]: steps where any grid phase's actual current exceeds the
  fuse, and the worst excess (A). overshoot: steps where power > target + 100 W.
- Jain [jain]: fairness over the whole session. At each step, an EV that wants power
  has a reference share: the current it would get if every constraint were split
  equally among the EVs that use it - min(what it can take, fuse / EVs on each of its
  grid phases, target / sum of every wanting EV's W per A), or 0 when even alone its
  6 A minimum would not fit the target. Per EV, x = min(1, delivered current /
  reference current), both summed over its session; Jain = (sum x)^2 / (n sum x^2).
  [jain_hourly] is the same per one-hour window (EVs that wanted power for at least
  half of it, windows with two or more), averaged: it punishes taking turns in slots
  longer than an hour, which is the price of few pauses.
- pauses [pauses_per_ev_day]: pauses and resumes (the limit crossing 6 A) of an EV
  that wants power, its first start not counted, per EV session (sessions are under a
  day here; a longer one would count as several days).
- stalled [stalled_evs]: EV sessions that end asleep while offered 6 A or more and
  still wanting power. lost [energy_lost_kwh]: energy offered but not drawn because
  the EV was asleep or the limit was below its own minimum.
- follow: worst time (s) from a target cut of 10 % or more until the actual power is
  at or below the new target (0 = the same step); "never" if not before the next
  target change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import distribution_scenarios as scenarios
from benchmarks.distribution_scenarios import HOUR, SLEEP_AFTER, Ev, Scenario, Site
from benchmarks.sdk_baseline import SdkLikeDistributor
from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases
from gateway.core.status import ChargerStatus
from gateway.distribution import ChargerState, Distributor

__all__ = ["SCENARIOS", "Ev", "Scenario", "Site", "baseline", "ours", "report", "run"]

STEP = 5.0
VOLTS = 230.0
TOLERANCE_W = 100.0
WANTS = 0.5
"""An EV that can take more than this (A) wants power."""
Controller = Callable[[float, Sequence[ChargerState], float | None, float], Mapping[str, float]]


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
    jain_hourly: float = 1.0
    switches: int = 0
    pauses_per_ev_day: float = 0.0
    stalled_evs: int = 0
    energy_lost_kwh: float = 0.0
    follow: float | None = 0.0
    runtime: float = 0.0

    def figures(self) -> dict[str, Any]:
        """The machine-readable figures of `--json`."""
        return {
            "energy_kwh": round(self.energy_kwh, 3),
            "fuse_violations": self.violations,
            "jain": round(self.jain, 4),
            "jain_hourly": round(self.jain_hourly, 4),
            "pauses_per_ev_day": round(self.pauses_per_ev_day, 3),
            "stalled_evs": self.stalled_evs,
            "energy_lost_kwh": round(self.energy_lost_kwh, 3),
            "share": round(self.share, 4),
            "worst_over_a": round(self.worst_over, 3),
            "target_overshoots": self.overshoots,
            "follow_s": self.follow,
        }


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
    quiet: float = 0.0
    """Seconds the EV has drawn nothing."""
    asleep: bool = False
    wake_stage: int = 0
    """While asleep: 1 after being offered power, 2 after the following 0."""


@dataclass(slots=True)
class _Fairness:
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
        self.hourly.extend(_jain(self.hour_d, {i: self.hour_r[i] for i in half}))
        self.hour_d.clear()
        self.hour_r.clear()
        self.hour_n.clear()
        self.hour_steps = 0


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


def _ev_step(bay: _Bay, ev: Ev, can: float) -> tuple[float, float]:
    """Apply the limit to the EV for one step: (current drawn, current offered but lost)."""
    offered = bay.limit >= 6.0 - 1e-9
    if bay.asleep:
        if offered and bay.wake_stage != 1:
            bay.wake_stage += 1
        elif not offered and bay.wake_stage == 1:
            bay.wake_stage = 2
        if bay.wake_stage == 3:
            bay.asleep, bay.wake_stage = False, 0
    usable = offered and bay.limit >= ev.min_current - 1e-9 and not bay.asleep
    draw = min(bay.limit, can) if usable else 0.0
    lost = min(bay.limit, can) if offered and not usable else 0.0
    bay.quiet = 0.0 if draw > 0 else bay.quiet + STEP
    if ev.sleepy and not bay.asleep and bay.quiet > SLEEP_AFTER:
        bay.asleep, bay.wake_stage = True, 0
    return draw, lost


def run(scenario: Scenario, controller: Controller) -> Result:
    """Simulate one scenario under one distributor; return its metrics."""
    began = time.perf_counter()
    bays = {site.cid: _Bay(site) for site in scenario.sites}
    evs = scenario.evs
    sessions: dict[str, list[int]] = {site.cid: [] for site in scenario.sites}
    for index, ev in enumerate(evs):
        sessions[ev.charger].append(index)
    result = Result()
    delivered = [0.0] * len(evs)
    lost_wh = 0.0
    fairness = _Fairness()
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
                (i for i in sessions[bay.site.cid] if evs[i].arrival <= now < evs[i].departure),
                None,
            )
            if present != bay.ev:
                if bay.ev is not None:
                    result.stalled_evs += _stalled(bay, evs[bay.ev])
                bay.ev, bay.started, bay.on = present, False, False
                bay.quiet, bay.asleep, bay.wake_stage = 0.0, False, 0
                if present is not None:
                    bay.soc = evs[present].soc
            if bay.site.cid not in down or bay.sample is None:
                bay.sample = _sample(bay, evs, now)
        states = [
            ChargerState(bay.site.cid, bay.site.phases, bay.site.max_current,
                         step=bay.site.step, sample=bay.sample, fresh=cid not in down,
                         status=ChargerStatus.WORKING if cid not in down and bay.sample
                         is not None and bay.sample.usable else ChargerStatus.NOT_WORKING)
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
            bay.draw, lost = _ev_step(bay, ev, can)
            on = bay.limit >= 6.0 - 1e-9
            if bay.started and on != bay.on and can > WANTS:
                result.switches += 1
            bay.started = bay.started or on
            bay.on = on
            phases = bay.site.phases[:n]
            for phase in phases:
                grid[phase - 1] += bay.draw
            watts = bay.draw * VOLTS * n
            power += watts
            delivered[bay.ev] += watts * STEP / HOUR
            lost_wh += lost * VOLTS * n * STEP / HOUR
            bay.soc = min(1.0, bay.soc + watts * STEP / HOUR / ev.capacity_wh)
            if can > WANTS:
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
        _reference(wanting, scenario.fuse, target, fairness)
        fairness.hour_steps += 1
        now += STEP
        if (now - scenario.start) % HOUR < STEP / 2 or now >= scenario.end:
            fairness.close_hour()
    for bay in bays.values():
        if bay.ev is not None:
            result.stalled_evs += _stalled(bay, evs[bay.ev])
    requested = [ev.capacity_wh * (1.0 - ev.soc) for ev in evs]
    days = sum(max(1.0, (min(ev.departure, scenario.end) - ev.arrival) / 86400.0) for ev in evs)
    result.energy_kwh = sum(delivered) / 1000.0
    result.share = sum(delivered) / sum(requested)
    result.worst_ev = min(d / r for d, r in zip(delivered, requested, strict=True) if r > 0)
    session = _jain(fairness.session_d, fairness.session_r)
    result.jain = session[0] if session else 1.0
    hourly = fairness.hourly
    result.jain_hourly = sum(hourly) / len(hourly) if hourly else 1.0
    result.pauses_per_ev_day = result.switches / days
    result.energy_lost_kwh = lost_wh / 1000.0
    result.follow = None if cut is not None else follow_worst
    result.runtime = time.perf_counter() - began
    return result


def _stalled(bay: _Bay, ev: Ev) -> int:
    """1 if the session ends asleep, offered power and still wanting it."""
    wants = min(ev_max(ev, bay.soc), bay.site.max_current) > WANTS
    return int(bay.asleep and bay.limit >= 6.0 - 1e-9 and wants)


def _reference(
    wanting: Sequence[tuple[int, _Bay, tuple[int, ...], float]],
    fuse: float,
    target: float,
    fairness: _Fairness,
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
        fairness.add(index, bay.draw, share)


def _jain(delivered: Mapping[int, float], reference: Mapping[int, float]) -> list[float]:
    """Jain's index of one window (empty when fewer than two EVs wanted power)."""
    xs = [min(1.0, delivered[i] / reference[i]) for i in reference if reference[i] > 0]
    squares = sum(x * x for x in xs)
    if len(xs) < 2 or squares == 0:
        return []
    return [sum(xs) ** 2 / (len(xs) * squares)]


def _realistic(make: Callable[[], Scenario]) -> Callable[[], Scenario]:
    def build() -> Scenario:
        return scenarios.realistic(make())

    build.__name__ = make.__name__
    build.__doc__ = make.__doc__
    return build


above_fuse = _realistic(scenarios.above_fuse)
SCENARIOS: tuple[Callable[[], Scenario], ...] = tuple(map(_realistic, scenarios.SCENARIOS))
"""Every scenario, with the default shares of sleepy and 8 A-minimum EVs."""


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
        f"| {r.worst_over:.1f} | {r.overshoots} | {r.jain:.3f} | {r.jain_hourly:.3f} "
        f"| {r.pauses_per_ev_day:.1f} | {r.stalled_evs} | {r.energy_lost_kwh:.1f} | {follow} |"
    )


def report(scenario: Scenario, mine: Result, theirs: Result) -> str:
    """A Markdown table comparing both runs of one scenario."""
    steps = int((scenario.end - scenario.start) / STEP)
    sleepy = sum(ev.sleepy for ev in scenario.evs)
    high = sum(ev.min_current > 6.0 for ev in scenario.evs)
    lines = [
        f"### {scenario.name}",
        f"{len(scenario.evs)} EV sessions ({sleepy} sleepy, {high} with a minimum above 6 A), "
        f"{len(scenario.sites)} chargers, {steps} steps of {STEP:.0f} s.",
        "",
        "| distributor | energy kWh | share of requested | worst EV | fuse violations (steps) "
        "| worst over (A) | target overshoots | Jain session | Jain hourly "
        "| pauses/EV/day | stalled EVs | lost kWh | follow cut (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        _row("ours", mine),
        _row("SDK-like", theirs),
        "",
        f"Energy ours/baseline: {mine.energy_kwh / theirs.energy_kwh:.2f}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every scenario under both distributors; print tables or one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distribution")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sleepy-share", type=float, default=scenarios.SLEEPY_SHARE)
    parser.add_argument("--high-min-share", type=float, default=scenarios.HIGH_MIN_SHARE)
    parser.add_argument("--only", type=int, nargs="+", help="scenario numbers (1-based)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for number, make in enumerate(scenarios.SCENARIOS, 1):
        if args.only and number not in args.only:
            continue
        scenario = scenarios.realistic(make(), args.sleepy_share, args.high_min_share)
        mine, theirs = run(scenario, ours()), run(scenario, baseline())
        rows.append({"name": scenario.name, "ours": mine.figures(), "baseline": theirs.figures()})
        if not args.json:
            print(report(scenario, mine, theirs))
            print()
    if args.json:
        print(json.dumps({"scenarios": rows}))
    else:
        print(f"_Simulated in {time.perf_counter() - began:.1f} s._")


if __name__ == "__main__":
    main()
