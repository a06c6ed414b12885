"""The EV power distributor: a target power and a fuse in, per-charger limits out.

One call (`Distributor.distribute`) does, in order:

1. Classify each charger. Unplugged, not working, or unable to reach the minimum:
   0, nothing reserved (a not-working charger that still draws has its draw
   reserved). Stale (no fresh data) or uncertain (a write failed): its limit is held,
   never raised, and because it cannot be commanded reliably it is assumed to draw
   the highest of its last commanded limit, its last readback and its last measured
   current, on every wired phase; that reserve uses fuse and target headroom first.
   Everything else is a controllable EV.
2. Learn from each EV's measurement (`tracking`): its phases, reclaim cap, idleness,
   whether it resumed after a start (else a wake-up toggle, see `ResumeState`), and
   its deficit (time waited this session).
3. Admit EVs at their minimum in a fair, stable order (`admission`), then share the
   rest max-min fairly in amperes per phase (`waterfill`, via `sharing`). The links
   are the three grid phases (capacity: phase limit minus reserves) and the power
   target (an EV uses W per A = the sum of its phases' voltages). An EV's ceiling is
   the lowest of its charger's maximum, its reclaim cap and its ramp (last limit plus
   `ramp_up_rate` x elapsed seconds). Nothing holds a limit up: cuts are immediate.
   Fairness is in amperes per phase, the quantity a charger limits: at the same
   current a 3-phase EV draws three times the power of a 1-phase one.
4. Remember on/off times, limits and waiting times for the next call.

Guarantee: the limits plus reserves never exceed the phase limit on any grid phase
nor the target power - unless the reserves of uncontrolled chargers exceed a limit
by themselves. Then every controlled EV on that link gets 0 (admission cannot fit
it) and the uncontrolled chargers on it are commanded 0 too, in case that gets
through; `Allocation.notes` says so.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from gateway.core.model import Phases
from gateway.core.status import ChargerStatus
from gateway.distribution.config import DistributionConfig
from gateway.distribution.model import (
    Allocation,
    ChargerDecision,
    ChargerState,
    DecisionCode,
    PhaseLimit,
)
from gateway.distribution.phases import switch_phases
from gateway.distribution.sharing import POWER, EvView, share
from gateway.distribution.tracking import (
    ChargerMemory,
    ev_terminals,
    measured_currents,
    update_idle,
    update_reclaim,
    update_resume,
)
from gateway.distribution.waterfill import ceil_to_step, floor_to_step


@dataclass(frozen=True, slots=True)
class _Held:
    """An uncontrolled charger: the limit it keeps and the current reserved for it."""

    limit: float
    reserve: float
    code: DecisionCode
    reason: str
    grid: tuple[int, ...] | None = None
    """Grid phases the reserve is on; None: every wired phase."""


def _volts(state: ChargerState, terminal: int, nominal: float) -> float:
    """Measured voltage of a terminal, or the nominal one when it is missing or absurd."""
    if state.sample is None:
        return nominal
    value = state.sample.voltage.as_tuple()[terminal]
    return value if math.isfinite(value) and value > 50.0 else nominal


def _fuses(phase_limit: PhaseLimit | None) -> tuple[float, float, float]:
    """The limit of each grid phase (A): inf for none or NaN, never below 0."""
    if phase_limit is None:
        return (math.inf, math.inf, math.inf)
    values = phase_limit if isinstance(phase_limit, tuple) else (phase_limit,) * 3
    if len(values) != 3:
        raise ValueError(f"phase_limit: one value or three (L1, L2, L3), got {phase_limit!r}")
    a, b, c = (math.inf if math.isnan(value) else max(value, 0.0) for value in values)
    return (a, b, c)


def _phase_names(phases: Sequence[int]) -> str:
    return ", ".join(f"L{phase}" for phase in sorted(phases))


def _terminal_volts(state: ChargerState, nominal: float) -> tuple[float, ...]:
    """Each wired terminal's voltage (`_volts`), computed once per call."""
    return tuple(_volts(state, t, nominal) for t in range(len(state.phases)))


