"""Grid benchmark: EVs behind a 35 A main fuse shared with a measured house, simulated.

Run from the repository root: `python -m benchmarks.distribution_grid` (Markdown
tables, about 20 s) or `... --json`; `python -m benchmarks.distribution` prints these
tables after its own.

Deterministic (fixed seeds, simulated time in 5 s steps, no sleeping). A house with a
grid meter at its 35 A main fuse: base load, a heat pump that cycles (3 phases), a
stove and an oven at lunch and dinner, a kettle, a washing machine
(`house_load`). At each step the meter reads the house plus the EVs; the headroom
(gateway.core.headroom: fuse - margin - the meter's other loads, per phase) is the
distributor's per-phase limit; the EVs follow a new limit within the step, as the
gateway does within one resampling period. Runs compared on each scenario:

- "meter + switching": our distributor on the meter's headroom, the chargers may
  switch between 1 and 3 phases (pause 15 s at 0 A for each switch, as the gateway's
  switch sequence does: 5 s at 0 A, no load confirmed, register, 5 s to settle);
- "meter": the same without phase switching;
- "static 16 A": our distributor with a static 16 A per phase and no meter (what an
  installer configures for EVs behind a 35 A fuse without a meter);
- "SDK-like": the baseline (no phase limit at all) given the same static limit as a
  power cap (16 A x 3 x 230 V).

Scenarios: "house evening" - three 3-phase EVs (chargers wired L1-L2-L3, L2-L3-L1,
L3-L1-L2) come home 17:00-19:00 and leave at 07:00, the target is unlimited; "PV
surplus" - two 3-phase EVs at home 09:00-17:00, the target is the PV surplus of a
9 kWp roof on a partly cloudy day (sun and clouds in runs of minutes) minus the house.

Metrics: fuse violations [fuse_violations] (steps where the meter exceeds 35 A on any
phase) and the worst excess (A); energy [energy_kwh]; pauses per EV-hour
[pauses_per_ev_hour] (an EV that wants power crossing 6 A, its first start and the
pauses of phase switches not counted); phase switches per EV-hour
[phase_switches_per_ev_hour].
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sdk_baseline import SdkLikeDistributor
from gateway.core.headroom import GridLimits, grid_headroom
from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases
from gateway.distribution import ChargerState, DistributionConfig, Distributor
from gateway.meters.model import MeterSample

HOUR = 3600.0
STEP = 5.0
VOLTS = 230.0
FUSE = 35.0
MARGIN = 1.0
STATIC_LIMIT = 16.0
SWITCH_PAUSE = 15.0
"""Seconds a charger is at 0 A for one phase switch."""
WANTS = 0.5


@dataclass(frozen=True, slots=True)
class GridEv:
    """One EV at one charger: wiring, arrival, departure, battery, maximum."""

    charger: str
    wiring: tuple[int, int, int]
    arrival: float
    departure: float
    capacity_wh: float
    soc: float
    max_current: float = 16.0


@dataclass(frozen=True)
class GridScenario:
    """A day at one house: its EVs, its load per minute, its target per minute."""

    name: str
    evs: tuple[GridEv, ...]
    start: float
    end: float
    house: Callable[[float], tuple[float, float, float]]
    target: Callable[[float], float]


@dataclass(slots=True)
class GridResult:
    """The metrics of one run (see the module docstring)."""

    energy_kwh: float = 0.0
    violations: int = 0
    worst_over: float = 0.0
    pauses: int = 0
    switches: int = 0
    ev_hours: float = 0.0
    runtime: float = 0.0

    def figures(self) -> dict[str, Any]:
        """The machine-readable figures of `--json`."""
        return {
            "energy_kwh": round(self.energy_kwh, 3),
            "fuse_violations": self.violations,
            "worst_over_a": round(self.worst_over, 3),
            "pauses_per_ev_hour": round(self.pauses / self.ev_hours, 4),
            "phase_switches_per_ev_hour": round(self.switches / self.ev_hours, 4),
        }


def _minutes(seed: int, count: int, low: float, high: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(count)]


_NOISE = (_minutes(31, 1440, 0.0, 1.2), _minutes(32, 1440, 0.0, 1.2), _minutes(33, 1440, 0.0, 1.2))


def _on(hour: float, start: float, end: float) -> bool:
    return start <= hour < end


def house_load(now: float) -> tuple[float, float, float]:
    """A recorded-looking house (A per grid phase) at `now` (s since midnight, any day)."""
    hour = (now / HOUR) % 24.0
    minute = int(now // 60) % 1440
    load = [2.0 + _NOISE[p][minute] for p in range(3)]
    load[0] += 0.6  # fridge, router and standby on L1
    duty = 35 if _on(hour, 4.0, 9.0) else 15 if _on(hour, 11.0, 16.0) else 22
    if minute % 60 < duty:  # heat pump compressor, 3 phases
        for phase in range(3):
            load[phase] += 6.5
    if _on(hour, 11.75, 12.5):  # stove at lunch
        load[0] += 14.0
        load[1] += 7.0
    if _on(hour, 18.0, 19.0):  # oven, stove for the first half hour
        load[0] += 12.0
        load[1] += 14.0 if hour < 18.5 else 0.0
    if any(_on(hour, h, h + 0.05) for h in (7.0, 15.0, 20.5)):  # kettle
        load[2] += 9.5
    if _on(hour, 20.0, 21.5):  # washing machine: heater first, then the motor
        load[2] += 9.0 if hour < 20.33 else 1.0
    return (load[0], load[1], load[2])


_CLOUDS: list[float] = []


def _cloud_cover() -> list[float]:
    """Per minute of the day, the share of clear-sky PV getting through (seeded runs)."""
    if not _CLOUDS:
        rng = random.Random(7)
        clear = True
        for _ in range(1440):
            if rng.random() < (0.10 if clear else 0.16):
                clear = not clear
            _CLOUDS.append(1.0 if clear else rng.uniform(0.2, 0.45))
    return _CLOUDS


def pv_surplus(now: float) -> float:
    """W of PV beyond the house's own use: a 9 kWp roof on a partly cloudy day."""
    hour = (now / HOUR) % 24.0
    clear = 9000.0 * max(0.0, math.sin(math.pi * (hour - 6.0) / 14.0)) * 0.85
    pv = clear * _cloud_cover()[int(now // 60) % 1440]
    return max(0.0, pv - sum(house_load(now)) * VOLTS)


ROTATIONS = ((1, 2, 3), (2, 3, 1), (3, 1, 2))


def house_evening() -> GridScenario:
    """Three 3-phase EVs at a house overnight, unlimited target, 35 A main fuse."""
    rng = random.Random(41)
    evs = tuple(
        GridEv(f"home-{i + 1}", ROTATIONS[i], rng.uniform(17.0, 19.0) * HOUR, 31.0 * HOUR,
               rng.choice((58e3, 77e3, 82e3)), rng.uniform(0.15, 0.4))
        for i in range(3)
    )  # fmt: skip
    return GridScenario("A. house evening, 3 EVs, 35 A main fuse, measured house",
                        evs, 16.0 * HOUR, 31.0 * HOUR, house_load, lambda now: 1e9)  # fmt: skip


def pv_day() -> GridScenario:
    """Two 3-phase EVs at home on a partly cloudy day, charging from the PV surplus."""
    evs = (
        GridEv("pv-1", (1, 2, 3), 9.0 * HOUR, 17.0 * HOUR, 77e3, 0.3),
        GridEv("pv-2", (2, 3, 1), 9.5 * HOUR, 16.5 * HOUR, 58e3, 0.4),
    )
    return GridScenario("B. PV surplus, partly cloudy, 2 EVs, 35 A main fuse",
                        evs, 8.0 * HOUR, 18.0 * HOUR, house_load, pv_surplus)  # fmt: skip


SCENARIOS: tuple[Callable[[], GridScenario], ...] = (house_evening, pv_day)


@dataclass(slots=True)
class _Bay:
    ev: GridEv
    soc: float
    limit: float = 0.0
    draw: float = 0.0
    setting: int = 3
    switch_until: float | None = None
    started: bool = False
    on: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    """How one run decides: the name, and a controller per scenario."""

    name: str
    meter: bool
    switching: bool
    baseline: bool = False


RUNS = (
    Run("meter + switching", meter=True, switching=True),
    Run("meter", meter=True, switching=False),
    Run("static 16 A", meter=False, switching=False),
    Run("SDK-like", meter=False, switching=False, baseline=True),
)


def _sample(bay: _Bay, now: float, present: bool) -> ChargerSample:
    volts = Phases(VOLTS, VOLTS, VOLTS)
    if not present:
        return ChargerSample(now, 0.0, Phases(), volts, None, CableState.UNPLUGGED,
                             ComponentState.READY, bay.limit, Bounds(0.0, 0.0))  # fmt: skip
    n = bay.setting
    current = Phases(*[bay.draw if t < n else 0.0 for t in range(3)])
    state = ComponentState.CHARGING if bay.draw > 0 else ComponentState.READY
    return ChargerSample(now, bay.draw * VOLTS * n, current, volts, None, CableState.EV_LOCKED,
                         state, bay.limit, Bounds(0.0, 16.0 * VOLTS * 3))  # fmt: skip


@dataclass(slots=True)
class _Counters:
    delivered_wh: float = 0.0
    grid: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


def run(scenario: GridScenario, how: Run) -> GridResult:
    """Simulate one scenario one way; return its metrics."""
    began = time.perf_counter()
    bays = {ev.charger: _Bay(ev, ev.soc) for ev in scenario.evs}
    ours = Distributor(DistributionConfig())
    sdk = SdkLikeDistributor()
    limits = GridLimits(FUSE, MARGIN, max_age=60.0)
    result = GridResult()
    result.ev_hours = sum((ev.departure - ev.arrival) / HOUR for ev in scenario.evs)
    delivered = 0.0
    now = scenario.start
    while now < scenario.end:
        house = scenario.house(now)
        present = {cid: bay.ev.arrival <= now < bay.ev.departure for cid, bay in bays.items()}
        states = [
            ChargerState(cid, bay.ev.wiring, 16.0, sample=_sample(bay, now, present[cid]),
                         phase_switching=how.switching, phases_in_use=bay.setting,
                         switching=bay.switch_until is not None)
            for cid, bay in bays.items()
        ]  # fmt: skip
        own = [0.0, 0.0, 0.0]
        for bay in bays.values():
            for terminal in range(bay.setting):
                own[bay.ev.wiring[terminal] - 1] += bay.draw
        target = scenario.target(now)
        if how.baseline:
            decided = sdk.distribute(min(target, STATIC_LIMIT * 3 * VOLTS), states, None, now)
            phases = {cid: bay.setting for cid, bay in bays.items()}
        else:
            fuse: float | tuple[float, float, float] = STATIC_LIMIT
            if how.meter:
                meter = Phases(*(h + e for h, e in zip(house, own, strict=True)))
                headroom = grid_headroom(limits, MeterSample(now, now, meter), Phases(*own), now)
                fuse = headroom.headroom.as_tuple()
            allocation = ours.distribute(target, states, fuse, now)
            decided, phases = allocation.limits, allocation.phases
        grid = list(house)
        for cid, bay in bays.items():
            delivered += _step(bay, decided.get(cid, 0.0), phases[cid], present[cid], now, result)
            for terminal in range(bay.setting):
                grid[bay.ev.wiring[terminal] - 1] += bay.draw
        over = max(grid) - FUSE
        if over > 1e-6:
            result.violations += 1
            result.worst_over = max(result.worst_over, over)
        now += STEP
    result.energy_kwh = delivered / 1000.0
    result.runtime = time.perf_counter() - began
    return result


def _step(bay: _Bay, limit: float, phases: int, present: bool, now: float,
          result: GridResult) -> float:  # fmt: skip
    """Apply one decision to one bay; returns the Wh delivered in the step."""
    if bay.switch_until is not None and now >= bay.switch_until:
        bay.switch_until = None
    if bay.switch_until is None and phases != bay.setting:
        bay.setting, bay.switch_until = phases, now + SWITCH_PAUSE
        result.switches += present
    switching = bay.switch_until is not None
    bay.limit = 0.0 if switching else min(max(limit, 0.0), 16.0)
    can = bay.ev.max_current * max(0.0, min(1.0, (1.0 - bay.soc) / 0.2)) if present else 0.0
    bay.draw = min(bay.limit, can) if bay.limit >= 6.0 - 1e-9 else 0.0
    on = limit >= 6.0 - 1e-9
    if present and bay.started and on != bay.on and can > WANTS:
        result.pauses += 1
    bay.started = bay.started or (present and on)
    bay.on = on
    if not present:
        bay.started = False
        return 0.0
    wh = bay.draw * VOLTS * bay.setting * STEP / HOUR
    bay.soc = min(1.0, bay.soc + wh / bay.ev.capacity_wh)
    return wh


def report(scenario: GridScenario, results: Sequence[tuple[Run, GridResult]]) -> str:
    """A Markdown table of every run of one scenario."""
    steps = int((scenario.end - scenario.start) / STEP)
    lines = [
        f"### {scenario.name}",
        f"{len(scenario.evs)} EVs, {steps} steps of {STEP:.0f} s.",
        "",
        "| run | fuse violations at the meter (steps) | worst over (A) | energy kWh "
        "| pauses/EV-hour | phase switches/EV-hour |",
        "|---|---|---|---|---|---|",
    ]
    for how, r in results:
        f = r.figures()
        lines.append(
            f"| {how.name} | {r.violations} | {r.worst_over:.1f} | {r.energy_kwh:.1f} "
            f"| {f['pauses_per_ev_hour']:.2f} | {f['phase_switches_per_ev_hour']:.2f} |"
        )
    return "\n".join(lines)


def run_all() -> list[tuple[GridScenario, list[tuple[Run, GridResult]]]]:
    """Every grid scenario under every run."""
    out = []
    for make in SCENARIOS:
        scenario = make()
        out.append((scenario, [(how, run(scenario, how)) for how in RUNS]))
    return out


def as_json(results: Sequence[tuple[GridScenario, list[tuple[Run, GridResult]]]]) -> list[Any]:
    """The `--json` rows: per scenario, the figures of each run by name."""
    return [
        {"name": scenario.name, "runs": {how.name: r.figures() for how, r in runs}}
        for scenario, runs in results
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the grid scenarios; print tables or one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distribution_grid")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    results = run_all()
    if args.json:
        print(json.dumps({"grid_scenarios": as_json(results)}))
        return
    for scenario, runs in results:
        print(report(scenario, runs))
        print()
    print(f"_Simulated in {time.perf_counter() - began:.1f} s._")


if __name__ == "__main__":
    main()
