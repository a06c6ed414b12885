"""Admission plus max-min filling over the controllable EVs, with a reason for each.

Takes the EVs that may charge (`EvView`, prepared by the distributor), the capacity
of every link (grid phases 1..3 and the power target) left after uncontrolled
chargers' reserves, and returns each EV's limit, decision code and reason.

Idle EVs (drawing nothing) are admitted last; if they then hold current that an EV
that draws could use, they are paused and the sharing is done once more without them.
An EV in the 0 half of a wake-up toggle gets 0 with its minimum kept free, so the
"on" half that follows fits without cutting anyone.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.distribution.admission import Candidate, Priority, admit, priority_of
from gateway.distribution.config import DistributionConfig
from gateway.distribution.model import ChargerState, DecisionCode, ResumeState
from gateway.distribution.tracking import ChargerMemory
from gateway.distribution.waterfill import Flow, fill_in_steps, floor_to_step

POWER = "power"
"""Link key of the power target; grid phases are the links 1, 2 and 3."""

_EPS = 1e-9


@dataclass(slots=True)
class EvView:
    """A controllable EV during one call."""

    state: ChargerState
    memory: ChargerMemory
    grid: tuple[int, ...]
    """Grid phases the EV may draw on."""
    watts_per_amp: float
    """Power per ampere: the sum of the voltages of the EV's phases."""
    minimum: float
    upper: float
    """Highest limit apart from the ramp: charger maximum or reclaim cap."""
    ceiling: float
    """Highest limit this call: `upper` or less while ramping."""
    draw: float
    idle: bool
    setting: int = 3
    """The charger's phase setting now: 1 (its L1 only) or its wired count."""
    other: tuple[tuple[int, ...], float] | None = None
    """For a charger that may switch phases: (grid phases, W per A) of the EV on the
    other setting; None when it may not switch (or the EV draws on one phase anyway)."""
    _usage: dict[Hashable, float] | None = field(default=None, init=False, repr=False)
    """`usage()` once built (not an init field: `dataclasses.replace` builds it anew)."""

    @property
    def key(self) -> str:
        """The charger id."""
        return self.state.charger_id

    @property
    def charging(self) -> bool:
        """True when the EV was given current at the previous call."""
        return self.memory.on_since is not None and self.memory.limit > 0

    def usage(self) -> Mapping[Hashable, float]:
        """Link capacity used per ampere: 1 A on each grid phase, W per A of the target.
        Built once per view; read-only."""
        usage = self._usage
        if usage is None:
            usage = {phase: 1.0 for phase in self.grid}
            usage[POWER] = self.watts_per_amp
            self._usage = usage
        return usage


Outcome = tuple[EvView, float, DecisionCode, str]
"""An EV, its limit (A), the decision code and the reason."""


def _since(moment: float | None, now: float) -> float:
    """A remembered moment, or `now` when there is none (0.0 is a valid moment)."""
    return now if moment is None else moment


def _link_name(link: Hashable) -> str:
    return "target power" if link == POWER else f"L{link}"