def _grid_and_watts(
    state: ChargerState, terminals: Iterable[int], volts: Sequence[float]
) -> tuple[tuple[int, ...], float]:
    """The grid phases of some of a charger's terminals, and their W per A (`volts`:
    each terminal's voltage)."""
    chosen = set(terminals)
    phases = state.phases
    return tuple(sorted({phases[t] for t in chosen})), sum(volts[t] for t in chosen)


def _zero(
    state: ChargerState, grid: tuple[int, ...], code: DecisionCode, reason: str, phases: int
) -> ChargerDecision:
    """A final 0 A for a charger the distributor does not share to."""
    return ChargerDecision(state.charger_id, 0.0, code, reason, grid, len(grid), 0.0, phases=phases)


def _on_phases(phases: Sequence[int], amps: float) -> Phases:
    values = [0.0, 0.0, 0.0]
    for phase in phases:
        values[phase - 1] += amps
    return Phases(*values)


class Distributor:
    """Turns a target power and a per-phase fuse into fair per-charger current limits.

    Stateful (admission order, on/off times, last limits, reclaim caps) yet pure: no
    I/O, no clock of its own (pass `now` in seconds; it should not go backwards). One
    instance per pool. The module docstring lists the steps; `DistributionConfig`
    the tuning.
    """

    def __init__(self, config: DistributionConfig | None = None) -> None:
        self._config = config or DistributionConfig()
        self._memory: dict[str, ChargerMemory] = {}
        self._last_now: float | None = None

    @property
    def config(self) -> DistributionConfig:
        """The tuning in use."""
        return self._config

    def distribute(
        self,
        target_power: float,
        chargers: Sequence[ChargerState],
        phase_limit: PhaseLimit | None,
        now: float,
    ) -> Allocation:
        """Every charger's current limit for a target power (W) and a phase limit (A).

        `phase_limit` is one limit for every grid phase, or a tuple of three (L1, L2,
        L3; e.g. a fuse minus what other loads draw per phase); None or NaN means no
        limit on that phase, a negative limit counts as 0. A NaN or negative target counts as
        0 W (nothing may charge), +inf as unlimited. Charger ids must be unique;
        chargers no longer passed are forgotten.
        """
        elapsed = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now if self._last_now is None else max(now, self._last_now)
        target = target_power if target_power > 0 else 0.0  # NaN > 0 is False
        fuses = _fuses(phase_limit)
        ids = [state.charger_id for state in chargers]
        if len(set(ids)) != len(ids):
            raise ValueError("chargers: duplicate charger ids")
        for gone in set(self._memory) - set(ids):
            del self._memory[gone]

        decisions: dict[str, ChargerDecision] = {}
        held: list[tuple[ChargerState, _Held, float]] = []
        evs: list[EvView] = []
        reserved = [0.0, 0.0, 0.0]
        reserved_power = 0.0
        for state in chargers:
            memory = self._memory.setdefault(state.charger_id, ChargerMemory())
            outcome = self._classify(state, memory, now, elapsed)
            if isinstance(outcome, EvView):
                evs.append(outcome)
            elif isinstance(outcome, _Held):
                nominal = state.nominal_voltage or self._config.nominal_voltage
                grid = outcome.grid or state.phases
                volts = sum(_volts(state, t, nominal) for t in range(len(grid)))
                held.append((state, outcome, volts))
                for phase in grid:
                    reserved[phase - 1] += outcome.reserve
                reserved_power += outcome.reserve * volts
            else:
                decisions[state.charger_id] = outcome
                self._remember(memory, 0.0, now)

        capacity: dict[Hashable, float] = {
            phase: fuses[phase - 1] - reserved[phase - 1] for phase in (1, 2, 3)
        }
        capacity[POWER] = target - reserved_power
        overloaded = {link for link, cap in capacity.items() if cap < 0}

        for state, hold, volts in held:
            limit, reason = hold.limit, hold.reason
            grid = hold.grid or state.phases
            if {*grid, POWER} & overloaded and limit > 0:
                limit, reason = 0.0, f"{reason}; reserves exceed a limit: commanded 0"
            memory = self._memory[state.charger_id]
            decisions[state.charger_id] = ChargerDecision(
                state.charger_id,
                limit,
                hold.code,
                reason,
                tuple(sorted(grid)),
                len(grid),
                hold.reserve * volts,
                controlled=False,
                reserved=_on_phases(grid, hold.reserve),
                resume=memory.resume,
                phases=memory.switch_to or state.setting,
            )
            if hold.code != DecisionCode.PHASE_SWITCH:
                self._remember(memory, limit, now)

        outcomes = share(evs, capacity, now, self._config)
        outcomes, switching = switch_phases(
            evs,
            outcomes,
            capacity,
            lambda views, links: share(views, links, now, self._config),
            now,
            self._config,
        )
        for ev, current, code, reason in outcomes:
            decisions[ev.key] = ChargerDecision(
                ev.key, current, code, reason, ev.grid, len(ev.grid),
                current * ev.watts_per_amp, resume=ev.memory.resume, phases=ev.setting,
            )  # fmt: skip
            if ev.key in switching:
                ev.memory.switched_at = now
                ev.memory.switch_to = ev.setting
            self._remember(ev.memory, current, now)

        ordered = {cid: decisions[cid] for cid in ids}
        totals = list(reserved)
        power = reserved_power
        for decision in ordered.values():
            if decision.controlled:
                for phase in decision.grid_phases:
                    totals[phase - 1] += decision.current
                power += decision.power
        notes = tuple(
            "reserves of uncontrolled chargers alone exceed the "
            + ("target power" if link == POWER else f"L{link} limit")
            for link in sorted(overloaded, key=str)
        )
        return Allocation(
            now, target, phase_limit, ordered, power, Phases(*totals),
            Phases(*reserved), reserved_power, notes,
        )  # fmt: skip

    def _classify(
        self, state: ChargerState, memory: ChargerMemory, now: float, elapsed: float
    ) -> EvView | _Held | ChargerDecision:
        """Sort one charger into controllable EV, held (uncontrolled) or a final 0."""
        cfg = self._config
        sample = state.sample
        grid, setting = tuple(sorted(state.phases)), state.setting
        if state.switching:
            return self._switching(state, memory)
        if memory.switch_to is not None:  # the switch is over (done, or given up)
            memory.switch_to = None
            if memory.expect_since is not None:
                memory.expect_since = now  # the EV restarts only now
        if not state.fresh or sample is None:
            return self._hold(state, memory, DecisionCode.STALE, "stale: no fresh data")
        if not sample.ev_connected:
            memory.end_session()
            memory.reserve = None
            if state.phase_switching and setting == 1:  # back to 3 while no one charges
                return _zero(state, grid, DecisionCode.NO_EV, "no EV: nothing reserved; "
                             "back to 3 phases", 3)  # fmt: skip
            return _zero(state, grid, DecisionCode.NO_EV, "no EV: nothing reserved", setting)
        if not memory.session:
            memory.start_session(now)
        if state.status == ChargerStatus.UNCERTAIN:
            return self._hold(state, memory, DecisionCode.UNCERTAIN, "uncertain: a write failed")
        memory.reserve = None
        currents = measured_currents(sample, len(state.phases))
        draw = max(currents)
        if state.status == ChargerStatus.NOT_WORKING or not sample.usable:
            if draw > cfg.active_current:
                reason = f"not working, yet draws {draw:.1f} A: reserved"
                return _Held(0.0, min(draw, state.max_current), DecisionCode.NOT_WORKING, reason)
            reason = f"not working ({sample.component_state})"
            return _zero(state, grid, DecisionCode.NOT_WORKING, reason, setting)
        step = state.step
        minimum = ceil_to_step(state.min_current or cfg.min_current, step)
        top = floor_to_step(state.max_current, step)
        if top < minimum:
            reason = f"charger maximum {state.max_current:g} A is below the minimum {minimum:g} A"
            return _zero(state, grid, DecisionCode.BELOW_MINIMUM, reason, setting)
        update_resume(memory, draw, minimum, top, step, now, cfg)
        if memory.learned_min is not None:
            minimum = max(minimum, memory.learned_min)
        # On one phase the EV shows nothing of its other phases: learn only on three.
        learn = currents if setting != 1 else (0.0,) * len(currents)
        terminals = ev_terminals(memory, learn, state.ev_phases, cfg.active_current)
        volts = _terminal_volts(state, state.nominal_voltage or cfg.nominal_voltage)
        everywhere = _grid_and_watts(state, terminals, volts)
        mine = everywhere
        if setting == 1:  # its L1 only, unless it is measured elsewhere
            drawing = {t for t, amps in enumerate(currents) if amps > cfg.active_current}
            mine = _grid_and_watts(state, {0} | drawing, volts)
        other: tuple[tuple[int, ...], float] | None = None
        if state.phase_switching and len(everywhere[0]) > 1:
            other = everywhere if setting == 1 else _grid_and_watts(state, {0}, volts)
        charging = memory.on_since is not None and memory.limit > 0
        if charging:
            update_reclaim(memory, draw, minimum, step, now, cfg)
        else:
            memory.low_since = None
        idle = update_idle(memory, draw, charging, now, cfg)
        if not charging and not idle:
            memory.waited += elapsed
        upper = top if memory.cap is None else max(minimum, min(top, memory.cap))
        ramp = memory.limit + cfg.ramp_up_rate * elapsed if charging else cfg.initial_current
        return EvView(
            state=state,
            memory=memory,
            grid=mine[0],
            watts_per_amp=mine[1],
            minimum=minimum,
            upper=upper,
            ceiling=max(minimum, min(upper, ramp)),
            draw=draw,
            idle=idle,
            setting=setting,
            other=other,
        )

    def _switching(self, state: ChargerState, memory: ChargerMemory) -> _Held:
        """A charger in the middle of a phase switch: at 0 A now; what it resumes at
        (its last decided limit) is reserved on the grid phases it will use. If it is
        measured drawing on any other phase (it did not stop), what it draws is
        reserved on every wired phase instead."""
        setting = memory.switch_to or state.setting
        grid = (state.phases[0],) if setting == 1 else state.phases
        reserve = memory.limit
        if state.sample is not None:
            currents = measured_currents(state.sample, len(state.phases))
            if any(amps > self._config.active_current for amps in currents[len(grid) :]):
                grid, reserve = state.phases, max(reserve, *currents)
        noun = "phase" if setting == 1 else "phases"
        reason = (
            f"switching to {setting} {noun}: paused at 0 A; "
            f"{reserve:.1f} A reserved on {_phase_names(grid)}"
        )
        return _Held(memory.limit, reserve, DecisionCode.PHASE_SWITCH, reason, grid)

    def _hold(
        self, state: ChargerState, memory: ChargerMemory, code: DecisionCode, reason: str
    ) -> _Held:
        """Keep an uncontrolled charger's limit and reserve what it may draw."""
        sample = state.sample
        known = [memory.reserve or 0.0]
        if memory.commanded:
            known.append(memory.limit)
        readback = None if sample is None else sample.current_limit
        if readback is not None and math.isfinite(readback):
            known.append(readback)
        elif not memory.commanded:
            known.append(state.max_current)  # never commanded, no readback: worst case
        if sample is not None:
            known.append(max(measured_currents(sample, len(state.phases))))
        reserve = min(max(known), state.max_current)
        memory.reserve = reserve
        limit = memory.limit if memory.commanded else 0.0
        detail = f"holding {limit:.1f} A, {reserve:.1f} A reserved on {_phase_names(state.phases)}"
        return _Held(limit, reserve, code, f"{reason}; {detail}")

    @staticmethod
    def _remember(memory: ChargerMemory, current: float, now: float) -> None:
        """Record the commanded limit and the on/off transitions it implies."""
        if current > 0:
            if memory.on_since is None or memory.limit <= 0:
                memory.on_since = now
                memory.off_since = None
                memory.waiting_since = None
                memory.wake_off_since = None
                memory.lowered_at = None
                if memory.session and not memory.finished:
                    memory.expect_since = now  # a started EV should draw soon
                    memory.expect_cut = False
            elif current < memory.limit:
                memory.lowered_at = now
            if current > memory.limit:
                memory.low_since = None  # give the EV time to follow the raise
        else:
            memory.expect_since = None
            if memory.on_since is not None:
                memory.on_since = None
                memory.off_since = now
                memory.waiting_since = now if memory.session else None
            if memory.session and memory.waiting_since is None:
                memory.waiting_since = now
        memory.limit = current
        memory.commanded = True