def share(
    evs: Sequence[EvView],
    capacity: Mapping[Hashable, float],
    now: float,
    config: DistributionConfig,
) -> list[Outcome]:
    """Each EV's limit, code and reason; never exceeds any link's capacity."""
    outcomes: list[Outcome] = []
    candidates: list[Candidate] = []
    views = {ev.key: ev for ev in evs}
    room = dict(capacity)
    waking: set[str] = set()
    for ev in evs:
        memory = ev.memory
        if memory.wake_off_since is not None:
            if ev.charging or now - memory.wake_off_since < config.wake_pause:
                attempt = f"attempt {memory.wake_attempt} of {config.wake_attempts}"
                reason = f"waking: drew nothing after a start; at 0 for a wake-up ({attempt})"
                outcomes.append((ev, 0.0, DecisionCode.WAKING, reason))
                for link, coef in ev.usage().items():
                    room[link] = room.get(link, float("inf")) - coef * ev.minimum
                continue
            waking.add(ev.key)
        elif not ev.charging and ev.idle:
            reason = "paused: EV idle (drew nothing); offered power again later"
            outcomes.append((ev, 0.0, DecisionCode.PAUSED_IDLE, reason))
            continue
        elif not ev.charging and memory.off_since is not None:
            left = config.min_off_time - (now - memory.off_since)
            if left > 0:
                reason = f"paused: min off time ({left:.0f} s left)"
                outcomes.append((ev, 0.0, DecisionCode.PAUSED_MIN_OFF, reason))
                continue
        priority, rank, starving = priority_of(
            on_since=memory.on_since if ev.charging else None,
            waiting_since=memory.waiting_since,
            waited=memory.waited,
            keep=memory.no_resume,
            waking=ev.key in waking,
            idle=ev.idle,
            now=now,
            min_on_time=config.min_on_time,
            rotation_period=config.rotation_period,
        )
        candidates.append(Candidate(ev.key, priority, rank, ev.minimum, ev.usage(), starving))

    excluded: set[str] = set()
    while True:
        pool = [c for c in candidates if c.key not in excluded]
        admitted, refused = admit(pool, room)
        flows = [
            Flow(
                key,
                views[key].minimum,
                views[key].ceiling,
                views[key].state.step,
                views[key].usage(),
            )
            for key in admitted
        ]
        currents = fill_in_steps(flows, room, order=admitted)
        starved = any(
            currents[key] < floor_to_step(views[key].ceiling, views[key].state.step) - _EPS
            for key in admitted
            if not views[key].idle
        )
        idle = {
            key
            for key in admitted
            if views[key].idle
            and now - _since(views[key].memory.on_since, now) >= config.min_on_time
        } - excluded
        if excluded or not starved or not idle:
            break
        excluded = idle

    used: dict[Hashable, float] = {}
    for flow in flows:
        for link, coef in flow.usage.items():
            used[link] = used.get(link, 0.0) + coef * currents[flow.key]
    priorities = {c.key: c.priority for c in candidates}
    started = any(priorities[key] == Priority.WAITING for key in admitted)
    for key in admitted:
        ev = views[key]
        code, reason = _admitted_reason(ev, currents[key], used, room, config)
        if key in waking:
            attempt = f"attempt {ev.memory.wake_attempt} of {config.wake_attempts}"
            reason = f"waking: on again at {ev.minimum:.1f} A minimum ({attempt}); {reason}"
        elif not ev.charging:
            waited = now - _since(ev.memory.waiting_since, now)
            reason = f"started after waiting {waited:.0f} s; {reason}"
        outcomes.append((ev, currents[key], code, reason))
    queue = 0
    for key in [*refused, *sorted(excluded)]:
        ev = views[key]
        code, reason = _refused_reason(ev, priorities[key], key in excluded, started, now, config)
        if code == DecisionCode.WAITING:
            queue += 1
            reason += f" (queue position {queue})"
        outcomes.append((ev, 0.0, code, reason))
    return [
        (ev, amps, code, f"{reason}; stalled: drew nothing after every wake-up")
        if ev.memory.resume == ResumeState.STALLED
        else (ev, amps, code, reason)
        for ev, amps, code, reason in outcomes
    ]


def _admitted_reason(
    ev: EvView,
    current: float,
    used: Mapping[Hashable, float],
    capacity: Mapping[Hashable, float],
    config: DistributionConfig,
) -> tuple[DecisionCode, str]:
    step = ev.state.step
    if current < floor_to_step(ev.ceiling, step) - _EPS:
        full = [
            _link_name(link)
            for link, coef in ev.usage().items()
            if used.get(link, 0.0) + coef * step > capacity.get(link, float("inf")) + _EPS
        ]
        by = ", ".join(full) if full else "rounding"
        return DecisionCode.CHARGING, f"charging: fair share {current:.1f} A (limited by {by})"
    if ev.ceiling < ev.upper - _EPS:
        return (
            DecisionCode.RAMPING,
            f"ramping up: {current:.1f} A towards {ev.upper:.1f} A (+{config.ramp_up_rate:g} A/s)",
        )
    if ev.memory.cap is not None and ev.upper <= ev.memory.cap + _EPS:
        return (
            DecisionCode.RECLAIMED,
            f"reclaimed: draws {ev.draw:.1f} A, capped at {current:.1f} A",
        )
    return DecisionCode.AT_MAXIMUM, f"at charger maximum {current:.1f} A"


def _refused_reason(
    ev: EvView,
    priority: Priority,
    excluded: bool,
    started: bool,
    now: float,
    config: DistributionConfig,
) -> tuple[DecisionCode, str]:
    minimum = f"{ev.minimum:.1f} A"
    if excluded or priority == Priority.IDLE:
        return (
            DecisionCode.PAUSED_IDLE,
            "paused: EV idle (drew nothing); current given to EVs that draw",
        )
    if ev.charging:
        charged = now - _since(ev.memory.on_since, now)
        if priority == Priority.DUE and started:
            return (
                DecisionCode.PAUSED_ROTATION,
                f"paused: charged {charged:.0f} s; yields to an EV that waited longer",
            )
        overridden = " (min on time overridden)" if charged < config.min_on_time else ""
        return (
            DecisionCode.PAUSED_LIMIT,
            f"paused: target or phase limit leaves no room for {minimum}{overridden}",
        )
    waited = now - _since(ev.memory.waiting_since, now)
    return DecisionCode.WAITING, f"waiting {waited:.0f} s: no room for {minimum}"
